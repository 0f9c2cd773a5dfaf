"""Configuration of the signaling service (pydantic-settings, env prefix ``COLLAB_``).

Every limit is a field here, so it can be set from the environment, a ``.env``-style config
file (``collab signaling --config FILE``) or directly in code.

Example:
    >>> s = SignalingSettings(max_topics_per_socket=10)
    >>> s.max_topics_per_socket
    10
    >>> # COLLAB_MAX_FRAME_BYTES=65536 collab signaling --port 4444
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 16
"""Shortest accepted token secret when tokens are required (HS256 keys are guessable below)."""


class SignalingSettings(BaseSettings):
    """Limits, access control and scale-out options of the signaling service.

    Example:
        >>> SignalingSettings(auth_required=True, token_secret="s3cret-s3cret-s3cret").auth_required
        True
    """

    model_config = SettingsConfigDict(env_prefix="COLLAB_", extra="ignore")

    max_frame_bytes: int = Field(default=262_144, ge=64)
    """Largest accepted frame (text or binary), in bytes. Larger: close 1009."""

    max_topics_per_socket: int = Field(default=64, ge=1)
    """Most topics one socket may be subscribed to at once. More: close 4429."""

    max_sockets_per_address: int = Field(default=256, ge=1)
    """Most simultaneous sockets from one client address (an office behind one NAT is one
    address: every tab is a socket). More: close 4429. With tokens on, the limit is per
    token subject instead of per address."""

    rate_limit_per_second: float = Field(default=50.0, gt=0)
    """Token-bucket refill rate for incoming frames per socket. Over it, the socket's frames
    are read more slowly (TCP backpressure), not refused."""

    rate_limit_burst: int = Field(default=512, ge=1)
    """Token-bucket capacity: frames a socket may send at once without any delay. A y-webrtc
    browser joining a room of 35 peers with TURN sends ~400 signal frames in 1-2 s (an
    answer plus trickled candidates per peer): that must pass untouched."""

    rate_limit_close_after_seconds: float = Field(default=20.0, gt=0)
    """A socket kept over its rate continuously for this long (sustained abuse, not a
    burst) is closed with 4429."""

    idle_timeout_seconds: float = Field(default=90.0, gt=0)
    """A socket that sends nothing for this long is closed with 4408.

    y-webrtc clients send ``{"type":"ping"}`` every ~15 s while connected, so 90 s is generous.
    """

    max_subscribers_per_topic: int = Field(default=256, ge=1)
    """Most subscribers of one topic (per instance). Subscribing beyond: close 4413."""

    send_queue_size: int = Field(default=1024, ge=1)
    """Frames buffered per socket towards a slow reader. Overflow: close 1013."""

    ws_ping_interval_seconds: float = Field(default=30.0, gt=0)
    """WebSocket-level ping interval (used by ``collab signaling`` for uvicorn)."""

    ws_ping_timeout_seconds: float = Field(default=30.0, gt=0)
    """A socket that does not answer a WebSocket ping within this time is dropped by uvicorn."""

    auth_required: bool = False
    """Require a signed token (``?token=`` or ``Authorization: Bearer``) on every socket."""

    token_secret: SecretStr | None = None
    """HMAC secret for HS256 tokens (``collab token`` mints them)."""

    token_leeway_seconds: float = Field(default=5.0, ge=0)
    """Clock-skew allowance when checking ``exp``/``nbf``."""

    allowed_origins: list[str] = Field(default_factory=list)
    """Exact ``Origin`` values allowed (JSON list in env). Empty list: any origin."""

    allow_missing_origin: bool = True
    """With an allow-list set, still accept sockets without ``Origin`` (non-browser clients)."""

    redis_url: str | None = None
    """``redis://host:port/db``: share topics with other instances through Redis pub/sub."""

    redis_prefix: str = "collab:signaling"
    """Key/channel prefix in Redis (instances sharing topics must use the same prefix)."""

    internal_key: SecretStr | None = None
    """Key of co-located services (``collab serve``'s archival replica): a socket from a
    loopback address with the header ``X-Collab-Internal: <key>`` skips Origin/token checks
    and the per-socket topic, rate, per-address and per-topic limits (one replica socket
    carries every room). Never put it in a URL: URLs end up in access logs."""
    named_max_name_length: int = Field(default=64, ge=1)
    """Longest accepted name in the named-peer dialect."""

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        if self.auth_required and (
            self.token_secret is None or not self.token_secret.get_secret_value()
        ):
            raise ValueError("auth_required=True needs token_secret (env COLLAB_TOKEN_SECRET)")
        secret = self.token_secret.get_secret_value() if self.token_secret is not None else ""
        if self.auth_required and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"token_secret is too short ({len(secret)} characters): use at least "
                f"{MIN_SECRET_LENGTH}, e.g. `openssl rand -hex 32`"
            )
        return self


def production_settings(secret: str, origins: list[str], **overrides: object) -> SignalingSettings:
    """Build the documented production profile: tokens required, Origin allow-list, no bare origin.

    Args:
        secret: HMAC secret used to verify tokens.
        origins: the exact ``Origin`` values of the web app(s).
        **overrides: any other ``SignalingSettings`` field.

    Example:
        >>> production_settings("0123456789abcdef", ["https://docs.example.org"]).allow_missing_origin
        False
    """
    values: dict[str, object] = {
        "auth_required": True,
        "token_secret": secret,
        "allowed_origins": origins,
        "allow_missing_origin": False,
    }
    values.update(overrides)
    return SignalingSettings.model_validate(values)
