"""Delayed, bundled SCTP acknowledgements (``collab.peer.sctp_tuning``, issue 14): two real
aiortc peer connections in this process, the datagrams each side actually sent counted on
its DTLS transport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    WEBRTC_BINARY,
    DataChunk,
    parse_packet,
    serialize_packet,
)

from collab.peer import DataChannel
from collab.peer.sctp_tuning import SackPolicy, TunedSctpTransport, install, sack_policy
from tests.support.peers import channel_pair as aiortc_channel_pair

# generous: a loaded 2-core box may stall a turn for longer than RFC 4960's 200 ms, and a
# late timer only adds a SACK packet, which these tests count against a margin
POLICY = SackPolicy(delay=0.5, every=2)


@contextlib.asynccontextmanager
async def channel_pair(
    policy: SackPolicy | None,
) -> AsyncIterator[tuple[DataChannel, DataChannel, RTCPeerConnection, RTCPeerConnection]]:
    """Two aiortc connections whose SCTP associations use ``policy``."""
    install()
    with sack_policy(policy):  # read when the associations are created, inside
        async with aiortc_channel_pair() as (left, right, _raw, pc1, pc2):
            yield left, right, pc1, pc2


def packets_out(pc: RTCPeerConnection) -> int:
    """Datagrams the connection's DTLS transport sent (aiortc's own counter)."""
    assert pc.sctp is not None
    dtls: Any = pc.sctp.transport
    return int(dtls._RTCDtlsTransport__tx_packets)


async def conversation(left: DataChannel, right: DataChannel, turns: int) -> None:
    """``left`` says something, ``right`` answers, ``turns`` times (typing on both sides, an
    awareness message and its y-webrtc echo)."""
    for i in range(turns):
        await left.send(b"ping %d" % i)
        assert await right.recv() == b"ping %d" % i
        await right.send(b"pong %d" % i)
        assert await left.recv() == b"pong %d" % i


@pytest.mark.anyio
async def test_a_conversation_needs_no_sack_packets() -> None:
    """Every acknowledgement rides on the answer going the other way: about half the
    datagrams of aiortc's one-SACK-per-packet, measured on the same exchange."""
    turns = 40
    counts: dict[str, int] = {}
    for name, policy in (("aiortc", None), ("tuned", POLICY)):
        async with channel_pair(policy) as (left, right, pc1, pc2):
            before = packets_out(pc1) + packets_out(pc2)
            with anyio.fail_after(60):
                await conversation(left, right, turns)
            counts[name] = packets_out(pc1) + packets_out(pc2) - before
            sctp1, sctp2 = pc1.sctp, pc2.sctp
            if policy is None:
                assert not isinstance(sctp1, TunedSctpTransport) or sctp1._sack_policy is None
            else:
                assert isinstance(sctp1, TunedSctpTransport)
                assert isinstance(sctp2, TunedSctpTransport)
                bundled = sctp1.sacks_bundled + sctp2.sacks_bundled
                alone = sctp1.sacks_sent + sctp2.sacks_sent
                assert bundled >= 2 * turns - 4, (bundled, alone)
                assert alone <= 6, (bundled, alone)
    # aiortc: each message and its SACK (4 per turn); tuned: the messages (2 per turn) plus
    # the last SACK, and a few late timers at most
    assert counts["aiortc"] >= 4 * turns - 2, counts
    assert counts["tuned"] <= 2 * turns + 8, counts


@pytest.mark.anyio
async def test_a_one_way_stream_is_acknowledged_every_second_packet() -> None:
    """No answer to ride on: a SACK for every second packet (RFC 4960 §6.2), and the last
    one within the delay; the sender's messages all arrive and all get acknowledged."""
    messages = 60
    async with channel_pair(POLICY) as (left, right, pc1, pc2):
        sctp1, sctp2 = pc1.sctp, pc2.sctp
        assert isinstance(sctp1, TunedSctpTransport) and isinstance(sctp2, TunedSctpTransport)
        sent_before = sctp2.sacks_sent
        with anyio.fail_after(60):
            for i in range(messages):
                await left.send(b"m%d" % i)
                assert await right.recv() == b"m%d" % i  # one packet at a time
            await left.wait_writable()  # everything acknowledged, the last one by the timer
        sacks = sctp2.sacks_sent - sent_before
        assert messages // 2 <= sacks <= messages // 2 + 8, sacks
        assert sctp1._flight_size == 0


@pytest.mark.anyio
async def test_every_message_arrives_in_order_over_a_lossy_link() -> None:
    """Fault injection: every 7th datagram from left to right is lost (DATA and the SACKs
    riding on it): every message still arrives, in order (gap reports themselves: the
    crafted-packet tests below)."""
    messages = 300
    async with channel_pair(POLICY) as (left, right, pc1, pc2):
        assert pc1.sctp is not None
        ice: Any = pc1.sctp.transport.transport  # RTCIceTransport
        send: Callable[[bytes], Any] = ice._send
        count = [0]

        async def lossy_send(data: bytes) -> None:
            count[0] += 1
            if count[0] % 7:
                await send(data)

        ice._send = lossy_send
        received: list[bytes] = []

        async def reader() -> None:
            while len(received) < messages:
                received.append(await right.recv())

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                for i in range(messages):
                    await left.send(b"x%03d" % i + b"." * 300)
        ice._send = send
        assert received == [b"x%03d" % i + b"." * 300 for i in range(messages)]
        sctp2 = pc2.sctp
        assert isinstance(sctp2, TunedSctpTransport)
        assert count[0] > messages  # retransmissions happened


# ------------------------------------------------------------ one association, crafted packets


