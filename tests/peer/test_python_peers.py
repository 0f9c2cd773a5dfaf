"""Python ↔ Python peers over real aiortc data channels, through real signaling servers
(ours under uvicorn, and y-webrtc's own bin/server.js)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from collab.document import Document
from collab.peer import PeerConfig, SignalingClient, WebrtcPeer, WebrtcRoom
from collab.protocol import AwarenessEntry, encode_awareness
from collab.types import Channel
from tests.support.servers import YWebrtcServer

pytestmark = [pytest.mark.anyio, pytest.mark.netns]

CFG = PeerConfig(ice_servers=[], connect_timeout=15)
TIMEOUT = 30


async def until(peer: WebrtcPeer, predicate: Callable[[], bool]) -> None:
    """Wait for ``predicate`` re-checked on every document/connection change of ``peer``."""
    changed = anyio.Event()

    def poke(*_: object) -> None:
        changed.set()

    handle = peer.sync.observe(poke)
    aw = peer.awareness.observe(poke)
    try:
        while not predicate():
            await changed.wait()
            changed = anyio.Event()
    finally:
        peer.sync.unobserve(handle)
        peer.awareness.unobserve(aw)


def text(peer: WebrtcPeer) -> str:
    return str(peer.document.text())


async def test_two_peers_converge_edits_and_awareness(signaling_url: str) -> None:
    room = f"two-{random.getrandbits(32)}"
    async with (
        WebrtcPeer(room, signaling_url, config=CFG) as a,
        WebrtcPeer(room, signaling_url, config=CFG) as b,
    ):
        with anyio.fail_after(TIMEOUT):
            await a.wait_for_peers(1)
            await b.wait_for_peers(1)
            await a.wait_synced()
            await b.wait_synced()
        # concurrent edits on both sides, then awareness both ways
        for i in range(20):
            a.document.text().insert(0, f"a{i} ")
            b.document.text().insert(len(text(b)), f"b{i} ")
        a.awareness.set_local_state({"user": {"name": "Ada"}})
        b.awareness.set_local_state({"user": {"name": "Bob ✓"}})
        with anyio.fail_after(TIMEOUT):
            await until(a, lambda: text(a) == text(b) and len(text(a)) > 100)
            await until(b, lambda: text(a) == text(b))
            await until(
                a,
                lambda: a.awareness.states.get(b.document.client_id) == {"user": {"name": "Bob ✓"}},
            )
            await until(
                b, lambda: b.awareness.states.get(a.document.client_id) == {"user": {"name": "Ada"}}
            )
        assert all(f"a{i} " in text(a) and f"b{i} " in text(a) for i in range(20))
        (stats,) = await a.stats()
        assert stats.state == "open" and stats.remote_id == b.peer_id
        assert stats.messages_out > 0 and stats.messages_in > 0
        assert stats.max_message_size == 262_144
        assert stats.rtt is not None and stats.rtt > 0


async def test_three_peers_and_rejoin_resyncs(signaling_url: str) -> None:
    room = f"three-{random.getrandbits(32)}"
    async with (
        WebrtcPeer(room, signaling_url, config=CFG) as a,
        WebrtcPeer(room, signaling_url, config=CFG) as b,
    ):
        c_doc = Document()
        async with WebrtcPeer(room, signaling_url, config=CFG, document=c_doc) as c:
            with anyio.fail_after(TIMEOUT):
                for p in (a, b, c):
                    await p.wait_for_peers(2)
            a.document.text().insert(0, "A")
            b.document.text().insert(0, "B")
            c.document.text().insert(0, "C")
            with anyio.fail_after(TIMEOUT):
                for p in (a, b, c):
                    await until(p, lambda p=p: len(text(p)) == 3)
            assert text(a) == text(b) == text(c)
        # c left; a and b keep editing; c comes back with its old document and resyncs
        with anyio.fail_after(TIMEOUT):
            await a.room.wait_until(lambda: len(a.connected_peers()) == 1)
        a.document.text().insert(0, "while-away ")
        c_doc.text().insert(0, "offline-c ")
        async with WebrtcPeer(room, signaling_url, config=CFG, document=c_doc) as c2:
            with anyio.fail_after(TIMEOUT):
                await c2.wait_for_peers(2)
                for p in (a, b, c2):
                    await until(p, lambda p=p: "while-away" in text(p) and "offline-c" in text(p))
                await until(b, lambda: text(a) == text(b) == text(c2))


async def test_password_room(signaling_url: str) -> None:
    room = f"secret-{random.getrandbits(32)}"
    async with (
        WebrtcPeer(room, signaling_url, password="right", config=CFG) as a,
        WebrtcPeer(room, signaling_url, password="wrong", config=CFG) as intruder,
        WebrtcPeer(room, signaling_url, password="right", config=CFG) as b,
    ):
        a.document.text().insert(0, "classified")
        with anyio.fail_after(TIMEOUT):
            await b.wait_for_peers(1)
            await until(b, lambda: text(b) == "classified")
        # the intruder's announces never decrypt: it saw payloads, but nobody connected
        assert intruder.room.counters.undecryptable > 0
        assert intruder.peers() == [] and text(intruder) == ""
        assert [p.peer_id for p in a.peers()] == [b.peer_id]


async def test_glare_resolves_to_one_connection(ywebrtc_url: str) -> None:
    """Both rooms offer to each other at the same instant (announce-driven initiation is
    disabled with max_conns=0): y-webrtc's token rule must leave exactly one connection."""
    cfg = PeerConfig(ice_servers=[], max_conns=0, connect_timeout=15)
    room = f"glare-{random.getrandbits(32)}"
    async with (
        WebrtcPeer(room, ywebrtc_url, config=cfg) as a,
        WebrtcPeer(room, ywebrtc_url, config=cfg) as b,
    ):
        with anyio.fail_after(TIMEOUT):
            await a.room.signaling.wait_connected()
            await b.room.signaling.wait_connected()
        a.room._open_remote(b.peer_id, initiator=True)
        b.room._open_remote(a.peer_id, initiator=True)
        a.document.text().insert(0, "x")
        with anyio.fail_after(TIMEOUT):
            await a.wait_for_peers(1)
            await b.wait_for_peers(1)
            await until(b, lambda: text(b) == "x")
        # Which rule resolved it depends on timing: if both offers were out, the larger token
        # rejected the other (glare_rejected); if one side had not emitted its offer yet, it
        # accepted the incoming one on its initiator connection (y-webrtc does the same).
        # Either way exactly one connection with one offerer must remain.
        assert len(a.peers()) == len(b.peers()) == 1
        sa, sb = (await a.stats())[0], (await b.stats())[0]
        assert {sa.initiator, sb.initiator} == {True, False}  # one offer won


