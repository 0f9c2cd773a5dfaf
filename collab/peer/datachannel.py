"""aiortc glue: the only module that touches pyee string events.

:class:`DataChannel` adapts an aiortc ``RTCDataChannel`` to :class:`collab.types.Channel`
(whole binary messages in, whole binary messages out, ``TransportError`` once closed), with
back-pressure on ``bufferedAmount`` and the remote's advertised ``max-message-size`` enforced
before anything reaches aiortc. :func:`watch_peer_connection` turns the peer connection's
``connectionstatechange`` / ``datachannel`` events into plain callbacks.

Example:
    >>> async def echo(channel: DataChannel) -> None:  # doctest: +SKIP
    ...     async for message in channel:
    ...         await channel.send(message)
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.exceptions import InvalidStateError

from collab.errors import ProtocolError, TransportError
from collab.types import messages

__all__ = ["ChannelCounters", "DataChannel", "sctp_rtt", "watch_peer_connection"]

log = logging.getLogger(__name__)

_UNLIMITED = 1 << 30
"""What ``max_message_size`` reports when the remote advertised ``a=max-message-size:0``."""
_REMOTE_DEFAULT_MAX = 65_536
"""RFC 8841 default when the remote SDP has no ``a=max-message-size`` line."""


@dataclass(slots=True)
class ChannelCounters:
    """Traffic counters of one data channel."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped_in: int = 0
    """Incoming messages ignored (text frames, oversized, or after close)."""
    send_waits: int = 0
    """How often ``send`` waited for ``bufferedAmount`` to drain."""
    writable_waits: int = 0
    """How often ``wait_writable`` waited (the sender then merged what queued meanwhile)."""


