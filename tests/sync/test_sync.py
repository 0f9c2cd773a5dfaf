"""Tests for collab.sync: the y-webrtc per-connection sequence, relay, errors, backpressure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import TaskGroup

from collab.errors import TransportError
from collab.memnet import Faults, Link, MemoryChannel, MemoryNetwork, channel_pair, wait_idle
from collab.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    SyncStep1,
    SyncStep2,
    decode_message,
    encode_awareness,
    encode_query_awareness,
    encode_sync_step1,
    encode_update,
)
from collab.sync import (
    Connection,
    ConnectionAdded,
    ConnectionRemoved,
    DocumentUpdated,
    RoomEvent,
    SyncOptions,
    SyncRoom,
)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving() -> AsyncIterator[TaskGroup]:
    async with anyio.create_task_group() as tg:
        yield tg
        tg.cancel_scope.cancel()


def connect(tg: TaskGroup, a: SyncRoom, b: SyncRoom, link: Link) -> None:
    left, right = link.ends
    tg.start_soon(a.serve, left, "a->b")
    tg.start_soon(b.serve, right, "b->a")


async def test_connection_sequence_matches_y_webrtc() -> None:
    """On open: step 1, then (if any) awareness; step 1 is answered with step 2."""
    net = MemoryNetwork()
    link = net.link(faults=Faults(hold=True))
    room = SyncRoom()
    room.awareness.set_local_state({"user": "py"})
    room.document.text().insert(0, "hi")
    remote: MemoryChannel = link.ends[1]
    async with serving() as tg:
        tg.start_soon(room.serve, link.ends[0], "x")
        await wait_idle()
        sent = [decode_message(m) for m in link.in_flight[0]]
        assert sent == [
            SyncStep1(room.document.state_vector()),
            AwarenessMessage(room.awareness.encode([room.document.client_id])),
        ]
        net.step()
        net.step()
        await remote.send(encode_sync_step1(b"\x00"))
        net.step()
        await wait_idle()
        reply = decode_message(link.in_flight[0][-1])
        assert reply == SyncStep2(room.document.get_update(b"\x00"))
        # the room is not synced with us until it gets our step 2
        (connection,) = room.connections
        assert not connection.synced.is_set()
        await remote.send(b"\x00\x01\x02\x00\x00")
        await net.settle()
        assert connection.synced.is_set()


async def test_two_rooms_converge_and_report_events() -> None:
    a, b = SyncRoom(), SyncRoom()
    a.document.text().insert(0, "from a")
    b.document.map("meta")["k"] = "from b"
    a.document.map("meta")
    b.document.text()
    events: list[RoomEvent] = []
    a.observe(events.append)
    async with serving() as tg:
        connect(tg, a, b, MemoryNetwork().link())
        with anyio.fail_after(10):
            await a.wait_connected_synced()
            await b.wait_connected_synced()
        assert a.document.to_json() == b.document.to_json()
        assert a.document.to_json() == {"codemirror": "from a", "meta": {"k": "from b"}}
        (conn,) = a.connections
        # b announced its {} at clock 0 on open; y-protocols ignores clock 0 of unknown clients
        assert conn.remote_clients == {b.document.client_id}
        assert b.document.client_id not in a.awareness.states
        b.awareness.set_local_state({"name": "b"})
        await wait_idle()
        assert a.awareness.states[b.document.client_id] == {"name": "b"}
    kinds = [type(e) for e in events]
    assert kinds[0] is ConnectionAdded and kinds[-1] is ConnectionRemoved
    updates = [e for e in events if isinstance(e, DocumentUpdated)]
    assert len(updates) == 1 and isinstance(updates[0].origin, Connection)
    assert conn.stats.messages_in >= 2 and conn.stats.bytes_out > 0
    assert conn.close_reason == "cancelled"


@pytest.mark.parametrize("relay", [True, False])
async def test_chain_relays_updates_and_awareness(relay: bool) -> None:
    """a - b - c: only b's relaying lets a's edit and awareness reach c."""
    a, b, c = (SyncRoom(options=SyncOptions(relay=relay)) for _ in range(3))
    net = MemoryNetwork()
    async with serving() as tg:
        connect(tg, a, b, net.link())
        connect(tg, b, c, net.link())
        await wait_idle()
        a.document.text().insert(0, "relayed")
        a.awareness.set_local_state({"name": "a"})
        await wait_idle()
        reached = str(c.document.text()) == "relayed"
        assert reached is relay
        assert (a.document.client_id in c.awareness.states) is relay


async def test_query_awareness_is_answered_with_all_states() -> None:
    room = SyncRoom()
    room.awareness.apply([AwarenessEntry(5, 3, {"x": 1})], origin="elsewhere")
    left, right = channel_pair()
    async with serving() as tg:
        tg.start_soon(room.serve, left, "q")
        await right.recv()  # step 1
        await right.recv()  # awareness on open
        await right.send(encode_query_awareness())
        reply = decode_message(await right.recv())
        assert isinstance(reply, AwarenessMessage)
        assert {e.client_id: e.state for e in reply.entries} == {
            room.document.client_id: {},
            5: {"x": 1},
        }


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00\x02\x05\x01", "truncated"),
        (encode_update(b"\x05\xff\xff"), "bad-update"),
        (b"\x00\x00\x03\x01\x02", "truncated"),
        (b"\x01\x01\x05", "truncated"),
        (encode_awareness([AwarenessEntry(1, 1, {})]) + b"\x00", "trailing-bytes"),
        (b"\x00" + b"\x02" + b"\xff" * 12, "overflow"),
    ],
)
async def test_bad_message_closes_only_that_connection(message: bytes, reason: str) -> None:
    room = SyncRoom()
    other = SyncRoom()
    net = MemoryNetwork()
    bad = net.link()
    removed: list[Connection] = []
    room.observe(lambda e: removed.append(e.connection) if isinstance(e, ConnectionRemoved) else 0)
    async with serving() as tg:
        tg.start_soon(room.serve, bad.ends[0], "bad")
        connect(tg, room, other, net.link())
        await wait_idle()
        # ignored: empty and unknown types (y-webrtc ignores them too)
        await bad.ends[1].send(b"")
        await bad.ends[1].send(b"\x09\x01")
        await bad.ends[1].send(b"\x04\x01\x02hi")
        await wait_idle()
        assert not removed
        await bad.ends[1].send(message)
        await wait_idle()
        assert [c.close_reason for c in removed] == [reason]
        assert removed[0].stats.ignored == 3
        assert bad.close_reason == reason
        # the room keeps serving the good connection
        room.document.text().insert(0, "still here")
        await wait_idle()
        assert str(other.document.text()) == "still here"


async def test_serve_returns_normally_on_remote_close() -> None:
    room = SyncRoom()
    left, right = channel_pair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(room.serve, left, "x")
        await wait_idle()
        await right.close("bye")
    assert room.connections == []


class StalledChannel(MemoryChannel):
    """Fault injection: a remote that never reads (its send blocks forever)."""

    async def send(self, message: bytes) -> None:
        await anyio.Event().wait()


async def test_outbox_overflow_closes_that_connection() -> None:
    room = SyncRoom(options=SyncOptions(outbox_size=8))
    link = MemoryNetwork().link()
    stalled = StalledChannel(link, 0, 1 << 20)
    healthy = SyncRoom()
    removed: list[Connection] = []
    room.observe(lambda e: removed.append(e.connection) if isinstance(e, ConnectionRemoved) else 0)
    async with serving() as tg:
        tg.start_soon(room.serve, stalled, "stalled")
        connect(tg, room, healthy, MemoryNetwork().link())
        await wait_idle()
        for i in range(20):
            room.document.text().insert(0, str(i))
            await wait_idle()  # the healthy connection drains, the stalled one cannot
        assert [c.close_reason for c in removed] == ["outbox-overflow"]
        assert link.close_reason == "outbox-overflow"
        assert str(healthy.document.text()) == str(room.document.text())


async def test_queued_updates_are_coalesced() -> None:
    a, b = SyncRoom(), SyncRoom()
    net = MemoryNetwork()
    link = net.link(faults=Faults(hold=True))
    async with serving() as tg:
        connect(tg, a, b, link)
        await net.settle()
        # 250 single-keystroke transactions with no chance for the sender to run in between
        for i in range(250):
            a.document.text().insert(i, "x")
        await net.settle()
        (conn,) = a.connections
        assert conn.stats.updates_coalesced >= 200
        assert str(b.document.text()) == "x" * 250


async def test_raw_loss_is_repaired_by_reconnecting() -> None:
    a, b = SyncRoom(), SyncRoom()
    net = MemoryNetwork()
    link = net.link()
    async with serving() as tg:
        connect(tg, a, b, link)
        await wait_idle()
        net.drop_next(link)
        a.document.text().insert(0, "lost")
        a.document.text().insert(4, " and later")
        await wait_idle()
        assert str(b.document.text()) == ""  # later update is pending: it depends on the lost one
        link.break_()
        await wait_idle()
        connect(tg, a, b, net.link())
        await wait_idle()
        assert str(b.document.text()) == "lost and later"


async def test_large_updates_are_split_to_fit_max_message_size() -> None:
    a, b = SyncRoom(), SyncRoom()
    for i in range(200):  # many separate items so there is something to split
        a.document.text().insert(0, f"{i:04d}" + "y" * 60)
    limit = 2048
    big = a.document.get_update()
    assert len(big) > 5 * limit
    net = MemoryNetwork()
    link = net.link(max_message_size=limit, faults=Faults(hold=True))
    sizes: list[int] = []
    async with serving() as tg:
        connect(tg, a, b, link)
        for _ in range(10_000):
            await wait_idle()
            sizes.extend(len(m) for m in link.in_flight[0])
            if not net.step():
                break
        assert link.close_reason is None
        assert str(b.document.text()) == str(a.document.text())
        assert max(sizes) <= limit
        assert b.connections[0].synced.is_set()


async def test_send_on_closed_memory_channel_raises() -> None:
    left, right = channel_pair()
    await left.close("x")
    with pytest.raises(TransportError):
        await left.send(b"1")
    with pytest.raises(TransportError):
        await right.recv()
    assert [m async for m in right] == []


async def test_duplicate_update_is_not_applied_stored_or_relayed() -> None:
    """y-webrtc floods: the same update arrives once per path. The second copy is dropped on
    arrival: no document event (so nothing stored), no relay, no charge to the bounds."""
    room, downstream = SyncRoom(), SyncRoom()
    events: list[RoomEvent] = []
    room.observe(events.append)
    source = SyncRoom()
    source.document.text().insert(0, "hello")
    update = source.document.get_update()
    left, right = channel_pair()
    net = MemoryNetwork()
    async with serving() as tg:
        tg.start_soon(room.serve, left, "raw")
        connect(tg, room, downstream, net.link())
        await net.settle()
        await right.recv()  # step 1
        await right.recv()  # awareness on open
        relayed = downstream.connections[0].stats.messages_in
        for _ in range(3):
            await right.send(encode_update(update))
        await net.settle()
        assert str(downstream.document.text()) == "hello"
        raw = next(c for c in room.connections if c.label == "raw")
        assert raw.stats.duplicates == 2
        assert [e.origin for e in events if isinstance(e, DocumentUpdated)] == [raw]
        assert downstream.connections[0].stats.messages_in == relayed + 1  # relayed once
        assert room._client_bytes == {source.document.client_id: len(update)}  # charged once