async def test_signaling_loss_reconnects_and_reannounces(tmp_path: Path) -> None:
    cfg = PeerConfig(ice_servers=[], reconnect_min=0.05, reconnect_max=0.2)
    room = f"reconnect-{random.getrandbits(32)}"
    server = YWebrtcServer(tmp_path / "ywebrtc.log")
    server.start()
    try:
        a = WebrtcPeer(room, server.url, config=cfg)
        await a.start()
        try:
            with anyio.fail_after(TIMEOUT):
                await a.room.signaling.wait_connected()
        except BaseException:
            await a.close()
            raise
    finally:
        server.stop()
    # the server is gone; a reconnects once it is back (same port), re-subscribes and
    # re-announces, so a newcomer finds it
    try:
        server.start()
        try:
            async with WebrtcPeer(room, server.url, config=cfg) as b:
                b.document.text().insert(0, "after the outage")
                with anyio.fail_after(TIMEOUT):
                    await a.wait_for_peers(1)
                    await until(a, lambda: text(a) == "after the outage")
            assert a.room.signaling.counters.connects >= 2
        finally:
            server.stop()
    finally:
        await a.close()


EVIL_CLIENT = 424242


class _GarbageServer:
    """Sends hostile bytes on its data channel, then one valid awareness message."""

    def __init__(self, payloads: list[bytes]) -> None:
        self.payloads = payloads
        self.done = anyio.Event()

    async def serve(self, channel: Channel, *, label: str) -> None:
        for p in self.payloads:
            await channel.send(p)
        await channel.send(encode_awareness((AwarenessEntry(EVIL_CLIENT, 1, {"evil": 1}),)))
        self.done.set()
        async for _ in channel:
            pass


