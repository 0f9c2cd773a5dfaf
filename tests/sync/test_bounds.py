"""The sync layer's bounds against one hostile connection (collab.sync module docstring):
state-vector size and client ids per connection, parked bytes, awareness sizes and forgery,
messages split to the remote's size limit. Each test plays the attacker on one in-memory
channel and asserts what a well-behaved peer on another connection still gets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from collab.awareness import Awareness
from collab.document import Document
from collab.memnet import MemoryChannel, channel_pair
from collab.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    SyncStep1,
    decode_message,
    decode_state_vector,
    encode_awareness,
    encode_sync_step1,
    encode_update,
)
from collab.sync import ConnectionRemoved, RoomEvent, SyncOptions, SyncRoom

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(room: SyncRoom, label: str, **kw: int) -> AsyncIterator[MemoryChannel]:
    """Serve one in-memory connection of ``room``; yields the remote end."""
    ours, theirs = channel_pair(**kw)
    async with anyio.create_task_group() as tg:
        tg.start_soon(room.serve, ours, label)
        yield theirs
        tg.cancel_scope.cancel()


class Watch:
    """Room and awareness events of one room, and waits on them (no polling)."""

    def __init__(self, room: SyncRoom) -> None:
        self.closed: list[str | None] = []
        self._event = anyio.Event()
        room.observe(self._on_room)
        room.awareness.observe(lambda _e: self._poke())

    def _on_room(self, event: RoomEvent) -> None:
        if isinstance(event, ConnectionRemoved):
            self.closed.append(event.connection.close_reason)
        self._poke()

    def _poke(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                await self._event.wait()


def one_client_update(client: int, text: str = "x") -> bytes:
    doc = Document(client_id=client)
    doc.text().insert(0, text)
    return doc.get_update()


async def test_one_connection_cannot_introduce_unbounded_client_ids() -> None:
    room = SyncRoom(options=SyncOptions(max_new_clients_per_connection=50))
    watch = Watch(room)
    async with serving(room, "attacker") as evil:
        for client in range(1, 200):
            if evil.closed:
                break
            await evil.send(encode_update(one_client_update(client)))
        await watch.until(lambda: watch.closed == ["too-many-clients"])
    clients = decode_state_vector(room.document.state_vector())
    assert 40 <= len(clients) <= 50, len(clients)


async def test_state_vector_stays_small_enough_for_a_browser_step1() -> None:
    """Many connections, each under its own cap, still cannot grow the state vector past the
    room's bound: a fresh peer's sync step 1 exchange keeps working."""
    options = SyncOptions(max_state_vector_bytes=2048, max_new_clients_per_connection=100)
    room = SyncRoom(options=options)
    room.document.text().insert(0, "legit")
    watch = Watch(room)
    client = 1
    for attacker in range(10):
        async with serving(room, "attacker") as evil:
            for _ in range(100):
                client += 1
                if not evil.closed:
                    await evil.send(encode_update(one_client_update(client)))
            # every message was either applied or refused (which closes the connection)
            expected = 100 * (attacker + 1) + 1

            def settled(evil: MemoryChannel = evil, expected: int = expected) -> bool:
                clients = decode_state_vector(room.document.state_vector())
                return evil.closed or len(clients) == expected

            await watch.until(settled)
    assert len(room.document.state_vector()) <= 2048
    assert "too-many-clients" in watch.closed
    # a well-behaved newcomer still syncs the legitimate text
    fresh = SyncRoom()
    left, right = channel_pair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(room.serve, left, "fresh")
        tg.start_soon(fresh.serve, right, "room")
        with anyio.fail_after(10):
            await fresh.wait_connected_synced()
        tg.cancel_scope.cancel()
    assert str(fresh.document.text()) == str(room.document.text())
    assert "legit" in str(fresh.document.text())


async def test_parked_updates_are_bounded_per_connection() -> None:
    options = SyncOptions(max_parked_bytes_per_connection=64 * 1024, max_parked_bytes=1 << 20)
    room = SyncRoom(options=options)
    watch = Watch(room)
    async with serving(room, "attacker") as evil:
        for client in range(1, 100):
            doc = Document(client_id=client)
            doc.text().insert(0, "a")
            sv = doc.state_vector()
            doc.text().insert(1, "b" * 8000)
            never = doc.get_update(sv)  # depends on the first insert, which never comes
            if evil.closed:
                break
            await evil.send(encode_update(never))
        await watch.until(lambda: watch.closed == ["pending-overflow"])
    assert room.document.parked_bytes <= 64 * 1024 + 9000


async def test_large_updates_are_scanned_off_the_event_loop() -> None:
    """A 100 KB update is checked in a worker thread; the result is the same document."""
    room = SyncRoom(options=SyncOptions(offload_above=1024))
    watch = Watch(room)
    big = Document(client_id=9)
    for i in range(200):
        with big.transaction():
            big.text().insert(0, f"line {i} " * 60)
    update = big.get_update()
    assert len(update) > 50_000
    async with serving(room, "peer") as peer:
        await peer.send(encode_update(update))
        await watch.until(lambda: str(room.document.text()) == str(big.text()))


async def test_oversized_and_forged_awareness_states_are_dropped_not_fatal() -> None:
    awareness = Awareness(1, state={"user": {"name": "replica"}}, max_state_bytes=1000)
    room = SyncRoom(Document(client_id=1), awareness)
    watch = Watch(room)
    async with serving(room, "browser") as browser:
        entries = (
            AwarenessEntry(7, 1, {"big": "x" * 5000}),  # relayed by a browser: dropped
            AwarenessEntry(8, 1, {"user": {"name": "Bob"}}),
            AwarenessEntry(1, 99, {"collab": {"role": "replica", "sv": "forged"}}),
        )
        await browser.send(encode_awareness(entries))
        await watch.until(lambda: 8 in awareness.states)
        # our own state was re-asserted with a newer clock, the forgery refused
        assert awareness.get_local_state() == {"user": {"name": "replica"}}
        assert awareness.meta[1].clock == 100
        assert 7 not in awareness.states
        assert awareness.oversized == 1 and awareness.forged == 1
    assert watch.closed == ["cancelled"]  # the relaying browser was never closed for it


async def test_a_large_initial_awareness_goes_out_in_several_messages() -> None:
    room = SyncRoom()
    room.awareness.apply(
        [AwarenessEntry(c, 1, {"cursor": "y" * 30_000}) for c in range(10, 20)], origin="elsewhere"
    )
    assert room.awareness.total_bytes > 300_000
    async with serving(room, "newcomer", max_message_size=65_536) as newcomer:
        seen: set[int] = set()
        with anyio.fail_after(10):
            while len(seen) < 10:
                message = decode_message(await newcomer.recv())
                assert isinstance(message, (SyncStep1, AwarenessMessage))
                if isinstance(message, AwarenessMessage):
                    seen.update(e.client_id for e in message.entries)


async def test_step1_is_cut_to_fit_the_remote_limit() -> None:
    """A document archived before the bounds (huge state vector) still starts every sync."""
    room = SyncRoom()
    for client in range(1, 3000):
        room.document.apply_update(one_client_update(client))
    assert len(encode_sync_step1(room.document.state_vector())) > 4096
    async with serving(room, "peer", max_message_size=4096) as peer:
        with anyio.fail_after(10):
            message = decode_message(await peer.recv())
    assert isinstance(message, SyncStep1)
    assert 0 < len(decode_state_vector(message.state_vector)) < 3000


async def test_the_bounds_leave_a_normal_session_alone() -> None:
    """Two ordinary peers typing: no connection is refused, nothing parked."""
    a, b = SyncRoom(), SyncRoom()
    left, right = channel_pair()
    watch = Watch(a)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.serve, left, "b")
        tg.start_soon(b.serve, right, "a")
        for i in range(200):
            b.document.text().insert(0, str(i % 10))
        await watch.until(lambda: str(a.document.text()) == str(b.document.text()))
        tg.cancel_scope.cancel()
    assert watch.closed == ["cancelled"]
    assert a.document.parked == 0
