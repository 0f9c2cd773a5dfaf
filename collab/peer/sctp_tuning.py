"""Delayed and bundled SCTP acknowledgements (RFC 4960 §6.2) for aiortc's association: the one
change we make to aiortc's SCTP behaviour, contained here and applied by :func:`install`.

**What aiortc does.** Every received packet that carries DATA is answered at once by a SACK
in a packet of its own (``RTCSctpTransport._handle_data`` → ``_send_sack``), and every chunk
we send goes out alone (``_send_chunk``: "no bundling for now"). A typed update relayed by the
replica therefore costs four UDP datagrams — the DATA in, our SACK out, the DATA out, the
peer's SACK in — and each datagram costs a pure-Python trip through aioice, pyOpenSSL, the
SCTP parser and the event loop (~200–400 µs of CPU here, see the README's Capacity section).

**What this changes**, for associations created while a :class:`SackPolicy` is in force
(the default once installed; :func:`sack_policy(None) <sack_policy>` restores aiortc's
behaviour for the associations created in that context):

* a packet with DATA is acknowledged at the latest :attr:`SackPolicy.delay` seconds later
  (200 ms: RFC 4960's "SHOULD be generated within 200 ms"), or at once when it is the
  :attr:`SackPolicy.every`-th unacknowledged packet (RFC: "at least every second packet");
* the pending acknowledgement rides in front of the next DATA chunk we send on the same
  association (RFC 4960 §6.2 and §6.10: a SACK may be bundled with outbound DATA, control
  chunks first) whenever the packet stays within aiortc's packet size (1,189 bytes), so a
  conversation in both directions — typing on both sides, an awareness message and its
  y-webrtc echo — needs no SACK packets at all;
* anything unusual is acknowledged at once, as the RFC requires: out-of-order TSNs (gaps:
  the sender's fast retransmit depends on them), duplicates, FORWARD TSN, and every packet
  before the association is established or while it shuts down.

Stock browsers (Chromium's dcsctp, Firefox's usrsctp) delay and bundle their SACKs the same
way, so a browser's traffic to us already looks like this; our side now matches it.

Example:
    >>> install()
    >>> with sack_policy(SackPolicy(delay=0.2, every=2)):
    ...     pass  # associations created in here (and in tasks started here) use it
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from struct import pack

import aiortc.rtcpeerconnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcsctptransport import (
    SCTP_COMMON_HEADER_LENGTH,
    SCTP_MAX_PACKET_LENGTH,
    Chunk,
    DataChunk,
    ForwardTsnChunk,
    RTCSctpTransport,
    SackChunk,
)
from google_crc32c import value as crc32c  # what aiortc's serialize_packet uses

__all__ = [
    "DEFAULT_POLICY",
    "SackPolicy",
    "TunedSctpTransport",
    "install",
    "installed",
    "sack_policy",
]

log = logging.getLogger(__name__)

_SACK_LENGTH = 16  # a SACK chunk without gap blocks or duplicate TSNs (the only kind we delay)


@dataclass(frozen=True, slots=True)
class SackPolicy:
    """When a received DATA packet is acknowledged (see the module docstring)."""

    delay: float = 0.2
    """Seconds an acknowledgement may wait for a DATA chunk to ride on (RFC 4960: ≤ 0.5 s,
    SHOULD be ≤ 0.2 s)."""
    every: int = 2
    """Acknowledge at once when this many received packets are unacknowledged."""

    def __post_init__(self) -> None:
        if not 0 < self.delay <= 0.5:
            raise ValueError("SackPolicy.delay must be in (0, 0.5] seconds (RFC 4960 §6.2)")
        if self.every < 1:
            raise ValueError("SackPolicy.every must be >= 1")


DEFAULT_POLICY = SackPolicy()
"What associations use unless a :func:`sack_policy` block says otherwise."
_policy: ContextVar[SackPolicy | None] = ContextVar("collab_sack_policy", default=DEFAULT_POLICY)
_installed = False


class TunedSctpTransport(RTCSctpTransport):
    """aiortc's SCTP association with delayed, bundled SACKs (what :func:`install` makes
    ``RTCPeerConnection`` create). With no policy it behaves exactly as aiortc's."""

    def __init__(self, transport: RTCDtlsTransport, port: int = 5000) -> None:
        super().__init__(transport, port)
        self._sack_policy = _policy.get()
        self._sack_timer: asyncio.TimerHandle | None = None
        self._sack_task: asyncio.Task[None] | None = None
        self._sack_packets = 0  # received packets with DATA not yet acknowledged
        self._sack_immediate = False  # the packet being handled must be acknowledged now
        self._sack_packets_seen = False  # the packet being handled carried DATA
        self._sack_capture: list[Chunk] | None = None
        self.sacks_sent = 0
        "SACK packets sent on their own (a bundled SACK is not counted)."
        self.sacks_bundled = 0
        "SACKs that rode in front of a DATA chunk."

    # --------------------------------------------------------------- receiving
    async def _receive_data_chunk(self, chunk: DataChunk) -> None:
        self._sack_packets_seen = True
        await super()._receive_data_chunk(chunk)

    async def _receive_forward_tsn_chunk(self, chunk: ForwardTsnChunk) -> None:
        self._sack_immediate = True
        await super()._receive_forward_tsn_chunk(chunk)

    async def _handle_data(self, data: bytes) -> None:
        self._sack_packets_seen = False
        # a packet that fills a gap is acknowledged at once too (the sender leaves fast
        # recovery on it)
        self._sack_immediate = bool(self._sack_misordered)
        try:
            await super()._handle_data(data)
        finally:
            self._sack_packets_seen = False
            self._sack_immediate = False

    def _sack_now(self) -> bool:
        """Whether the acknowledgement needed must go out at once (RFC 4960 §6.2, §6.7)."""
        return (
            self._sack_immediate
            or bool(self._sack_misordered)
            or bool(self._sack_duplicates)
            or self._association_state != self.State.ESTABLISHED
        )

    async def _send_sack(self) -> None:
        # aiortc calls this after handling any packet while a SACK is needed
        policy = self._sack_policy
        if policy is None:
            await self._send_sack_now()
            return
        now = self._sack_now()
        if self._sack_packets_seen:
            self._sack_packets += 1
        elif not now:
            return  # a packet without DATA: the acknowledgement pending still waits
        if now or self._sack_packets >= policy.every:
            await self._send_sack_now()
        elif self._sack_timer is None:
            self._sack_timer = asyncio.get_running_loop().call_later(
                policy.delay, self._sack_timer_expired
            )

    async def _send_sack_now(self) -> None:
        self._sack_cancel()
        self.sacks_sent += 1
        await super()._send_sack()

    async def _send_sack_if_needed(self) -> None:
        # the timer's task: a packet handled since the timer fired may have sent it already
        if self._sack_needed and self._association_state != self.State.CLOSED:
            await self._send_sack_now()

    def _sack_cancel(self) -> None:
        self._sack_packets = 0
        if self._sack_timer is not None:
            self._sack_timer.cancel()
            self._sack_timer = None

    def _sack_timer_expired(self) -> None:
        self._sack_timer = None
        if not self._sack_needed or self._association_state == self.State.CLOSED:
            self._sack_packets = 0
            return
        # a timer callback cannot await: the send runs in a task of its own, kept and
        # checked here (aiortc runs its own T1-T3 retransmissions the same way)
        task = asyncio.get_running_loop().create_task(self._send_sack_if_needed())
        self._sack_task = task
        task.add_done_callback(self._sack_task_done)

    def _sack_task_done(self, task: asyncio.Task[None]) -> None:
        if self._sack_task is task:
            self._sack_task = None
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, ConnectionError):  # DTLS closed under us: nothing to acknowledge
            log.debug("delayed SACK not sent: %s", exc)
        elif exc is not None:
            log.error("delayed SACK failed", exc_info=exc)

    # --------------------------------------------------------------- sending
    async def _send_chunk(self, chunk: Chunk) -> None:
        capture = self._sack_capture
        if capture is not None:  # building a SACK to bundle (see _take_sack)
            capture.append(chunk)
            return
        if (
            self._sack_timer is not None  # a delayed acknowledgement is pending
            and self._sack_needed
            and isinstance(chunk, DataChunk)
            and not self._sack_now()  # (a gap or duplicate report is sent on its own)
        ):
            data = bytes(chunk)
            if SCTP_COMMON_HEADER_LENGTH + _SACK_LENGTH + len(data) <= SCTP_MAX_PACKET_LENGTH:
                sack = await self._take_sack()
                if sack is not None:
                    self.sacks_bundled += 1
                    await self._send_packet(sack + data)
                    return
        await super()._send_chunk(chunk)

    async def _take_sack(self) -> bytes | None:
        """The pending SACK chunk, built by aiortc's own ``_send_sack`` (which then clears
        what it acknowledged) with its send captured instead of transmitted; None, with the
        SACK sent on its own, if it is not the plain 16-byte chunk bundling expects."""
        captured: list[Chunk] = []
        self._sack_capture = captured
        building = super()._send_sack()
        try:
            # aiortc's _send_sack builds and "sends" (here: captures) without suspending;
            # run it to completion here, so that no other task can send while we capture
            building.send(None)
        except StopIteration:
            pass
        else:  # not reached with aiortc 1.16 (tests/peer/test_sctp_tuning.py would say)
            building.close()
            raise RuntimeError("aiortc's _send_sack suspended while building a SACK")
        finally:
            self._sack_capture = None
        self._sack_cancel()
        sack = [bytes(chunk) for chunk in captured]
        if (
            len(captured) == 1
            and isinstance(captured[0], SackChunk)
            and len(sack[0]) == _SACK_LENGTH
        ):
            return sack[0]
        for chunk in captured:  # not reached (see _sack_now): send what was built, as is
            self.sacks_sent += 1
            await super()._send_chunk(chunk)
        return None

    async def _send_packet(self, chunks: bytes) -> None:
        """One SCTP packet holding ``chunks`` (each already padded), as aiortc's
        ``serialize_packet`` frames a single chunk."""
        header = pack("!HHL", self._local_port, self._remote_port, self._remote_verification_tag)
        checksum = crc32c(header + b"\x00\x00\x00\x00" + chunks)
        await self._RTCSctpTransport__transport._send_data(  # type: ignore[attr-defined]
            header + pack("<L", checksum) + chunks
        )

    def _set_state(self, state: RTCSctpTransport.State) -> None:
        if state == self.State.CLOSED:
            self._sack_cancel()
            task = self._sack_task
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        super()._set_state(state)


def installed() -> bool:
    """Whether :func:`install` ran in this process."""
    return _installed


def install() -> None:
    """Make ``aiortc.RTCPeerConnection`` create :class:`TunedSctpTransport` associations
    (idempotent). Each association reads the :func:`sack_policy` of the context it is created
    in: the default :class:`SackPolicy` unless a ``sack_policy(None)`` block says otherwise."""
    global _installed
    if _installed:
        return
    aiortc.rtcpeerconnection.RTCSctpTransport = TunedSctpTransport  # type: ignore[attr-defined]
    _installed = True


@contextlib.contextmanager
def sack_policy(policy: SackPolicy | None) -> Iterator[None]:
    """Use ``policy`` for the associations created in this context (and in the tasks started
    from it); ``None``: aiortc's own acknowledgements (a SACK packet per DATA packet)."""
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)