@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param([bytes([0x07, 0xFF, 0x00, 0x13])], id="unknown-type"),
        pytest.param([b"\x00\x02\x7f\x01"], id="truncated-update"),
        pytest.param([b"\x00\x01\x05\x01\x02\x03\x04\x05"], id="bad-step2"),
        pytest.param([random.Random(7).randbytes(2000)], id="random-bytes"),
        pytest.param([b"\x01\x03\x01\x07"], id="truncated-awareness"),
    ],
)
async def test_garbage_on_data_channel_is_contained(
    ywebrtc_url: str, payloads: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    room = f"garbage-{random.getrandbits(32)}"
    async with (
        WebrtcPeer(room, ywebrtc_url, config=CFG) as a,
        WebrtcPeer(room, ywebrtc_url, config=CFG) as c,
    ):
        a.document.text().insert(0, "intact")
        with anyio.fail_after(TIMEOUT):
            await until(c, lambda: text(c) == "intact")
        sync = _GarbageServer(payloads)
        async with (
            SignalingClient(ywebrtc_url, CFG) as sig,
            WebrtcRoom(room, sig, sync, config=CFG) as evil,
        ):
            with anyio.fail_after(TIMEOUT):
                await sync.done.wait()
                # a either ignored the garbage (then the valid message after it arrives) or
                # closed the connection to evil
                await until(
                    a,
                    lambda: (
                        EVIL_CLIENT in a.awareness.states or evil.peer_id not in a.connected_peers()
                    ),
                )
            # the document is untouched and the other peer still served
            c.document.text().insert(0, "still ")
            with anyio.fail_after(TIMEOUT):
                await until(a, lambda: text(a) == "still intact")
            assert c.peer_id in a.connected_peers()
        assert any(
            "ignoring message" in r.message or "closing after bad message" in r.message
            for r in caplog.records
            if r.name == "collab.sync"
        )


async def test_many_rooms_share_one_signaling_connection(signaling_url: str) -> None:
    """One process, two rooms with their own sync rooms (as the archival replica does), one
    signaling socket for both."""
    from collab.peer import SignalingPool
    from collab.sync import SyncRoom

    syncs = [SyncRoom(), SyncRoom()]
    names = [f"pool-a-{random.getrandbits(32)}", f"pool-b-{random.getrandbits(32)}"]
    syncs[0].document.text().insert(0, "archive A")
    syncs[1].document.text().insert(0, "archive B")
    async with (
        SignalingPool(CFG) as pool,
        pool.room(names[0], signaling_url, syncs[0]) as room_a,
        pool.room(names[1], signaling_url, syncs[1]) as room_b,
        WebrtcPeer(names[0], signaling_url, config=CFG) as reader_a,
        WebrtcPeer(names[1], signaling_url, config=CFG) as reader_b,
    ):
        assert room_a.signaling is room_b.signaling is pool.client(signaling_url)
        with anyio.fail_after(TIMEOUT):
            await until(reader_a, lambda: text(reader_a) == "archive A")
            await until(reader_b, lambda: text(reader_b) == "archive B")
        assert room_a.connected_peers() == [reader_a.peer_id]
        assert room_b.connected_peers() == [reader_b.peer_id]
        assert pool.client(signaling_url).counters.connects == 1
    for sync in syncs:
        sync.close()


async def test_offer_flood_is_capped_and_bad_sdp_contained(ywebrtc_url: str) -> None:
    """Offers from more peer ids than ``max_remotes`` are refused; an unparsable offer only
    costs that one connection attempt."""
    cfg = PeerConfig(ice_servers=[], max_remotes=2, connect_timeout=15)
    room = f"flood-{random.getrandbits(32)}"
    async with WebrtcPeer(room, ywebrtc_url, config=cfg) as a:
        with anyio.fail_after(TIMEOUT):
            await a.room.signaling.wait_connected()
        bogus = {"type": "offer", "sdp": "v=0\r\nthis is not an sdp\r\n"}
        for i in range(5):
            a.room._enqueue(
                ("data", {"type": "signal", "from": f"x{i}", "to": a.peer_id, "signal": bogus})
            )
        with anyio.fail_after(TIMEOUT):
            await a.room.wait_until(lambda: a.room.counters.refused >= 1)
            # the bogus offers (no data-channel section) close their attempts at once
            await a.room.wait_until(lambda: a.peers() == [])
        assert a.room.counters.refused + a.room.counters.connections == 5
        # a real peer still gets through once the bogus attempts are gone
        async with WebrtcPeer(room, ywebrtc_url, config=CFG) as b:
            a.document.text().insert(0, "still serving")
            with anyio.fail_after(TIMEOUT):
                await until(b, lambda: text(b) == "still serving")
