"""Signed, expiring, room-scoped access tokens (JWT, HS256, via PyJWT).

Claims: ``rooms`` (list of room/topic names, ``"*"`` = any), ``access`` (``"rw"`` or ``"ro"``),
``exp``, ``iat``, optional ``sub``. Read-only tokens may still subscribe and publish on the
signaling socket (WebRTC needs signaling even to read); the claim is handed to hooks so the
data path (the archival replica, the HTTP API) can enforce it.

Example:
    >>> secret = "an-example-secret-of-at-least-32-bytes"
    >>> tok = mint_token(secret, ["room-a"], access="ro", ttl_seconds=60)
    >>> claims = verify_token(tok, secret, room="room-a")
    >>> claims.read_only, claims.allows("room-b")
    (True, False)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

from signaling.close_codes import CloseCode

Access = Literal["rw", "ro"]
ALGORITHM = "HS256"
WILDCARD = "*"


class TokenError(Exception):
    """A token was missing, malformed, badly signed, expired or out of scope.

    Attributes:
        code: the WebSocket close code to use (4401 invalid/expired, 4403 out of scope).
        reason: a short human-readable reason (safe to send to the client).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """Verified claims of a token.

    Attributes:
        rooms: the rooms (topics) the bearer may use; ``("*",)`` means any.
        access: ``"rw"`` or ``"ro"``.
        subject: the ``sub`` claim, if any.
        expires_at: the ``exp`` claim (UNIX seconds).
    """

    rooms: tuple[str, ...]
    access: Access
    subject: str | None
    expires_at: float

    @property
    def read_only(self) -> bool:
        """True for ``access == "ro"``."""
        return self.access == "ro"

    def allows(self, room: str) -> bool:
        """Whether ``room`` is within the token's scope."""
        return WILDCARD in self.rooms or room in self.rooms


def mint_token(
    secret: str,
    rooms: list[str] | tuple[str, ...],
    *,
    access: Access = "rw",
    ttl_seconds: float = 3600.0,
    subject: str | None = None,
    now: float | None = None,
) -> str:
    """Mint an HS256 token for ``rooms``.

    Args:
        secret: the shared HMAC secret (``COLLAB_TOKEN_SECRET``).
        rooms: room names the token grants; ``["*"]`` grants every room.
        access: ``"rw"`` (default) or ``"ro"``.
        ttl_seconds: lifetime from ``now``.
        subject: optional ``sub`` claim (user id).
        now: issue time (UNIX seconds); defaults to ``time.time()``.

    Returns:
        The encoded token.

    Raises:
        ValueError: empty secret, no rooms, bad access value or non-positive ttl.

    Example:
        >>> isinstance(mint_token("an-example-secret-of-at-least-32-bytes", ["r"]), str)
        True
    """
    if not secret:
        raise ValueError("mint_token needs a non-empty secret")
    if not rooms or not all(isinstance(r, str) and r for r in rooms):
        raise ValueError("mint_token needs at least one non-empty room name")
    if access not in ("rw", "ro"):
        raise ValueError("access must be 'rw' or 'ro'")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued = time.time() if now is None else now
    payload: dict[str, object] = {
        "rooms": list(rooms),
        "access": access,
        "iat": int(issued),
        "exp": int(issued + ttl_seconds),
    }
    if subject is not None:
        payload["sub"] = subject
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_token(
    token: str | None,
    secret: str,
    *,
    room: str | None = None,
    leeway: float = 0.0,
) -> TokenClaims:
    """Verify a token's signature, expiry and shape (and optionally its scope for ``room``).

    The HTTP API reuses this for read access.

    Args:
        token: the encoded token (``None`` or empty counts as missing).
        secret: the HMAC secret.
        room: when given, the token must grant this room.
        leeway: clock-skew allowance in seconds.

    Returns:
        The verified claims.

    Raises:
        TokenError: code 4401 for missing/invalid/expired tokens, 4403 when ``room`` is
            out of scope.

    Example:
        >>> key = "an-example-secret-of-at-least-32-bytes"
        >>> verify_token(mint_token(key, ["*"]), key, room="anything").rooms
        ('*',)
    """
    if not token:
        raise TokenError(CloseCode.UNAUTHORIZED, "token required")
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=leeway,
            options={"require": ["exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError(CloseCode.UNAUTHORIZED, "token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(CloseCode.UNAUTHORIZED, "invalid token") from exc
    rooms = payload.get("rooms")
    access = payload.get("access", "rw")
    subject = payload.get("sub")
    if (
        not isinstance(rooms, list)
        or not rooms
        or not all(isinstance(r, str) for r in rooms)
        or access not in ("rw", "ro")
        or (subject is not None and not isinstance(subject, str))
    ):
        raise TokenError(CloseCode.UNAUTHORIZED, "invalid token claims")
    claims = TokenClaims(
        rooms=tuple(rooms),
        access="ro" if access == "ro" else "rw",
        subject=subject,
        expires_at=float(payload["exp"]),
    )
    if room is not None and not claims.allows(room):
        raise TokenError(CloseCode.FORBIDDEN, "room not allowed by token")
    return claims