class DataChannel:
    """An aiortc ``RTCDataChannel`` as a :class:`collab.types.Channel`.

    Args:
        channel: the aiortc channel; it may already be open (a channel handed over by the
            ``datachannel`` event of an answering connection usually is).
        label: a name for logs (the remote peer id).
        high_water: ``send`` waits while ``bufferedAmount`` is above this.
        low_water: set as ``bufferedAmountLowThreshold``; sending resumes below it.
        max_inbox: received messages queued before the channel is closed as overloaded.
        max_incoming: largest accepted incoming message; a larger one closes the channel.
        on_receive: called with every accepted incoming message before it is queued (must
            not raise; used to watch the remote's sync step 1).

    Example:
        >>> adapter = DataChannel(rtc_channel, label="peer-1")  # doctest: +SKIP
        >>> await adapter.wait_open()  # doctest: +SKIP
        >>> await adapter.send(b"\\x00\\x00\\x01\\x00")  # doctest: +SKIP
    """

    def __init__(
        self,
        channel: RTCDataChannel,
        *,
        label: str = "",
        high_water: int = 1 << 20,
        low_water: int = 256 * 1024,
        max_inbox: int = 10_000,
        max_incoming: int = 262_144,
        on_receive: Callable[[bytes], None] | None = None,
    ) -> None:
        self._channel = channel
        self.label = label or channel.label
        self._high_water = high_water
        self._max_incoming = max_incoming
        self.counters = ChannelCounters()
        self.close_reason = ""
        self._on_receive = on_receive
        self._opened = anyio.Event()
        self._closed = anyio.Event()
        self._drained = anyio.Event()
        self._writable = anyio.Event()
        self._low_water = low_water
        self._send_lock = anyio.Lock()
        self._inbox_send, self._inbox_recv = anyio.create_memory_object_stream[bytes](max_inbox)
        channel.bufferedAmountLowThreshold = low_water
        _sack_hooks(channel.transport).append(self._on_sack)
        channel.on("message", self._on_message)
        channel.on("open", self._on_open)
        channel.on("close", self._on_close)
        channel.on("bufferedamountlow", self._on_low)
        if channel.readyState == "open":
            self._opened.set()
        elif channel.readyState == "closed":
            self._mark_closed("closed before adoption")

    # ------------------------------------------------------------------ pyee callbacks
    def _on_open(self) -> None:
        self._opened.set()

    def _on_close(self) -> None:
        self._mark_closed(self.close_reason or "remote closed")

    def _on_low(self) -> None:
        self._drained.set()
        self._writable.set()

    def _on_message(self, message: Any) -> None:
        if self._closed.is_set():
            self.counters.dropped_in += 1
            return
        if not isinstance(message, bytes):
            # y-webrtc only ever sends binary; a text frame is not a y-protocols message.
            self.counters.dropped_in += 1
            log.warning("%s: ignored a text data-channel message", self.label)
            return
        if len(message) > self._max_incoming:
            self.counters.dropped_in += 1
            log.warning("%s: %d-byte message exceeds our limit", self.label, len(message))
            self._abort("too-large")
            return
        self.counters.messages_in += 1
        self.counters.bytes_in += len(message)
        if self._on_receive is not None:
            self._on_receive(message)
        try:
            self._inbox_send.send_nowait(message)
        except anyio.WouldBlock:
            self.counters.dropped_in += 1
            log.warning("%s: inbox full, closing the connection", self.label)
            self._abort("overloaded")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.counters.dropped_in += 1

    def _abort(self, reason: str) -> None:
        self.close_reason = reason
        self._channel.close()
        self._mark_closed(reason)

    def _mark_closed(self, reason: str) -> None:
        if self._closed.is_set():
            return
        if not self.close_reason:
            self.close_reason = reason
        self._closed.set()
        self._drained.set()
        self._writable.set()
        hooks = _sack_hooks(self._channel.transport)
        if self._on_sack in hooks:
            hooks.remove(self._on_sack)
        self._opened.set()  # wake waiters; they re-check
        self._inbox_send.close()

    # ------------------------------------------------------------------ Channel protocol
    @property
    def max_message_size(self) -> int:
        """The remote's advertised ``a=max-message-size`` (65536 if it advertised none)."""
        transport = self._channel.transport
        size = getattr(transport, "_remote_max_message_size", _REMOTE_DEFAULT_MAX)
        if not isinstance(size, int) or size < 0:
            return _REMOTE_DEFAULT_MAX
        return size if size > 0 else _UNLIMITED

    @property
    def is_open(self) -> bool:
        """True while the channel is open and not closed by us."""
        return self._opened.is_set() and not self._closed.is_set()

    @property
    def closed(self) -> bool:
        """True once the channel closed (either side)."""
        return self._closed.is_set()

    @property
    def buffered_amount(self) -> int:
        """Bytes queued in the data channel, not yet handed to SCTP."""
        return int(self._channel.bufferedAmount)

    async def wait_open(self) -> None:
        """Wait until the channel is open.

        Raises:
            TransportError: ``closed`` if it closed before opening.
        """
        await self._opened.wait()
        if self._closed.is_set():
            raise TransportError("closed", self.close_reason)

    async def wait_closed(self) -> None:
        """Wait until the channel is closed."""
        await self._closed.wait()

    async def send(self, message: bytes) -> None:
        """Send one whole binary message, waiting while the send buffer is above high water.

        Raises:
            ProtocolError: ``too-large`` if the message exceeds :attr:`max_message_size`.
            TransportError: ``closed`` if the channel is (or becomes) closed.
        """
        if len(message) > self.max_message_size:
            raise ProtocolError(
                "too-large",
                f"{len(message)} bytes > remote max-message-size {self.max_message_size}",
            )
        channel = self._channel
        if (
            not self._send_lock.locked()
            and self._opened.is_set()
            and not self._closed.is_set()
            and channel.bufferedAmount <= self._high_water
            and channel.readyState == "open"
        ):
            # Fast path (nobody queued before us, room in the buffer): hand the message to
            # aiortc without a checkpoint. Each yield is a whole event-loop iteration (an
            # epoll call), which at typing rates cost more than the send itself; the sync
            # room's send loop yields between the messages of a burst (pacing, see
            # performance-notes §3).
            self._send_now(message)
            return
        async with self._send_lock:
            await self.wait_open()
            while self._channel.bufferedAmount > self._high_water and not self._closed.is_set():
                self.counters.send_waits += 1
                self._drained = anyio.Event()
                await self._drained.wait()
            if self._closed.is_set() or self._channel.readyState != "open":
                raise TransportError("closed", self.close_reason or "channel not open")
            self._send_now(message)
        # Pace: let aiortc's flush run after a wait (performance-notes §3, burst pathology).
        await anyio.lowlevel.checkpoint()

    def _send_now(self, message: bytes) -> None:
        try:
            self._channel.send(message)
        except ValueError as e:  # aiortc: larger than the remote's max-message-size
            raise ProtocolError("too-large", str(e)) from None
        except (InvalidStateError, ConnectionError) as e:
            raise TransportError("closed", str(e) or "channel not open") from None
        self.counters.messages_out += 1
        self.counters.bytes_out += len(message)

    @property
    def writable(self) -> bool:
        """True when nothing sent earlier is still unacknowledged: the data channel's queue
        is empty and SCTP has no data in flight (read from aiortc's association)."""
        if self._closed.is_set():
            return True
        return self.idle and not getattr(self._channel.transport, "_flight_size", 0)

    async def wait_writable(self) -> None:
        """Wait until :attr:`writable` (at once if it is, or once the channel closed).

        Nagle's rule for CRDT updates: the sync room's sender waits here (bounded by
        ``SyncOptions.coalesce_wait``) before taking queued updates, so that while a message
        is in flight the updates typed meanwhile are merged into the next one instead of
        each going out alone (every message costs a DATA chunk, a SACK and their DTLS
        records and syscalls on both ends). At typing rates updates do not come here:
        :meth:`try_send` sends them as soon as nothing waits to be transmitted."""
        channel = self._channel
        while not self.writable:
            self.counters.writable_waits += 1
            self._writable = anyio.Event()
            channel.bufferedAmountLowThreshold = 0  # fire "bufferedamountlow" at empty
            try:
                await self._writable.wait()  # set by a SACK, the buffer draining, or close
            finally:
                channel.bufferedAmountLowThreshold = self._low_water

    @property
    def idle(self) -> bool:
        """True when nothing sent earlier still waits to be transmitted: the data channel's
        buffer and SCTP's outbound queue are empty (what is in flight may still be
        unacknowledged: the remote acknowledges up to 200 ms late, as browsers and
        :mod:`collab.peer.sctp_tuning` do)."""
        if self._channel.bufferedAmount:
            return False
        return not getattr(self._channel.transport, "_outbound_queue", ())

    def try_send(self, message: bytes) -> bool:
        """Send ``message`` now if that needs no waiting at all — open, nobody queued in
        :meth:`send`, nothing waiting to be transmitted (:attr:`idle`), within the remote's
        size limit — and return True; else return False and send nothing (the caller queues
        it). Synchronous: the sync room calls it from a document event, saving its send loop
        a task switch per delivered message. A message still unacknowledged does not stop
        it: the remote delays its acknowledgement (≤ 200 ms), and a keystroke must not wait
        for that; bursts are merged by the sync room's pacing and :meth:`wait_writable`."""
        if (
            self._send_lock.locked()
            or not self._opened.is_set()
            or not self.idle
            or self._closed.is_set()
            or len(message) > self.max_message_size
            or self._channel.readyState != "open"
        ):
            return False
        try:
            self._send_now(message)
        except (ProtocolError, TransportError):
            return False
        return True

    def _on_sack(self) -> None:
        if not self._writable.is_set() and self.writable:
            self._writable.set()

    async def recv(self) -> bytes:
        """Receive the next message.

        Raises:
            TransportError: ``closed`` once the channel closed and the inbox is drained.
        """
        try:
            # receive_nowait first: anyio's receive() yields once even when a message is
            # waiting (one more event-loop iteration per message)
            return self._inbox_recv.receive_nowait()
        except anyio.WouldBlock:
            pass
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise TransportError("closed", self.close_reason or "channel closed") from None
        try:
            return await self._inbox_recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise TransportError("closed", self.close_reason or "channel closed") from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return messages(self)

    async def close(self, reason: str = "") -> None:
        """Close the channel (idempotent); ``reason`` is logged and kept in ``close_reason``."""
        if self._closed.is_set():
            self._inbox_recv.close()
            return
        if reason:
            log.info("%s: closing data channel: %s", self.label, reason)
        self.close_reason = reason or "closed locally"
        self._channel.close()
        self._mark_closed(self.close_reason)
        self._inbox_recv.close()


