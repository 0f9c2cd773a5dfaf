"""Settings of the long-running commands (pydantic-settings, env prefix ``COLLAB_``): one
model per command, :class:`ServeSettings`, :class:`ReplicaSettings` and
:class:`SignalingCommandSettings`.

These models are the only declaration of the commands' options: ``collabd.cli`` generates
each command's options from its model's fields (:mod:`collabd.options`), so every option has
an environment variable of the same name (``--data`` → ``COLLAB_DATA``). Signaling limits and
tokens are :class:`signaling.settings.SignalingSettings` (same prefix, env only, see
``signaling/README.md``).

Example:
    >>> ServeSettings(data="/tmp/x").store_url
    'sqlite:////tmp/x/collab.db'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from collab.replica import ReplicaOptions

__all__ = [
    "WEBHOOK_EVENTS",
    "ArchiveSettings",
    "CommandSettings",
    "ReplicaSettings",
    "ServeSettings",
    "SignalingCommandSettings",
    "parse_ice_servers",
]


WEBHOOK_EVENTS = ("room.created", "version.recorded", "room.restored", "room.deleted")
"""The archive events ``collab serve`` can deliver (``collab.replica.EVENT_KINDS``; kept here
so that ``--help`` works without the replica extra)."""


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


class CommandSettings(BaseSettings):
    """What every long-running command has: how it logs."""

    model_config = SettingsConfigDict(
        env_prefix="COLLAB_", extra="ignore", use_attribute_docstrings=True
    )

    log_level: str = "info"
    "Log level: debug, info, warning or error."
    log_format: str = "text"
    "Log lines: text (time level logger message key=value) or json (one object per line)."

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        from signaling.logs import check_level

        return check_level(value)

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from signaling.logs import check_format

        return check_format(value)


class ArchiveSettings(CommandSettings):
    """What both commands that run an archival replica have."""

    ice_servers: str | None = None
    "ICE servers for browsers (``/api/config``) and the replica: JSON list or comma-separated URLs."
    text_name: str = "codemirror"
    "Name of the shared text (``/api/rooms/{room}/text``, text export and restore)."
    version_pause: float = Field(default=10.0, gt=0)
    "Record a version once editing in a room pauses for this many seconds."
    version_every: int = Field(default=1000, ge=1)
    "Record a version at least every this many updates."
    lease_ttl: float = Field(default=10.0, gt=0)
    "PostgreSQL: seconds before a dead replica's rooms can be taken over by another."

    def replica_options(self, **fields: Any) -> ReplicaOptions:
        """The replica's options from these settings (plus command-specific ``fields``).

        Example:
            >>> ServeSettings(version_every=5).replica_options().version_every
            5
        """
        from collab.replica import ReplicaOptions

        values: dict[str, Any] = {
            "text_name": self.text_name,
            "version_pause": self.version_pause,
            "version_every": self.version_every,
        }
        values.update(fields)
        return ReplicaOptions(**values)


class ServeSettings(ArchiveSettings):
    """Options of the one-port server (``collab serve``)."""

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
    room_passwords: dict[str, str] = Field(
        default_factory=dict, json_schema_extra={"cli_name": "--room-password"}
    )
    "Password of a password room to archive (ROOM:PASSWORD)."
    tls_cert: Path | None = None
    "PEM certificate: serve HTTPS/WSS (WebRTC needs a secure context off localhost)."
    tls_key: Path | None = None
    "PEM private key for ``--tls-cert``."
    web_dir: Path | None = None
    "Directory with the built page (default: the page packaged in the wheel, else ``web/dist``)."
    idle_unload_after: float = Field(default=30.0, gt=0)
    "Seconds without peers before the replica unloads a room from memory."
    workers: int = Field(default=1, ge=1, le=64)
    """Worker processes sharing the port, each with its own replica, so archiving uses every
    core (PostgreSQL ``--store`` and ``COLLAB_REDIS_URL`` needed above 1; a supervisor restarts
    a dead worker; rooms are shared through the store's leases)."""
    allow_delete: bool = False
    """Allow ``DELETE /api/rooms/{room}`` (an idle room's whole archive: log, snapshots,
    versions). Off by default: the archive's promise is that a document never dies, and with
    access control off anyone who reaches the port could erase one."""
    allowed_hosts: list[str] = Field(
        default_factory=list, json_schema_extra={"cli_name": "--allowed-host"}
    )
    """Another ``Host`` name to accept, e.g. a reverse proxy's public name (``*`` = any). The
    host listened on and the localhost names are always accepted (DNS-rebinding protection)."""

    @property
    def store_url(self) -> str:
        """The effective store URL."""
        if self.store:
            return self.store
        return f"sqlite:///{self.data.resolve()}/collab.db"

    # ---- TURN (collabd/turn.py): time-limited relay credentials for the page and the replica
    turn_secret: SecretStr | None = Field(default=None, min_length=16)
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

    # ---- webhooks (collabd/webhooks.py): signed POSTs on archive events
    webhook_urls: list[str] = Field(
        default_factory=list, json_schema_extra={"cli_name": "--webhook-url"}
    )
    """An http(s) URL to POST every selected archive event to (JSON, signed with
    ``--webhook-secret``); repeat for several receivers. Credentials in it are never logged."""
    webhook_secret: SecretStr | None = Field(default=None, min_length=16)
    """Key of the ``X-Collab-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` header (at
    least 16 characters; without it deliveries are unsigned). Prefer the env var."""
    webhook_events: list[str] = Field(
        default_factory=lambda: list(WEBHOOK_EVENTS),
        json_schema_extra={"cli_name": "--webhook-event"},
    )
    """An event to deliver: room.created, version.recorded, room.restored, room.deleted
    (default: all of them)."""
    webhook_timeout: float = Field(default=10.0, gt=0)
    "Seconds one webhook request may take before it counts as failed (and is retried)."
    webhook_attempts: int = Field(default=8, ge=1, le=50)
    "Attempts per delivery (backoff 0.5 s doubling to 30 s between them) before it is dropped."
    webhook_queue: int = Field(default=1000, ge=1, le=1_000_000)
    "Deliveries waiting at most; when full the oldest is dropped (the archive never waits)."

    @field_validator("webhook_events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(WEBHOOK_EVENTS))
        if unknown:
            raise ValueError(f"unknown webhook events {unknown}; known: {list(WEBHOOK_EVENTS)}")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError("a webhook URL must be http:// or https:// with a host")
        return value


class ReplicaSettings(ArchiveSettings):
    """Options of ``collab replica`` (archive rooms on any y-webrtc signaling server)."""

    signaling: str
    "y-webrtc signaling URL (ws:// or wss://)."
    room: list[str] = Field(min_length=1, json_schema_extra={"cli_name": "--room"})
    "A room to archive: NAME or NAME:PASSWORD."
    store: str
    "Store URL: ``sqlite:///path.db`` or ``postgresql://…``."
    name: str = "archive"
    "The replica's name in the rooms' awareness."


class SignalingCommandSettings(CommandSettings):
    """Options of ``collab signaling`` (limits and tokens: ``SignalingSettings``, env only)."""

    host: str = "127.0.0.1"
    "Interface to listen on."
    port: int = Field(default=4444, ge=0, le=65535)
    "TCP port (y-webrtc's default is 4444)."
    redis_url: str | None = Field(default=None, json_schema_extra={"cli_name": "--redis"})
    "redis:// URL: share topics with other signaling instances."
    config: Path | None = None
    "A KEY=value file of COLLAB_* settings."
