"""Updates/s archived by ``collab serve --workers 1`` vs ``--workers 2``, same run, same load.

The subject is the archival replica's saturation throughput: ``--rooms`` rooms, one Python
WebRTC peer each (collab's :class:`WebrtcPeer`, in ``--procs`` load processes), each sending
pre-encoded y-sync update messages (one typed character per update, generated before the
window) straight onto its data channel as fast as the channel takes them (the channel's
high-water mark and SCTP's window are the only brakes, so the replica's own speed sets the
rate). Nothing else runs in the load: no Yjs document work on the sending side.

Throughput = updates made durable in PostgreSQL per second (the rooms' ``last_seq``, one per
appended update, summed) over ``--window`` seconds after ``--warmup``. ``--workers 1`` and
``--workers 2`` run interleaved (1, 2, 1, 2, … ``--repeats``) on one PostgreSQL and one Redis,
each phase on a fresh database; the ratio of the medians is printed, with the CPU seconds the
server processes and the load processes used per second of window (on a 2-core box they
share the cores: that is what limits the ratio; see the printed shares).

Rooms are named so that half of them hash to each worker (``collabd.workers.slot_of``).

    flock /tmp/collab-bench.lock scripts/netns-run .venv/bin/python bench/replica_workers.py \\
        --rooms 8 --procs 1 --window 15 --repeats 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(f) for f in fields[11:13]) / TICKS


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def use_loopback() -> None:
    """aioice skips 127.0.0.1; outside the test namespace use it anyway."""
    import aioice.ice

    def loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return ["127.0.0.1"]

    aioice.ice.get_host_addresses = loopback


# ---------------------------------------------------------------------------- load process


def load_main(pipe: Pipe, url: str, rooms: list[str], per_room: int) -> None:
    if os.environ.get("COLLAB_NETNS") != "1":
        use_loopback()
    import anyio

    anyio.run(_load, pipe, url, rooms, per_room)


def _messages(count: int, seed: int) -> list[bytes]:
    """``count`` y-sync update messages, one typed character each (a scratch document)."""
    from pycrdt import Doc, Text

    from collab.protocol import encode_update

    doc = Doc(client_id=random.Random(seed).randrange(1, 2**31))
    text = doc.get("codemirror", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(text), "abcdefghij"[i % 10])
    return [encode_update(u) for u in updates]


async def _load(pipe: Pipe, url: str, rooms: list[str], per_room: int) -> None:
    import contextlib

    import anyio
    import anyio.lowlevel

    from collab.errors import TransportError
    from collab.peer import PeerConfig, WebrtcPeer

    async with contextlib.AsyncExitStack() as stack:
        peers = []
        for room in rooms:
            p = WebrtcPeer(room, url, config=PeerConfig(ice_servers=[]))
            peers.append(await stack.enter_async_context(p))
        with anyio.fail_after(180):
            for p in peers:
                await p.wait_for_peers(1)  # the archive
                await p.wait_synced()
        messages = {room: _messages(per_room, hash(room)) for room in rooms}
        pipe.send("ready")
        await anyio.to_thread.run_sync(pipe.recv)  # go
        sent = dict.fromkeys(rooms, 0)
        handovers = dict.fromkeys(rooms, 0)
        stop = anyio.Event()

        async def send(p: WebrtcPeer, room: str) -> None:
            for message in messages[room]:
                while not stop.is_set():
                    try:
                        # the replica's connection (a new one after a hand-over)
                        channel: Any = p.sync.connections[0].channel
                        await channel.send(message)  # waits only above the high-water mark
                        sent[room] += 1
                        if sent[room] % 16 == 0:
                            await anyio.lowlevel.checkpoint()  # let aiortc transmit
                        break
                    except (TransportError, IndexError) as exc:
                        if not any(handovers.values()):
                            print(f"load: {room}: first hand-over: {exc!r}", flush=True)
                        handovers[room] += 1
                        await anyio.sleep(0.05)  # until the next replica connects
                if stop.is_set():
                    return

        async def until_stop() -> None:
            await anyio.to_thread.run_sync(pipe.recv)
            stop.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(until_stop)
            async with anyio.create_task_group() as senders:
                for p, room in zip(peers, rooms, strict=True):
                    senders.start_soon(send, p, room)
            pipe.send(("ran-out", sum(sent.values())))  # every message sent before stop
            await stop.wait()
        pipe.send(("done", sum(sent.values()), sum(1 for n in handovers.values() if n)))


# ---------------------------------------------------------------------------- main process


@dataclass
class Phase:
    workers: int
    rate: float = 0.0
    server_cpu: float = 0.0  # CPU-seconds per second of window, every server process
    load_cpu: float = 0.0
    pg_cpu: float = 0.0
    sent: int = 0
    handovers: int = 0  # rooms whose replica connection closed during the phase
    ran_out: bool = False


def room_names(count: int, tag: str) -> list[str]:
    from collabd.workers import slot_of

    half: dict[int, list[str]] = {0: [], 1: []}
    i = 0
    while len(half[0]) + len(half[1]) < count:
        name = f"bench-{tag}-{i}"
        slot = slot_of(name, 2)
        if len(half[slot]) < (count + 1 - slot) // 2:
            half[slot].append(name)
        i += 1
    return half[0] + half[1]


def durable(dsn: str, prefix: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(last_seq), 0) FROM rooms WHERE name LIKE %s", (prefix + "%",)
        ).fetchone()
    return int(row[0]) if row else 0


def run_phase(args: argparse.Namespace, pg: Any, redis_url: str, workers: int, tag: str) -> Phase:
    from tests.support.paths import COLLAB
    from tests.support.processes import Process
    from tests.support.servers import banner_port

    dsn = pg.create_database(f"bench_{tag}")
    env = {
        "COLLAB_REDIS_URL": redis_url,
        "COLLAB_MAX_SOCKETS_PER_ADDRESS": "100000",
        "COLLAB_IDLE_UNLOAD_AFTER": "3600",
    }
    server = Process(
        [COLLAB, "serve", "--host", "127.0.0.1", "--port", "0", "--store", dsn,
         "--workers", str(workers), "--log-level", "warning"],
        Path(args.logs) / f"serve-{tag}.log",
        env,
    )  # fmt: skip
    server.start()
    phase = Phase(workers)
    try:
        port = banner_port(server.wait_ready(r"collab is serving on", 180))
        url = f"ws://127.0.0.1:{port}/signaling"
        rooms = room_names(args.rooms, tag)
        ctx = mp.get_context("spawn")
        pipes: list[Pipe] = []
        procs = []
        for i in range(args.procs):
            mine = rooms[i :: args.procs]
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=load_main, args=(child, url, mine, args.per_room))
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        try:
            for pipe in pipes:
                if not pipe.poll(240):
                    raise RuntimeError("a load process did not connect in time")
                pipe.recv()
            pids = [server.pid, *children(server.pid)]
            pg_pids = [pg.process.pid, *children(pg.process.pid)]
            for pipe in pipes:
                pipe.send("go")
            time.sleep(args.warmup)
            c0 = sum(cpu_seconds(p) for p in pids)
            l0 = sum(cpu_seconds(p.pid) for p in procs if p.pid is not None)
            p0 = sum(cpu_seconds(p) for p in pg_pids)
            d0, t0 = durable(dsn, f"bench-{tag}-"), time.monotonic()
            time.sleep(args.window)
            d1, t1 = durable(dsn, f"bench-{tag}-"), time.monotonic()
            c1 = sum(cpu_seconds(p) for p in pids)
            l1 = sum(cpu_seconds(p.pid) for p in procs if p.pid is not None)
            p1 = sum(cpu_seconds(p) for p in pg_pids)
            phase.pg_cpu = (p1 - p0) / (t1 - t0)
            phase.rate = (d1 - d0) / (t1 - t0)
            phase.server_cpu = (c1 - c0) / (t1 - t0)
            phase.load_cpu = (l1 - l0) / (t1 - t0)
            for pipe in pipes:
                if pipe.poll(0):  # a load process sent everything before the window ended
                    phase.ran_out = True
                pipe.send("stop")
            for pipe in pipes:
                while True:
                    if not pipe.poll(120):
                        raise RuntimeError("a load process did not stop")
                    got = pipe.recv()
                    if got[0] == "done":
                        phase.sent += got[1]
                        phase.handovers += got[2]
                        break
        finally:
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
    finally:
        server.stop()
    return phase


def start_redis() -> tuple[Any, str]:
    """redis-server without persistence on a free port: (process, URL)."""
    import shutil

    from tests.support.ports import PortTaken, on_free_port
    from tests.support.processes import Process

    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("needs redis-server (scripts/bootstrap --test)")

    def start(port: int) -> tuple[Any, str]:
        args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = Process(args)
        process.start()
        try:
            process.wait_ready("Ready to accept connections", 30)
        except RuntimeError:
            if "Address already in use" in process.output():
                raise PortTaken(port) from None
            raise
        return process, f"redis://127.0.0.1:{port}/0"

    return on_free_port(start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=8)
    parser.add_argument("--procs", type=int, default=1, help="load processes")
    parser.add_argument("--per-room", type=int, default=30000, help="pre-encoded updates")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--logs", default="/tmp/collab-bench-workers")
    parser.add_argument("--only", type=int, choices=(1, 2), help="one worker count (debug)")
    args = parser.parse_args()
    Path(args.logs).mkdir(parents=True, exist_ok=True)

    from tests.support.postgres import PostgresServer

    print(f"uptime: {os.popen('uptime').read().strip()}  cores: {os.cpu_count()}")
    print(
        f"{args.rooms} rooms x 1 peer, {args.procs} load process(es), window {args.window} s "
        f"after {args.warmup} s warm-up; PostgreSQL + Redis local"
    )
    pg = PostgresServer.start()
    redis, redis_url = start_redis()
    phases: list[Phase] = []
    try:
        for rep in range(args.repeats):
            for workers in (1, 2) if args.only is None else (args.only,):
                phase = run_phase(args, pg, redis_url, workers, f"r{rep}w{workers}")
                phases.append(phase)
                note = (
                    "  (INVALID: the load stopped early — sent everything, or a replica "
                    "hand-over dropped updates the bypassed peer documents cannot resend)"
                    if phase.ran_out
                    else ""
                )
                if phase.handovers:
                    note += f"  ({phase.handovers} room(s) changed replica)"
                print(
                    f"  --workers {workers}: {phase.rate:8.0f} updates/s archived; CPU/s: "
                    f"server {phase.server_cpu:.2f}, load {phase.load_cpu:.2f}, "
                    f"PostgreSQL {phase.pg_cpu:.2f}{note}",
                    flush=True,
                )
    finally:
        redis.stop()
        pg.stop()
    if args.only is not None:
        return
    one = statistics.median(p.rate for p in phases if p.workers == 1)
    two = statistics.median(p.rate for p in phases if p.workers == 2)
    print(f"median: --workers 1 {one:.0f}/s, --workers 2 {two:.0f}/s, ratio {two / one:.2f}x")
    per_cpu = {
        w: statistics.median(
            p.rate / p.server_cpu for p in phases if p.workers == w and p.server_cpu
        )
        for w in (1, 2)
    }
    print(
        f"updates per server CPU-second: --workers 1 {per_cpu[1]:.0f}, --workers 2 "
        f"{per_cpu[2]:.0f} (the work per update is the same; the ratio is how much CPU "
        "each topology got)"
    )
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
