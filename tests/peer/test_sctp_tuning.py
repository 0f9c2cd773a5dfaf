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

from collab.peer import DataChannel, PeerConfig
from collab.peer.remote import rtc_configuration
from collab.peer.sctp_tuning import SackPolicy, TunedSctpTransport, install, sack_policy

# generous: a loaded 2-core box may stall a turn for longer than RFC 4960's 200 ms, and a
# late timer only adds a SACK packet, which these tests count against a margin
POLICY = SackPolicy(delay=0.5, every=2)


@contextlib.asynccontextmanager
async def channel_pair(
    policy: SackPolicy | None,
) -> AsyncIterator[tuple[DataChannel, DataChannel, RTCPeerConnection, RTCPeerConnection]]:
    install()
    cfg = rtc_configuration(PeerConfig())
    with sack_policy(policy):
        pc1, pc2 = RTCPeerConnection(cfg), RTCPeerConnection(cfg)
        try:
            left = DataChannel(pc1.createDataChannel("t"), label="left")
            box: list[DataChannel] = []
            got = anyio.Event()

            @pc2.on("datachannel")
            def on_datachannel(channel: Any) -> None:
                box.append(DataChannel(channel, label="right"))
                got.set()

            await pc1.setLocalDescription(await pc1.createOffer())
            await pc2.setRemoteDescription(pc1.localDescription)
            await pc2.setLocalDescription(await pc2.createAnswer())
            await pc1.setRemoteDescription(pc2.localDescription)
            with anyio.fail_after(30):
                await left.wait_open()
                await got.wait()
                await box[0].wait_open()
            yield left, box[0], pc1, pc2
            await left.close()
            await box[0].close()
        finally:
            await pc1.close()
            await pc2.close()


def packets_out(pc: RTCPeerConnection) -> int:
    """Datagrams the connection's DTLS transport sent (aiortc's own counter)."""
    assert pc.sctp is not None
    return int(pc.sctp.transport._RTCDtlsTransport__tx_packets)


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
async def test_losses_are_acknowledged_at_once_and_repaired() -> None:
    """Fault injection: every 7th datagram from left to right is lost. Gaps are reported at
    once (the sender's fast retransmit needs them), every message arrives, in order."""
    messages = 300
    async with channel_pair(POLICY) as (left, right, pc1, pc2):
        assert pc1.sctp is not None
        ice = pc1.sctp.transport.transport  # RTCIceTransport
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
