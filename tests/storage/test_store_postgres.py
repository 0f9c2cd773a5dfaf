"""PostgreSQL ownership: one archiver per room, leases, fencing, takeover after SIGKILL."""

from __future__ import annotations

import queue
import time
from typing import Any

import anyio
import psycopg
import pytest

from collab.errors import StorageError
from collab.storage import PostgresStore, StoreOptions
from tests.storage.procs import Child, next_event

pytestmark = pytest.mark.postgres

ROOMS = ["alpha", "beta", "gamma", "delta"]


@pytest.mark.anyio
async def test_lease_excludes_others_until_released_or_expired(pg_dsn: str) -> None:
    # b: lease never renewed, and nothing committed before an explicit flush
    short = StoreOptions(lease_renew_interval=600.0, commit_interval=60.0)
    async with PostgresStore(pg_dsn) as a, PostgresStore(pg_dsn, short) as b:
        assert await a.acquire_room("r", "replica-a")
        assert not await b.acquire_room("r", "replica-b")
        with pytest.raises(StorageError) as info:
            b.append("r", b"\x00\x00")
        assert info.value.code == "not-owner"
        a.append("r", b"a1")
        await a.release_room("r")
        assert a.held_rooms() == set()
        assert await b.acquire_room("r", "replica-b")
        assert b.append("r", b"b2") == 2  # continues after a's durable update
        await b.flush()
        # b's lease lapses (b is paused: no renewal); a takes over; b's queued update is
        # fenced out. Expire it in the database instead of waiting for the clock.
        b.append("r", b"b3-never")
        assert not await a.acquire_room("r", "replica-a")
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await conn.execute("UPDATE room_leases SET expires_at = now() - interval '1 s'")
        assert await a.acquire_room("r", "replica-a")
        await b.flush()
        assert b.counters.dropped_not_owner == 1
        assert "r" not in b.held_rooms() and "r" in b.lost_rooms
        assert a.append("r", b"a3") == 3
        await a.flush()
        assert (await a.load("r")).updates == [b"a1", b"b2", b"a3"]


@pytest.mark.anyio
async def test_same_owner_id_reacquires_at_once(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn, StoreOptions(lease_ttl=60)) as first:
        assert await first.acquire_room("r", "replica-x")
        first.append("r", b"one")
        await first.flush()
        # a restarted replica with the same stable id does not wait for the lease to expire
        async with PostgresStore(pg_dsn, StoreOptions(lease_ttl=60)) as second:
            assert await second.acquire_room("r", "replica-x")
            assert second.append("r", b"two") == 2
            await second.flush()
            first.append("r", b"stale")  # the old instance is fenced by the new token
            await first.flush()
            assert first.counters.dropped_not_owner == 1
            assert (await second.load("r")).updates == [b"one", b"two"]


@pytest.mark.slow
def test_standby_takes_over_after_sigkill(pg_dsn: str) -> None:
    ttl = 2.0
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    rooms = ",".join(ROOMS)
    children = {
        name: Child(name, ["pg-replica", pg_dsn, name, str(ttl), rooms], events)
        for name in ("a", "b")
    }
    owner: dict[str, str] = {}
    flushed: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    takeover: dict[str, float] = {}
    try:
        # both contend; every room gets exactly one owner
        while len(owner) < len(ROOMS) or any(
            flushed[owner[r]].get(r, 0) < 20 for r in ROOMS if r in owner
        ):
            name, event = next_event(events, children)
            if event["event"] == "acquired":
                assert event["room"] not in owner, f"{event['room']} acquired twice"
                owner[event["room"]] = name
            elif event["event"] == "flushed":
                assert owner[event["room"]] == name
                flushed[name][event["room"]] = event["seq"]
        victim = owner[ROOMS[0]]
        survivor = "b" if victim == "a" else "a"
        children[victim].kill()
        killed_at = time.monotonic()
        orphaned = {r for r, o in owner.items() if o == victim}
        while orphaned - set(takeover):
            name, event = next_event(events, children)
            if event["event"] == "acquired":
                assert name == survivor and event["room"] in orphaned
                # the survivor continues right after the victim's last durable update
                assert event["seq"] >= flushed[victim].get(event["room"], 0)
                takeover[event["room"]] = time.monotonic() - killed_at
                owner[event["room"]] = survivor
        print(f"takeover after SIGKILL (lease_ttl={ttl} s): {takeover}")
        assert max(takeover.values()) < 10 * ttl  # "within seconds" (ttl = 2 s)
        seen = 0
        while seen < 20:  # the survivor writes to the rooms it took over
            name, event = next_event(events, children)
            if event["event"] == "flushed" and event["room"] in orphaned:
                seen += 1
                flushed[name][event["room"]] = event["seq"]
    finally:
        for child in children.values():
            child.kill()
    anyio.run(check_logs, pg_dsn, flushed, survivor)


async def check_logs(dsn: str, flushed: dict[str, dict[str, int]], survivor: str) -> None:
    async with PostgresStore(dsn) as store:
        for room in ROOMS:
            stored = await store.load(room)
            owners = []
            for seq, payload in enumerate(stored.updates, start=1):
                who, in_room, at = payload.decode().split(":")
                assert (in_room, int(at)) == (room, seq), "gap or reordering in the log"
                if not owners or owners[-1] != who:
                    owners.append(who)
            # one owner, or the victim followed by the survivor: never interleaved
            assert len(owners) <= 2 and (len(owners) == 1 or owners[1] == survivor), owners
            for who in ("a", "b"):
                assert stored.last_seq >= flushed[who].get(room, 0), "a flushed update is lost"
