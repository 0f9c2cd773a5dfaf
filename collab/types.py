"""Shared protocol shapes: the transport seam every peer connection implements.

A :class:`Channel` carries whole binary messages in order (a WebRTC data channel, an in-memory
test pair, a WebSocket). The sync layer only ever talks to a ``Channel``.

Example:
    >>> async def pump(channel: Channel) -> None:  # doctest: +SKIP
    ...     async for message in channel:
    ...         await channel.send(message)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from collab.errors import TransportError

__all__ = ["Channel", "ClientId", "PeerId", "RoomName", "messages"]

RoomName = str
"""A y-webrtc room name (= signaling topic = PBKDF2 salt)."""

PeerId = str
"""A y-webrtc signaling peer id (a UUIDv4 string, one per room per peer)."""

ClientId = int
"""A Yjs client id (≤ 2^53-1)."""


@runtime_checkable
class Channel(Protocol):
    """A reliable, ordered, message-oriented duplex transport.

    ``recv`` raises :class:`collab.errors.TransportError` once the channel is closed;
    iteration ends quietly at that point instead.
    """

    @property
    def max_message_size(self) -> int:
        """The largest message the remote side accepts, in bytes."""
        ...

    async def send(self, message: bytes) -> None:
        """Send one whole message. Raises ``TransportError`` if the channel is closed."""
        ...

    async def recv(self) -> bytes:
        """Receive the next whole message. Raises ``TransportError`` once closed."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate received messages until the channel closes."""
        ...

    async def close(self, reason: str = "") -> None:
        """Close the channel; idempotent."""
        ...


async def messages(channel: Channel) -> AsyncIterator[bytes]:
    """Every message ``channel`` receives, until it closes: what a :class:`Channel`'s
    ``async for`` yields (its implementations return this from ``__aiter__``)."""
    while True:
        try:
            yield await channel.recv()
        except TransportError:
            return
