"""Settings of ``collab serve`` and ``collab replica`` (pydantic-settings, env prefix ``COLLAB_``).

Every command-line option has an environment variable of the same name (``--data`` →
``COLLAB_DATA``). Signaling limits and tokens are :class:`signaling.settings.SignalingSettings`
(same prefix, see ``signaling/README.md``).

Example:
    >>> ServeSettings(data="/tmp/x").store_url
    'sqlite:////tmp/x/collab.db'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServeSettings", "parse_ice_servers"]


def parse_ice_servers(text: str | None) -> list[dict[str, Any]]:
    """Parse ICE servers given as JSON (RTCIceServer dicts) or comma-separated URLs.

    Example:
        >>> parse_ice_servers("stun:stun.example.org:3478")
        [{'urls': ['stun:stun.example.org:3478']}]
        >>> parse_ice_servers('[{"urls": "turn:t.example", "username": "u", "credential": "p"}]')
        [{'urls': 'turn:t.example', 'username': 'u', 'credential': 'p'}]
    """
    if text is None or not text.strip():
        return []
    text = text.strip()
    if text.startswith("["):
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ValueError("ICE servers JSON must be a list of objects")
        return value
    return [{"urls": [u.strip() for u in text.split(",") if u.strip()]}]


class ServeSettings(BaseSettings):
    """Options of the one-port server (``collab serve``)."""

    model_config = SettingsConfigDict(env_prefix="COLLAB_", extra="ignore")

    host: str = "127.0.0.1"
    "Interface to listen on (``0.0.0.0`` for every interface)."
    port: int = Field(default=8000, ge=0, le=65535)
    "TCP port (0 = any free port, printed at start)."
    data: Path = Path("data")
    "Data directory (the SQLite archive ``collab.db`` lives inside)."
    store: str | None = None
    "Store URL overriding ``--data`` (``sqlite:///abs/path.db`` or ``postgresql://…``)."
    rooms: str = "all"
    "Which rooms the replica archives: ``all``, ``none``, or an fnmatch pattern."
    room_passwords: dict[str, str] = Field(default_factory=dict)
    "Passwords of password rooms to archive (JSON object in the env var)."
    ice_servers: str | None = None
    "ICE servers for browsers (``/api/config``) and the replica: JSON list or comma-separated URLs."
    text_name: str = "codemirror"
    "Name of the shared text served by ``/api/rooms/{room}/text``."
    tls_cert: Path | None = None
    "PEM certificate: serve HTTPS/WSS (WebRTC needs a secure context off localhost)."
    tls_key: Path | None = None
    "PEM private key for ``tls_cert``."
    web_dir: Path | None = None
    "Directory with the built page (default: ``web/dist`` of this checkout)."
    idle_unload_after: float = 30.0
    "Seconds without peers before the replica unloads a room from memory."
    version_pause: float = 10.0
    "Record a version once editing in a room pauses for this many seconds."
    version_every: int = 1000
    "Record a version at least every this many updates."
    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra ``Host`` names accepted (e.g. a reverse proxy's public name; ``*`` = any). The
    host listened on and the localhost names are always accepted (DNS-rebinding protection;
    env: JSON list)."""

    @property
    def store_url(self) -> str:
        """The effective store URL."""
        if self.store:
            return self.store
        return f"sqlite:///{self.data.resolve()}/collab.db"

    # ---- TURN (collabd/turn.py): time-limited relay credentials for the page and the replica
    turn_secret: str | None = Field(default=None, min_length=16, repr=False)
    """coturn's ``static-auth-secret`` (``use-auth-secret``): ``/api/config`` hands each page
    a TURN credential minted from it, valid for ``--turn-ttl`` seconds; the replica uses the
    same scheme. Prefer the env var: a command line is visible to every local user."""
    turn_urls: list[str] = Field(default_factory=list, json_schema_extra={"cli_name": "--turn-url"})
    "A ``turn:`` URL of that coturn, e.g. ``turn:turn.example.org:3478?transport=udp``."
    turn_ttl: int = Field(default=3600, ge=60, le=86400)
    "Lifetime of the minted TURN credentials, seconds."
    ice_transport_policy: Literal["all", "relay"] = "all"
    """``relay``: browsers and the replica use only TURN relay candidates, so peers never
    learn each other's addresses (needs a TURN server)."""
