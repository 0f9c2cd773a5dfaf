"""The replica's runtime: one supervised actor per room with one lifecycle enum.

In-process (a memory store; the signaling URL leads nowhere, which rooms do not need to go
live): lifecycle transitions, a crashing room restarting with backoff while other rooms keep
archiving, idle rooms forgotten (nothing keyed by a room name outlives its room), leases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from collab.errors import StorageError
from collab.peer.config import PeerConfig
from collab.replica import ArchivalReplica, ReplicaOptions, RoomPolicy, RoomState
from collab.storage import MemoryStore, StoredDoc, rebuild

pytestmark = pytest.mark.anyio

NOWHERE = "ws://127.0.0.1:9/signaling"
FAST = dict(
    idle_unload_after=0.3,
    idle_check_interval=0.05,
    restart_initial=0.02,
    restart_max=0.2,
    acquire_retry=0.05,
    saved_interval=0.01,
    unload_timeout=5.0,
)


class FlakyStore(MemoryStore):
    """A memory store whose ``load`` of chosen rooms fails a number of times."""

    def __init__(self, failures: dict[str, int]) -> None:
        super().__init__()
        self.failures = failures

    async def load(self, room: str, *, missing_ok: bool = False) -> StoredDoc:
        if self.failures.get(room, 0) > 0:
            self.failures[room] -= 1
            raise RuntimeError(f"injected failure loading {room}")
        return await super().load(room, missing_ok=missing_ok)


@asynccontextmanager
async def running(
    store: MemoryStore | None = None, **options: Any
) -> AsyncIterator[ArchivalReplica]:
    store = store or MemoryStore()
    opts = ReplicaOptions(**{**FAST, **options})
    config = PeerConfig(reconnect_min=0.05, reconnect_max=0.2)
    async with store, ArchivalReplica(store, NOWHERE, options=opts, peer_config=config) as r:
        yield r


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for state owned by the replica's tasks (checked at each scheduling point)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def test_lifecycle_is_one_enum_in_order() -> None:
    async with running() as replica:
        actor = await replica.follow("a")
        assert actor.state is RoomState.LIVE
        assert list(actor.history) == [RoomState.WAITING_LEASE, RoomState.LOADING, RoomState.LIVE]
    assert list(actor.history)[-3:] == [RoomState.UNLOADING, RoomState.DRAINING, RoomState.CLOSED]
    assert replica.rooms == {}


async def test_a_crashing_room_restarts_with_backoff_and_others_keep_archiving() -> None:
    store = FlakyStore({"bad": 3})
    async with running(store) as replica:
        good = await replica.follow("good")
        assert good.document is not None
        bad = replica._actor("bad", pinned=True)
        assert bad is not None
        # the good room archives while the bad one crashes
        good.document.text().insert(0, "still archived")
        await until(lambda: replica.stats.room_failures["RuntimeError"] == 3)
        await until(lambda: bad.state is RoomState.LIVE)
        await until(lambda: not good.live.persistence.pending)  # type: ignore[union-attr]
        assert good.state is RoomState.LIVE and good.failures == 0
        assert list(good.history) == [RoomState.WAITING_LEASE, RoomState.LOADING, RoomState.LIVE]
        # three crashes, each one a full cycle back to waiting: LOADING → DRAINING → WAITING
        assert list(bad.history).count(RoomState.LOADING) == 4
    doc = rebuild(await _load(store, "good"))
    assert str(doc.get("codemirror", type=__import__("pycrdt").Text)) == "still archived"


async def _load(store: MemoryStore, room: str) -> StoredDoc:
    async with store:
        return await store.load(room)


async def test_idle_rooms_are_forgotten_and_come_back_on_demand() -> None:
    async with running(policy=RoomPolicy("all")) as replica:
        for i in range(200):
            await replica.on_topic_opened(f"passing-{i}-é" * 3)
        await until(lambda: len(replica.rooms) == 200)
        await until(lambda: replica.rooms == {}, timeout=30)  # idle: left and forgotten
        await replica.on_subscriber_joined("passing-7-é" * 3)
        await until(lambda: "passing-7-é" * 3 in replica.rooms)
        actor = replica.rooms["passing-7-é" * 3]
        await actor.wait_state(RoomState.LIVE)


async def test_policy_and_max_rooms_bound_what_outsiders_can_open() -> None:
    async with running(policy=RoomPolicy("pattern", "team-*"), max_rooms=3) as replica:
        for name in ("x", "y", "team-a", "team-b", "team-c", "team-d"):
            await replica.on_topic_opened(name)
        assert sorted(replica.rooms) == ["team-a", "team-b", "team-c"]
        assert replica.stats.rooms_refused == 1


async def test_a_lease_held_elsewhere_waits_and_stops_when_the_topic_closes() -> None:
    store = MemoryStore()
    async with running(store) as replica:
        assert await store.acquire_room("taken", "another-replica")
        await replica.on_topic_opened("taken")
        actor = replica.rooms["taken"]
        await actor.wait_state(RoomState.WAITING_LEASE)
        await replica.on_topic_closed("taken")
        await until(lambda: "taken" not in replica.rooms)
        assert RoomState.LOADING not in actor.history


class LeaseStore(MemoryStore):
    """A memory store whose leases can be lost to another replica (as in PostgreSQL)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: set[str] = set()

    async def acquire_room(self, room: str, owner_id: str) -> bool:
        return room not in self.lost and await super().acquire_room(room, owner_id)

    def held_rooms(self) -> set[str]:
        return super().held_rooms() - self.lost


async def test_losing_the_lease_while_live_waits_for_it_again() -> None:
    store = LeaseStore()
    async with running(store) as replica:
        actor = await replica.follow("moved")
        live = actor.live
        assert live is not None
        store.lost.add("moved")  # its lease expired and another replica took the room
        live.document.text().insert(0, "x")  # the next durability check notices
        await until(lambda: actor.state is RoomState.WAITING_LEASE)
        assert actor.live is None
        store.lost.clear()
        await actor.wait_state(RoomState.LIVE)
        assert replica.stats.room_failures == {}
        assert list(actor.history).count(RoomState.LIVE) == 2


async def test_storage_failing_on_load_is_counted_and_retried() -> None:
    class Failing(MemoryStore):
        calls = 0

        async def load(self, room: str, *, missing_ok: bool = False) -> StoredDoc:
            self.calls += 1
            if self.calls <= 2:
                raise StorageError("disk-full", "injected")
            return await super().load(room, missing_ok=missing_ok)

    async with running(Failing()) as replica:
        actor = replica._actor("r", pinned=True)
        assert actor is not None
        await actor.wait_state(RoomState.LIVE)
        assert replica.stats.room_failures["StorageError:disk-full"] == 2
        assert replica.storage_errors >= 2
