"""One accepted socket, transport-neutral: its identity, token claims, rate bucket, outbox.

Each transport (``signaling.transport`` for ASGI) subclasses :class:`Conn` with its own
``enqueue`` (queue one text frame) and ``request_close`` (ask the socket to close with a code).

Example:
    >>> Violation.__args__
    (<class 'int'>, <class 'str'>)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from signaling.auth import TokenClaims
from signaling.close_codes import reason_label
from signaling.hooks import SubscriberInfo
from signaling.limits import TokenBucket

if TYPE_CHECKING:
    from signaling.protocol import SignalingService

Violation = tuple[int, str]
"""``(close code, reason)``: why a socket is refused or closed."""

_ids = itertools.count(1)


class FrameHandler(Protocol):
    def __call__(self, conn: Conn, data: str | bytes, /) -> Awaitable[Violation | None]: ...


class Conn:
    """One accepted socket: identity, limits, outbox (the transport provides the last)."""

    __slots__ = (
        "bucket",
        "claims",
        "close_request",
        "endpoint",
        "id",
        "info",
        "service",
        "throttled_since",
        "topic_count",
    )

    def __init__(
        self,
        service: SignalingService,
        endpoint: str,
        address: str,
        claims: TokenClaims | None,
    ) -> None:
        s = service.settings
        self.id = next(_ids)
        self.service = service
        self.endpoint = endpoint
        self.claims = claims
        self.info = SubscriberInfo(self.id, address, claims, endpoint)
        self.bucket = TokenBucket(s.rate_limit_per_second, s.rate_limit_burst, time.monotonic())
        self.close_request: Violation | None = None
        self.topic_count = 0
        self.throttled_since: float | None = None

    def enqueue(self, text: str) -> None:
        """Send or queue a text frame; never blocks (a full outbox closes this socket)."""
        raise NotImplementedError

    def send_shared(self, shared: Shared) -> None:
        """Send or queue a frame that a fan-out sends to many sockets (see :class:`Shared`)."""
        self.enqueue(shared.text)

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code``."""
        raise NotImplementedError

    def close_decided(self, code: int, reason: str) -> bool:
        """Record why this socket closes (the first reason wins; counted once, by reason, in
        ``refusals``, the moment it is decided). False if a reason was already recorded."""
        if self.close_request is not None:
            return False
        self.close_request = (code, reason)
        self.service.metrics.refusals.labels(reason=reason_label(code, reason)).inc()
        return True


class Shared:
    """One text frame for many sockets (a fan-out): UTF-8 encoded once, and framed once by a
    transport that can share wire frames (it fills ``frame`` on first use).

    Example:
        >>> Shared('{"type":"pong"}').data
        b'{"type":"pong"}'
    """

    __slots__ = ("data", "frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode()
        self.frame: bytes | None = None
