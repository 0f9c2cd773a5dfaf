"""``collab serve --workers 2`` on a real PostgreSQL and Redis, with Python WebRTC peers.

Both workers archive rooms (the store's leases name both); API writes and reads work for a
room whichever worker the request reaches (forwarded to the lease holder); SIGKILL of a
worker right after typing loses nothing (the archive equals the peers' text), the supervisor
restarts it, rooms go on archiving and a late joiner syncs from the archive; SIGTERM stops
every worker, SIGKILL of the supervisor leaves no orphan; ``--workers 2`` without PostgreSQL
(or without Redis) is a one-line usage error.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import psycopg
import pytest
from pycrdt import Text

from collab.storage import open_store, rebuild
from collabd.workers import slot_of
from tests.signaling.sig_helpers import RedisProc, start_redis, stop_redis
from tests.support.marks import needs_netns
from tests.support.paths import COLLAB
from tests.support.peers import peer, wait_saved, wait_text
from tests.support.postgres import PostgresServer
from tests.support.processes import Process, poll_until, wait_until
from tests.support.servers import banner_port

pytestmark = [pytest.mark.anyio, needs_netns, pytest.mark.postgres, pytest.mark.redis]

LEASE_TTL = 3.0


def rooms_per_slot(per_slot: int, count: int = 2) -> list[str]:
    """Room names, ``per_slot`` hashed to each worker (the routing's first choice)."""
    out: dict[int, list[str]] = {s: [] for s in range(count)}
    i = 0
    while any(len(v) < per_slot for v in out.values()):
        name = f"w-room-{i}"
        slot = slot_of(name, count)
        if len(out[slot]) < per_slot:
            out[slot].append(name)
        i += 1
    return [r for s in range(count) for r in out[s]]


class Workers(Process):
    """``collab serve --workers N`` (the supervisor; its workers are its children)."""

    def __init__(self, dsn: str, redis: str | None, log: Path, workers: int = 2) -> None:
        env = {"COLLAB_REDIS_URL": redis} if redis else {}
        super().__init__(
            [COLLAB, "serve", "--host", "127.0.0.1", "--port", "0", "--store", dsn,
             "--workers", str(workers), "--lease-ttl", str(LEASE_TTL),
             "--version-pause", "0.5"],
            log,
            env,
        )  # fmt: skip
        self.port = 0

    def start(self) -> None:
        super().start()
        self.port = banner_port(self.wait_ready(r"collab is serving on", 120))

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def signaling(self) -> str:
        return f"ws://127.0.0.1:{self.port}/signaling"

    def worker_pids(self) -> dict[int, int]:
        """The latest pid of each worker slot (from the supervisor's log)."""
        found: dict[int, int] = {}
        for slot, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", self.output()):
            found[int(slot)] = int(pid)
        return found

    def metrics(self) -> str:
        return httpx.get(self.http + "/metrics", timeout=30).text


def metric(text: str, name: str, worker: int) -> float:
    found = re.search(rf'^{name}\{{worker="{worker}"\}} ([\d.e+-]+)$', text, re.M)
    assert found is not None, f"{name} of worker {worker} not in /metrics"
    return float(found.group(1))


def lease_slots(dsn: str, rooms: list[str]) -> dict[str, int]:
    """Which worker slot holds each room's lease now (``-wN`` owner ids)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT room, owner FROM room_leases WHERE expires_at > now() AND room = ANY(%s)",
            (rooms,),
        ).fetchall()
    return {room: int(owner.rsplit("-w", 1)[1]) for room, owner in rows}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def redis() -> Iterator[RedisProc]:
    server = start_redis()
    try:
        yield server
    finally:
        stop_redis(server)


async def archived(dsn: str, room: str) -> str:
    async with open_store(dsn) as store:
        doc = rebuild(await store.load(room))
    return str(doc.get("codemirror", type=Text))


async def test_two_workers_share_rooms_and_a_killed_worker_loses_nothing(
    pg_server: PostgresServer, redis: RedisProc, tmp_path: Path
) -> None:
    dsn = pg_server.create_database("workers")
    server = Workers(dsn, redis.url, tmp_path / "serve.log")
    server.start()
    rooms = rooms_per_slot(2)
    try:
        async with (
            peer(rooms[0], server.signaling) as p0,
            peer(rooms[1], server.signaling) as p1,
            peer(rooms[2], server.signaling) as p2,
            peer(rooms[3], server.signaling) as p3,
        ):
            peers = [p0, p1, p2, p3]
            with anyio.fail_after(60):
                for p in peers:
                    await p.wait_for_peers(1)  # the archive
            for i, p in enumerate(peers):
                text = p.document.text()
                for j in range(50):
                    text.insert(len(str(text)), f"[{i}.a{j}]")
            for p in peers:
                await wait_saved(p, timeout=60)

            # both workers archive: the leases name both slots (the rooms' hashed workers)
            slots = lease_slots(dsn, rooms)
            assert set(slots.values()) == {0, 1}, slots
            assert slots == {r: slot_of(r, 2) for r in rooms}

            # the API works for every room whichever worker a request reaches
            async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
                recorded = {}
                for room in rooms:
                    r = await client.post(f"/api/rooms/{room}/versions", params={"label": "v1"})
                    assert r.status_code == 200, (room, r.status_code, r.text)
                    recorded[room] = r.json()["id"]
                before = {
                    room: str(p.document.text()) for room, p in zip(rooms, peers, strict=True)
                }
                for i, p in enumerate(peers):
                    text = p.document.text()
                    text.insert(len(str(text)), f"[{i}.later]")
                for p in peers:
                    await wait_saved(p, timeout=60)
                for room, p in zip(rooms, peers, strict=True):
                    r = await client.post(
                        f"/api/rooms/{room}/restore", params={"at": str(recorded[room])}
                    )
                    assert r.status_code == 200, (room, r.status_code, r.text)
                    await wait_text(p, before[room], timeout=60)  # the peer got the restore
                    r = await client.get(f"/api/rooms/{room}/versions")
                    assert r.status_code == 200 and len(r.json()) >= 2, r.text
                for _ in range(5):  # reads see the owner's live document
                    for room, p in zip(rooms, peers, strict=True):
                        r = await client.get(f"/api/rooms/{room}/text")
                        assert r.status_code == 200 and r.text == str(p.document.text())
                    r = await client.get("/api/rooms")  # every worker's rooms, merged
                    listed = {row["name"]: row for row in r.json()}
                    assert all(listed[room]["loaded"] for room in rooms), listed
                    assert all(listed[room]["peers"] == 1 for room in rooms), listed
            scraped = await anyio.to_thread.run_sync(server.metrics)
            forwarded = sum(
                metric(scraped, "collab_worker_forwarded_requests_total", w) for w in (0, 1)
            )
            assert forwarded > 0, "no request was forwarded to the other worker"
            assert metric(scraped, "collab_worker_up", 0) == 1
            assert metric(scraped, "collab_worker_up", 1) == 1

            # SIGKILL worker 1 right after typing (its rooms' last updates may not be durable)
            victim = server.worker_pids()[1]
            for i, p in enumerate(peers):
                text_ = p.document.text()
                for j in range(50):
                    text_.insert(len(str(text_)), f"[{i}.b{j}]")
            os.kill(victim, signal.SIGKILL)
            for i, p in enumerate(peers):  # typing goes on while worker 1 is away
                text_ = p.document.text()
                for j in range(30):
                    text_.insert(len(str(text_)), f"[{i}.c{j}]")
                    if j % 10 == 0:
                        await anyio.lowlevel.checkpoint()
            await anyio.to_thread.run_sync(
                server.wait_for_line, r"worker 1 \(pid \d+\) exited \(signal SIGKILL\)", 30
            )
            await wait_until(lambda: server.worker_pids()[1] != victim, 60)
            for p in peers:
                await wait_saved(p, timeout=90)
            for room, p in zip(rooms, peers, strict=True):
                assert await archived(dsn, room) == str(p.document.text()), room

            # the restarted worker archives again: more typing is stored, both slots hold rooms
            for i, p in enumerate(peers):
                text_ = p.document.text()
                for j in range(20):
                    text_.insert(len(str(text_)), f"[{i}.d{j}]")
            for p in peers:
                await wait_saved(p, timeout=90)
            await wait_until(lambda: set(lease_slots(dsn, rooms).values()) == {0, 1}, 60)
            for room, p in zip(rooms, peers, strict=True):
                expected = str(p.document.text())
                assert await archived(dsn, room) == expected, room
                assert all(f"[{rooms.index(room)}.{k}" in expected for k in "abcd")
            finals = {room: str(p.document.text()) for room, p in zip(rooms, peers, strict=True)}
            scraped = await anyio.to_thread.run_sync(server.metrics)
            assert metric(scraped, "collab_worker_restarts", 1) == 1
            assert metric(scraped, "collab_worker_restarts", 0) == 0

        # late joiners: every writer left; a new, empty peer syncs from the archive
        for room in (rooms[1], rooms[3]):  # one room of each worker
            async with peer(room, server.signaling) as late:
                await wait_text(late, finals[room], timeout=60)
    finally:
        server.kill(signal.SIGTERM, timeout=90)


async def test_sigterm_stops_every_worker_and_sigkill_leaves_no_orphan(
    pg_server: PostgresServer, redis: RedisProc, tmp_path: Path
) -> None:
    dsn = pg_server.create_database("workers_stop")
    for how in (signal.SIGTERM, signal.SIGKILL):
        server = Workers(dsn, redis.url, tmp_path / f"serve-{how.name}.log")
        server.start()
        try:
            pids = list(server.worker_pids().values())
            assert len(pids) == 2 and all(alive(p) for p in pids)
            os.kill(server.pid, how)  # the supervisor alone, by its pid
            await anyio.to_thread.run_sync(
                poll_until,
                lambda pids=pids: not any(alive(p) for p in pids),
                60,
                "the workers to exit",
            )
            if how is signal.SIGTERM:
                assert server.proc is not None
                assert await anyio.to_thread.run_sync(server.proc.wait, 30) == 0
                assert "Traceback" not in server.output()
        finally:
            server.kill()


@pytest.mark.parametrize("store", ["sqlite", "no-redis"])
def test_workers_need_postgresql_and_redis(
    store: str, pg_server: PostgresServer, tmp_path: Path
) -> None:
    args = [COLLAB, "serve", "--port", "0", "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != "COLLAB_REDIS_URL"}
    if store == "sqlite":
        args += ["--data", str(tmp_path / "data")]
        env["COLLAB_REDIS_URL"] = "redis://127.0.0.1:9/0"
    else:
        args += ["--store", pg_server.create_database("workers_noredis")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--workers 2" in lines[0], done.stderr
    assert ("--store postgresql://" if store == "sqlite" else "COLLAB_REDIS_URL") in lines[0]