def _sack_hooks(sctp: Any) -> list[Callable[[], None]]:
    """Callbacks run after ``sctp`` (aiortc's ``RTCSctpTransport``) handled a SACK: aiortc
    has no event for "data acknowledged", so its handler is wrapped once per association."""
    hooks: list[Callable[[], None]] | None = getattr(sctp, "_collab_sack_hooks", None)
    if hooks is not None:
        return hooks
    found: list[Callable[[], None]] = []
    original = getattr(sctp, "_receive_sack_chunk", None)
    if original is None:  # not aiortc's transport (a test double): no hooks ever run
        return found

    async def receive_sack_chunk(chunk: Any) -> None:
        await original(chunk)
        for hook in tuple(found):
            hook()

    sctp._receive_sack_chunk = receive_sack_chunk
    sctp._collab_sack_hooks = found
    return found


def watch_peer_connection(
    pc: RTCPeerConnection,
    *,
    on_state: Callable[[str], None],
    on_datachannel: Callable[[RTCDataChannel], None],
) -> None:
    """Forward ``pc``'s pyee events to plain callbacks (``connectionState`` string / channel)."""

    def state_changed() -> None:
        on_state(str(pc.connectionState))

    pc.on("connectionstatechange", state_changed)
    pc.on("datachannel", on_datachannel)


def selected_candidate_types(pc: RTCPeerConnection) -> tuple[str, str] | None:
    """``(local, remote)`` types of the ICE candidate pair in use (``host``, ``srflx``,
    ``prflx``, ``relay``: a ``relay`` local type means every packet goes through TURN), or
    None before ICE selected one. Read from aioice's connection (no public accessor)."""
    sctp = pc.sctp
    ice = getattr(getattr(sctp, "transport", None), "transport", None)
    nominated = getattr(getattr(ice, "_connection", None), "_nominated", None)
    if not isinstance(nominated, dict) or not nominated:
        return None
    pair = nominated.get(1) or next(iter(nominated.values()))
    local = getattr(getattr(pair, "local_candidate", None), "type", None)
    remote = getattr(getattr(pair, "remote_candidate", None), "type", None)
    if not isinstance(local, str) or not isinstance(remote, str):
        return None
    return local, remote


def sctp_rtt(pc: RTCPeerConnection) -> float | None:
    """Smoothed SCTP round-trip time in seconds (from SACKs), or None before any sample.

    It includes the remote's acknowledgement delay: browsers and collab peers
    (:mod:`collab.peer.sctp_tuning`) acknowledge every second packet or within 200 ms, so a
    connection carrying one message at a time reads tens of milliseconds even on a LAN."""
    sctp = pc.sctp
    srtt = getattr(sctp, "_srtt", None) if sctp is not None else None
    if isinstance(srtt, float) and math.isfinite(srtt):
        return srtt
    return None
