"""Admission: who may open a socket, and how fast its frames are read.

* Origin allow-list, JWT token (query ``token`` or ``Authorization: Bearer``), the internal
  key of a co-located service (loopback + ``X-Collab-Internal`` header);
* sockets per address (per token subject when the token has one);
* per frame: the size cap and token-bucket traffic shaping (an over-rate socket is read more
  slowly; only sustained abuse closes it).

Example:
    >>> from signaling.metrics import SignalingMetrics
    >>> from signaling.settings import SignalingSettings
    >>> settings = SignalingSettings(allowed_origins=["https://a.example"])
    >>> gate = Admission(settings, SignalingMetrics())
    >>> gate.admit({"origin": "https://b.example"}.get, None, "10.0.0.1", None)
    (None, (<CloseCode.FORBIDDEN: 4403>, 'origin not allowed'))
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

import anyio

from signaling.auth import TokenClaims, TokenError, verify_token
from signaling.close_codes import CloseCode, reason_label
from signaling.conn import Conn, Violation
from signaling.metrics import SignalingMetrics
from signaling.settings import SignalingSettings

log = logging.getLogger("signaling")

INTERNAL_CLAIMS = TokenClaims(("*",), "rw", "collab-internal", float("inf"))
"""Claims of a co-located service's socket (``SignalingSettings.internal_key``): any room."""
INTERNAL_HEADER = "x-collab-internal"
"""Request header carrying the internal key (never a URL: URLs end up in access logs)."""
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class Admission:
    """The admission checks and per-address socket counts of one signaling service."""

    def __init__(self, settings: SignalingSettings, metrics: SignalingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._per_address: dict[str, int] = {}  # bounded: one entry per open socket at most
        self._secret = (
            settings.token_secret.get_secret_value() if settings.token_secret is not None else None
        )

    def admit(
        self,
        header: Callable[[str], str | None],
        query_token: str | None,
        address: str,
        room: str | None,
    ) -> tuple[TokenClaims | None, Violation | None]:
        """Check Origin, token and the per-address limit for a new socket (any transport).

        A loopback socket presenting the internal key in the ``X-Collab-Internal`` header
        (``SignalingSettings.internal_key``) gets :data:`INTERNAL_CLAIMS`: no Origin/token
        check, no per-socket limits (one replica socket carries every room).

        Args:
            header: returns a request header value by (lower-case) name, or None.
            query_token: the ``token`` query parameter, if any.
            address: the client address.
            room: the room the socket is scoped to (named dialect), if any.

        Returns:
            ``(claims, None)`` to accept, or ``(claims, (code, reason))`` to refuse.
        """
        s = self.settings
        internal = header(INTERNAL_HEADER)
        if internal is not None and s.internal_key is not None:
            key = s.internal_key.get_secret_value().encode()
            given = internal.encode("utf-8", "surrogateescape")
            if key and address in _LOOPBACK and hmac.compare_digest(given, key):
                return INTERNAL_CLAIMS, None
            return None, (CloseCode.UNAUTHORIZED, "bad internal key")
        if s.allowed_origins:
            origin = header("origin")
            if origin is None:
                if not s.allow_missing_origin:
                    return None, (CloseCode.FORBIDDEN, "origin required")
            elif origin not in s.allowed_origins:
                return None, (CloseCode.FORBIDDEN, "origin not allowed")
        token = query_token
        if token is None:
            auth = header("authorization") or ""
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        claims: TokenClaims | None = None
        if (token or s.auth_required) and self._secret is not None:
            try:
                claims = verify_token(token, self._secret, room=room, leeway=s.token_leeway_seconds)
            except TokenError as exc:
                return None, (exc.code, exc.reason)
        if self._per_address.get(quota_key(address, claims), 0) >= s.max_sockets_per_address:
            return claims, (CloseCode.RATE_LIMITED, "too many sockets from this address")
        return claims, None

    def refused(self, endpoint: str, address: str, code: int, reason: str) -> None:
        """Count and log a refused socket."""
        self.metrics.refusals.labels(reason=reason_label(code, reason)).inc()
        log.info(
            "socket refused",
            extra={"endpoint": endpoint, "addr": address, "code": code, "reason": reason},
        )

    def opened(self, conn: Conn) -> None:
        """Account a newly accepted socket."""
        key = quota_key(conn.info.address, conn.claims)
        self._per_address[key] = self._per_address.get(key, 0) + 1
        self.metrics.sockets.labels(endpoint=conn.endpoint).inc()

    def closed(self, conn: Conn) -> None:
        """Account a finished socket (after its endpoint-specific cleanup)."""
        address = conn.info.address
        key = quota_key(address, conn.claims)
        self.metrics.sockets.labels(endpoint=conn.endpoint).dec()
        left = self._per_address.get(key, 1) - 1
        if left <= 0:
            self._per_address.pop(key, None)
        else:
            self._per_address[key] = left
        if conn.close_request is not None:  # (counted when it was decided: Conn.close_decided)
            code, reason = conn.close_request
            log.info(
                "socket closed by server",
                extra={
                    "endpoint": conn.endpoint,
                    "addr": address,
                    "socket": conn.id,
                    "code": code,
                    "reason": reason,
                },
            )

    async def check_frame(self, conn: Conn, data: str | bytes) -> Violation | None:
        """Apply the frame-size limit and shape the rate of one incoming frame.

        Over its rate, a socket waits here before its frame is handled — and its next frame
        is not read meanwhile, so TCP pushes back on the sender. Only a socket kept over its
        rate for ``rate_limit_close_after_seconds`` in a row is refused (4429).
        """
        verdict = self.frame_verdict(conn, data)
        if isinstance(verdict, float):
            await anyio.sleep(verdict)
            conn.bucket.take(time.monotonic())
            return None
        return verdict

    def frame_verdict(self, conn: Conn, data: str | bytes) -> Violation | float | None:
        """:meth:`check_frame` without the wait: None to handle the frame now (its token is
        taken), a float to wait that many seconds first (then take a token), or the
        violation that closes the socket."""
        size = len(data)
        if isinstance(data, str) and size * 4 > self.settings.max_frame_bytes:
            size = len(data.encode("utf-8", "surrogatepass"))
        self.metrics.tally.bytes_in += size
        if size > self.settings.max_frame_bytes:
            return (CloseCode.FRAME_TOO_LARGE, "frame too large")
        if conn.claims is INTERNAL_CLAIMS:
            return None
        now = time.monotonic()
        wait = conn.bucket.take_or_wait(now)
        if wait <= 0:
            conn.throttled_since = None
            return None
        if conn.throttled_since is None:
            conn.throttled_since = now
            self.metrics.throttled.inc()
        elif now - conn.throttled_since >= self.settings.rate_limit_close_after_seconds:
            return (CloseCode.RATE_LIMITED, "rate limit exceeded")
        return float(wait)


def quota_key(address: str, claims: TokenClaims | None) -> str:
    """Sockets are counted per token subject when the socket has one (an office behind one NAT
    shares an address, not a user), else per address."""
    if claims is not None and claims.subject:
        return "sub\x00" + claims.subject
    return address
