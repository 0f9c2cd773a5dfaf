"""Time-limited TURN credentials (coturn's REST API scheme) and the ICE configuration that
``collab serve`` hands to the page (``GET /api/config``) and to its own replica.

coturn started with ``use-auth-secret`` and ``static-auth-secret=S`` accepts any username of
the form ``"<expiry unix time>:<name>"`` whose password is ``base64(HMAC-SHA1(S, username))``,
until that time. So a server that knows ``S`` mints credentials without talking to coturn, and
a credential a page leaks stops working on its own. ``S`` itself stays here: it never appears
in a URL, a log line, a metric or a ``repr`` (:class:`IceConfig` keeps it out of its ``repr``).

Example:
    >>> turn_credential("north-wind-0123456789", "alice", ttl=3600, now=1_700_000_000)
    TurnCredential(username='1700003600:alice', credential='Wvde8+1F2Uu/zgdrxaWz6hIBrLM=', expires=1700003600)
    >>> ice = IceConfig(turn_urls=("turn:turn.example.org:3478?transport=udp",),
    ...                 turn_secret="north-wind-0123456789", policy="relay")
    >>> ice
    IceConfig(servers=(), turn_urls=('turn:turn.example.org:3478?transport=udp',), turn_ttl=3600, policy='relay')
    >>> ice.page_config("alice", now=1_700_000_000)["iceServers"][0]["username"]
    '1700003600:alice'
"""  # noqa: E501 - doctest output lines

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from collabd.settings import ServeSettings

__all__ = ["IceConfig", "TurnCredential", "safe_name", "turn_credential"]

_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_TTL = 60
"""Shortest credential lifetime: a page needs a moment between fetching and connecting."""


class TurnCredential(NamedTuple):
    """One coturn REST API credential (an ``RTCIceServer``'s ``username``/``credential``)."""

    username: str
    "``<expiry unix time>:<name>``."
    credential: str
    "``base64(HMAC-SHA1(secret, username))``."
    expires: int
    "Unix time after which coturn refuses it."


def turn_credential(
    secret: str, name: str, *, ttl: int, now: float | None = None, not_after: float | None = None
) -> TurnCredential:
    """A credential for coturn's ``use-auth-secret`` mode, valid for ``ttl`` seconds.

    Args:
        secret: coturn's ``static-auth-secret``.
        name: what coturn logs (and counts quotas by) after the expiry: letters, digits, ``._@-``.
        ttl: lifetime in seconds.
        now: the current Unix time (tests).
        not_after: never valid past this Unix time (e.g. the expiry of the caller's token).

    Raises:
        ValueError: ``name`` has other characters or more than 64.

    Example:
        >>> turn_credential("north-wind-0123456789", "bob", ttl=60, now=100).username
        '160:bob'
        >>> turn_credential("north-wind-0123456789", "bob", ttl=60, now=100, not_after=130).expires
        130
    """
    if not _NAME.fullmatch(name):
        raise ValueError("TURN user name: 1-64 letters, digits or ._@-")
    expires = int((time.time() if now is None else now) + ttl)
    if not_after is not None:
        expires = min(expires, int(not_after))
    username = f"{expires}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires)


