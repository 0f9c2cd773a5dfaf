"""Capacity of one archival replica process: rooms and connections held, memory, idle CPU.

Starts a real ``collab serve`` (signaling + replica on SQLite), then opens ``--rooms`` rooms with
``--peers`` Python WebRTC peers each, spread over ``--procs`` load processes (the peers of
``bench/replica_load.py``: ``max_conns=0``, so each one is connected to the replica only and
the replica holds rooms × peers connections). Once every peer is connected to the replica and
synced, it measures the server process over ``--idle`` seconds of silence: resident memory and
CPU, each next to the same process measured before any room existed (the anchor), so the
figures read "per room / per connection above an idle server". Goal: 1,000 connections
(250 rooms × 4) idle at ≤ 20 % of a core.

Run it inside the test network namespace (WebRTC needs the veth pair):

    flock /tmp/collab-bench.lock scripts/netns-run .venv/bin/python bench/replica_capacity.py \\
        --rooms 250 --peers 4 --procs 8
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.replica_load import PeerSpec, cpu_seconds, rss_mb, start_server, worker_main  # noqa: E402


def idle_cpu_percent(pid: int, seconds: float) -> float:
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="collab-capacity-"))
    server = start_server(args.port, data)
    url = f"http://127.0.0.1:{args.port}"
    procs = []
    pipes: list[Pipe] = []
    try:
        time.sleep(2)
        base_rss = rss_mb(server.pid)
        base_cpu = idle_cpu_percent(server.pid, args.idle)

        specs = [
            PeerSpec(f"rep-cap-{r}", i, False) for r in range(args.rooms) for i in range(args.peers)
        ]
        groups: list[list[PeerSpec]] = [specs[n :: args.procs] for n in range(args.procs)]
        opts = {
            "peers": args.peers, "rate": 1.0, "duration": 0.0, "seed": 1, "tail": 0.0,
            "setup_timeout": 1800.0,
        }  # fmt: skip
        ctx = mp.get_context("spawn")
        started = time.monotonic()
        for group in groups:
            if not group:
                continue
            parent, child = ctx.Pipe()
            signaling = f"ws://127.0.0.1:{args.port}/signaling"
            proc = ctx.Process(
                target=worker_main, args=(child, signaling, group, "star", opts), daemon=True
            )
            proc.start()
            procs.append(proc)
            pipes.append(parent)
        for pipe in pipes:
            if not pipe.poll(1900):
                raise RuntimeError("a load process did not connect in time")
            pipe.recv()
        setup = time.monotonic() - started
        rooms = httpx.get(url + "/api/rooms", timeout=30).json()
        loaded = sum(1 for room in rooms if room["loaded"])
        held = sum(room["peers"] for room in rooms)
        time.sleep(5)  # let set-up work (ICE checks, DTLS, first syncs) settle
        rss = rss_mb(server.pid)
        cpu = idle_cpu_percent(server.pid, args.idle)
        load = os.getloadavg()
    finally:
        for pipe in pipes:
            pipe.send("leave")
        for proc in procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)

    print(f"replica capacity: {loaded} rooms loaded, {held} WebRTC connections held by one "
          f"process (set up in {setup:.1f} s; peers in {len(procs)} load processes)")  # fmt: skip
    print(f"  anchor (idle server, no rooms): RSS {base_rss:.1f} MB, CPU {base_cpu:.2f} %")
    print(f"  with the rooms, idle {args.idle:.0f} s: RSS {rss:.1f} MB "
          f"(+{(rss - base_rss) / max(held, 1):.2f} MB per connection), CPU {cpu:.2f} % "
          f"({cpu / max(base_cpu, 0.01):.1f}× the anchor, "
          f"{cpu / max(held, 1):.4f} % per connection; goal ≤ 20 %)")  # fmt: skip
    print(f"  load average {load[0]:.2f} {load[1]:.2f} (1/5 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=250)
    parser.add_argument("--peers", type=int, default=4, help="Python peers per room")
    parser.add_argument("--procs", type=int, default=8, help="load processes")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measurement")
    parser.add_argument("--port", type=int, default=8931)
    main(parser.parse_args())