class FakeDtls:
    """What RTCSctpTransport needs of its DTLS transport: a state and a datagram sink."""

    state = "connected"

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []  # the chunks of each packet sent
        self.arrived = anyio.Event()

    async def _send_data(self, data: bytes) -> None:
        self.sent.append(parse_packet(data)[3])
        self.arrived.set()

    def _register_data_receiver(self, receiver: Any) -> None:
        pass

    def _unregister_data_receiver(self, receiver: Any) -> None:
        pass


def established(policy: SackPolicy) -> tuple[TunedSctpTransport, FakeDtls]:
    dtls = FakeDtls()
    with sack_policy(policy):
        sctp = TunedSctpTransport(dtls)  # type: ignore[arg-type]
    sctp._association_state = sctp.State.ESTABLISHED
    sctp._remote_port = 5000
    sctp._remote_verification_tag = 1234
    sctp._last_received_tsn = 99
    return sctp, dtls


def data_packet(sctp: TunedSctpTransport, tsn: int) -> bytes:
    chunk = DataChunk(flags=SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG)
    chunk.tsn, chunk.stream_id, chunk.stream_seq = tsn, 1, tsn - 100
    chunk.protocol, chunk.user_data = WEBRTC_BINARY, b"typed"
    return serialize_packet(5000, 5000, sctp._local_verification_tag, chunk)


def kinds(packet: list[Any]) -> list[str]:
    return [type(chunk).__name__ for chunk in packet]


@pytest.mark.anyio
async def test_every_second_packet_gaps_and_their_repair_are_acknowledged_at_once() -> None:
    sctp, dtls = established(SackPolicy(delay=0.5, every=2))
    await sctp._handle_data(data_packet(sctp, 100))
    assert dtls.sent == [] and sctp._sack_timer is not None  # the first one waits
    await sctp._handle_data(data_packet(sctp, 101))
    assert kinds(dtls.sent[-1]) == ["SackChunk"]  # the second one: at once
    assert dtls.sent[-1][0].cumulative_tsn == 101 and sctp._sack_timer is None
    await sctp._handle_data(data_packet(sctp, 102))
    assert len(dtls.sent) == 1  # waits again
    await sctp._handle_data(data_packet(sctp, 104))  # 103 lost: the gap is reported now
    sack = dtls.sent[-1][0]
    assert (sack.cumulative_tsn, sack.gaps) == (102, [(2, 2)])
    await sctp._handle_data(data_packet(sctp, 103))  # the repair: now as well
    sack = dtls.sent[-1][0]
    assert (sack.cumulative_tsn, sack.gaps) == (104, [])
    await sctp._handle_data(data_packet(sctp, 104))  # a duplicate: now
    assert dtls.sent[-1][0].duplicates == [104]
    assert len(dtls.sent) == 4 and sctp._sack_timer is None


@pytest.mark.anyio
async def test_a_pending_sack_rides_on_data_but_a_gap_report_is_never_lost() -> None:
    sctp, dtls = established(SackPolicy(delay=0.5, every=2))
    await sctp._handle_data(data_packet(sctp, 100))
    outgoing = DataChunk(flags=SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG)
    outgoing.user_data = b"answer"
    await sctp._send_chunk(outgoing)
    assert kinds(dtls.sent[-1]) == ["SackChunk", "DataChunk"]  # one packet, SACK first
    assert dtls.sent[-1][0].cumulative_tsn == 100 and sctp.sacks_bundled == 1
    assert not sctp._sack_needed and sctp._sack_timer is None
    # a full-size chunk: the pending SACK cannot ride, it waits for its timer
    await sctp._handle_data(data_packet(sctp, 101))
    outgoing.user_data = b"." * 1176
    await sctp._send_chunk(outgoing)
    assert kinds(dtls.sent[-1]) == ["DataChunk"] and sctp._sack_needed
    # a DATA chunk sent while a gap is known (aiortc answers a DCEP OPEN in the middle of
    # the packet): not bundled, and the gap report still goes out after the packet
    sctp._sack_misordered.add(103)
    outgoing.user_data = b"dcep ack"
    await sctp._send_chunk(outgoing)
    assert kinds(dtls.sent[-1]) == ["DataChunk"] and sctp._sack_needed
    await sctp._send_sack()
    sack = dtls.sent[-1][0]
    assert kinds(dtls.sent[-1]) == ["SackChunk"] and sack.gaps == [(2, 2)]


@pytest.mark.anyio
async def test_the_timer_acknowledges_a_lone_packet_and_stops_with_the_association() -> None:
    sctp, dtls = established(SackPolicy(delay=0.05, every=2))
    await sctp._handle_data(data_packet(sctp, 100))
    with anyio.fail_after(10):
        await dtls.arrived.wait()
    assert kinds(dtls.sent[-1]) == ["SackChunk"] and dtls.sent[-1][0].cumulative_tsn == 100
    await sctp._handle_data(data_packet(sctp, 101))
    timer = sctp._sack_timer
    assert timer is not None
    sctp._set_state(sctp.State.CLOSED)
    assert timer.cancelled() and sctp._sack_timer is None


@pytest.mark.anyio
async def test_without_a_policy_every_packet_is_acknowledged_as_aiortc_does() -> None:
    dtls = FakeDtls()
    with sack_policy(None):
        sctp = TunedSctpTransport(dtls)  # type: ignore[arg-type]
    sctp._association_state = sctp.State.ESTABLISHED
    sctp._remote_port, sctp._last_received_tsn = 5000, 99
    for tsn in (100, 101, 102):
        await sctp._handle_data(data_packet(sctp, tsn))
    assert [kinds(p) for p in dtls.sent] == [["SackChunk"]] * 3