def safe_name(text: str | None, prefix: str = "web") -> str:
    """A TURN user name from untrusted text (a token's subject): other characters become
    ``_``; nothing usable gives ``<prefix>-<random>``, so every page gets its own name.

    Example:
        >>> safe_name("ada lovelace")
        'ada_lovelace'
        >>> safe_name(None).startswith("web-")
        True
    """
    cleaned = re.sub(r"[^A-Za-z0-9._@-]", "_", text or "")[:64]
    return cleaned if cleaned.strip("_") else f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class IceConfig:
    """The ICE servers and transport policy of one ``collab serve``: what ``/api/config``
    tells the page and what the replica's own peer uses.

    Raises:
        ValueError: inconsistent settings (a TURN secret without TURN URLs, a relay-only
            policy without any TURN server, …); the message never contains the secret.
    """

    servers: tuple[dict[str, Any], ...] = ()
    "Static STUN/TURN servers (``--ice-servers``), handed out as they are."
    turn_urls: tuple[str, ...] = ()
    "``turn:``/``turns:`` URLs of the coturn that shares ``turn_secret``."
    turn_ttl: int = 3600
    "Lifetime of each minted credential, seconds."
    policy: Literal["all", "relay"] = "all"
    """``relay``: browsers and the replica use only TURN relay candidates (RTCConfiguration's
    ``iceTransportPolicy``): peers never learn each other's addresses."""
    turn_secret: str | None = field(default=None, repr=False)
    "coturn's ``static-auth-secret`` (never printed)."

    def __post_init__(self) -> None:
        if self.turn_secret is not None and not self.turn_urls:
            raise ValueError("--turn-secret needs --turn-url (the TURN server's turn: URLs)")
        if self.turn_urls and self.turn_secret is None:
            raise ValueError(
                "--turn-url needs --turn-secret (static TURN users go in --ice-servers)"
            )
        for url in self.turn_urls:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"--turn-url must be a turn: or turns: URL, got {url!r}")
        if self.turn_ttl < MIN_TTL:
            raise ValueError(f"--turn-ttl must be at least {MIN_TTL} seconds")
        if self.policy not in ("all", "relay"):
            raise ValueError("--ice-transport-policy must be all or relay")
        if self.policy == "relay" and not self.has_turn:
            raise ValueError(
                "--ice-transport-policy relay needs a TURN server "
                "(--turn-url with --turn-secret, or a turn: entry in --ice-servers)"
            )

    @classmethod
    def from_settings(cls, settings: ServeSettings, servers: list[dict[str, Any]]) -> IceConfig:
        """The configuration of ``collab serve`` (``servers``: the parsed ``--ice-servers``)."""
        return cls(
            servers=tuple(servers),
            turn_urls=tuple(settings.turn_urls),
            turn_ttl=settings.turn_ttl,
            policy=settings.ice_transport_policy,
            turn_secret=(settings.turn_secret.get_secret_value() if settings.turn_secret else None),
        )

    @property
    def has_turn(self) -> bool:
        """Whether any TURN server is configured (minted or static)."""
        if self.turn_urls:
            return True
        for server in self.servers:
            urls = server.get("urls")
            for url in [urls] if isinstance(urls, str) else list(urls or []):
                if isinstance(url, str) and url.startswith(("turn:", "turns:")):
                    return True
        return False

    def ice_servers(
        self, name: str, *, now: float | None = None, not_after: float | None = None
    ) -> list[dict[str, Any]]:
        """``RTCIceServer`` dicts: the static ones plus, with a TURN secret, one entry with a
        fresh credential for ``name`` (see :func:`turn_credential`)."""
        return self._minted(name, now, not_after)[0]

    def page_config(
        self, name: str, *, now: float | None = None, not_after: float | None = None
    ) -> dict[str, Any]:
        """The body of ``GET /api/config``: ``{"iceServers": [...]}``, plus
        ``"iceTransportPolicy": "relay"`` when relay-only, plus ``"credentialTtl"`` (seconds
        until the minted credential expires: the page fetches a new one before that).

        Example:
            >>> IceConfig().page_config("x")
            {'iceServers': []}
            >>> ice = IceConfig(turn_urls=("turn:t.example",), turn_secret="s" * 16, turn_ttl=600)
            >>> ice.page_config("x", now=0, not_after=300)["credentialTtl"]
            300
        """
        now = time.time() if now is None else now
        servers, expires = self._minted(name, now, not_after)
        body: dict[str, Any] = {"iceServers": servers}
        if self.policy != "all":
            body["iceTransportPolicy"] = self.policy
        if expires is not None:
            body["credentialTtl"] = max(0, int(expires - now))
        return body

    def _minted(
        self, name: str, now: float | None, not_after: float | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        out = [dict(server) for server in self.servers]
        if self.turn_secret is None:
            return out, None
        cred = turn_credential(
            self.turn_secret, name, ttl=self.turn_ttl, now=now, not_after=not_after
        )
        turn: dict[str, Any] = {
            "urls": list(self.turn_urls),
            "username": cred.username,
            "credential": cred.credential,
        }
        out.append(turn)
        return out, cred.expires
