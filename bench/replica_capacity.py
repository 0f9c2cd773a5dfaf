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
import re
import signal
import subprocess
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


def datagram_summary(trace: str, seconds: float, connections: int) -> str:
    """Datagrams per second and per connection in an ``strace -x -s 2`` of the server, by
    kind: STUN Binding request / response (first bytes 00 01 / 01 01) or DTLS record (17 =
    application data, i.e. SCTP), the DTLS ones split by size (SCTP SACKs are the small
    ones, < 90 bytes on the wire)."""
    kinds: dict[str, int] = {}
    for line in trace.splitlines():
        m = re.search(r"(sendto|recvfrom|sendmsg|recvmsg)\(\d+, .*?\"((?:\\x[0-9a-f]{2})*)"
                      r"\"\.*?.*\) = (\d+)", line)  # fmt: skip
        if m is None:
            continue
        call, head, size = m.group(1), m.group(2), int(m.group(3))
        way = "out" if call.startswith("send") else "in"
        if head.startswith("\\x00\\x01"):
            kind = "STUN request"
        elif head.startswith("\\x01\\x01"):
            kind = "STUN response"
        elif head.startswith("\\x17"):
            kind = "DTLS small (SACK)" if size < 90 else "DTLS data"
        else:
            kind = "other"
        kinds[f"{kind} {way}"] = kinds.get(f"{kind} {way}", 0) + 1
    total = sum(kinds.values())
    rate = total / seconds
    lines = [f"datagrams of the idle server over {seconds:.0f} s (strace): {rate:.0f}/s, "
             f"{rate / connections:.2f}/s per connection"]  # fmt: skip
    for kind, count in sorted(kinds.items()):
        lines.append(f"    {kind:26} {count / seconds / connections:.3f}/s per connection")
    return "\n".join(lines)


def start_uvloop_server(port: int, data: Path) -> subprocess.Popen[bytes]:
    """``collab serve`` as :func:`start_server` runs it, but on uvloop's event loop (an
    experiment: ``collab serve`` itself runs asyncio's default loop)."""
    boot = (
        "import asyncio, sys, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
        "from collabd.cli import app; sys.argv[0] = 'collab'; sys.exit(app())"
    )
    env = {
        **os.environ,
        "COLLAB_IDLE_UNLOAD_AFTER": "3600",
        "COLLAB_MAX_SOCKETS_PER_ADDRESS": "100000",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), "-c", boot, "serve", "--port", str(port), "--data",
         str(data), "--rooms", "rep-*", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=None, env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("collab serve (uvloop) did not start")
        time.sleep(0.1)


def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="collab-capacity-"))
    server = start_uvloop_server(args.port, data) if args.uvloop else start_server(args.port, data)
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
            "setup_timeout": args.setup_timeout,
        }  # fmt: skip
        ctx = mp.get_context("spawn")
        started = time.monotonic()
        signaling = f"ws://127.0.0.1:{args.port}/signaling"
        groups = [group for group in groups if group]
        steps: list[str] = []
        for first in range(0, len(groups), args.ramp):
            # a batch of load processes at a time, each batch once the previous one is
            # connected and synced: set-up handshakes (ICE, DTLS, SCTP) of a few hundred
            # connections at once time out on a loaded 2-core box
            batch_started = time.monotonic()
            batch = []
            for group in groups[first : first + args.ramp]:
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=worker_main, args=(child, signaling, group, "star", opts), daemon=True
                )
                proc.start()
                procs.append(proc)
                pipes.append(parent)
                batch.append(parent)
            for pipe in batch:
                if not pipe.poll(args.setup_timeout + 100):
                    raise RuntimeError("a load process did not connect in time")
                pipe.recv()
            steps.append(f"{time.monotonic() - batch_started:.0f}")
        setup = time.monotonic() - started
        rooms = httpx.get(url + "/api/rooms", timeout=30).json()
        loaded = sum(1 for room in rooms if room["loaded"])
        held = sum(room["peers"] for room in rooms)
        time.sleep(5)  # let set-up work (ICE checks, DTLS, first syncs) settle
        rss = rss_mb(server.pid)
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(server.pid), "--format",
                 "raw", "--rate", "250", "--duration", str(int(args.idle)), "--output",
                 args.profile, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        load_cpu0 = sum(cpu_seconds(proc.pid) for proc in procs if proc.pid is not None)
        load_t0 = time.monotonic()
        cpu = idle_cpu_percent(server.pid, args.idle)
        load_cpu = sum(cpu_seconds(proc.pid) for proc in procs if proc.pid is not None)
        load_pct = 100 * (load_cpu - load_cpu0) / (time.monotonic() - load_t0)
        if spy is not None:
            spy.wait(60)
        if args.strace:  # after the CPU window: strace slows the process it counts
            traced = subprocess.run(
                ["timeout", "-s", "INT", str(args.strace), "strace", "-f", "-x", "-s", "2",
                 "-e", "trace=sendto,recvfrom,sendmsg,recvmsg", "-p", str(server.pid)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            print(datagram_summary(traced.stderr, args.strace, max(held, 1)))
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
          f"process (set up in {setup:.1f} s: {' + '.join(steps)} s in batches of {args.ramp} "
          f"load processes; peers in {len(procs)} load processes)")  # fmt: skip
    print(f"  anchor (idle server, no rooms): RSS {base_rss:.1f} MB, CPU {base_cpu:.2f} %")
    print(f"  with the rooms, idle {args.idle:.0f} s: RSS {rss:.1f} MB "
          f"(+{(rss - base_rss) / max(held, 1):.2f} MB per connection), CPU {cpu:.2f} % "
          f"({cpu / max(base_cpu, 0.01):.1f}× the anchor, "
          f"{cpu / max(held, 1):.4f} % per connection; goal ≤ 20 %)")  # fmt: skip
    print(f"  load processes (the peers' side of the same connections) meanwhile: "
          f"{load_pct:.1f} % CPU together")  # fmt: skip
    print(f"  load average {load[0]:.2f} {load[1]:.2f} (1/5 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=250)
    parser.add_argument("--peers", type=int, default=4, help="Python peers per room")
    parser.add_argument("--procs", type=int, default=8, help="load processes")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    parser.add_argument(
        "--ramp", type=int, default=1, help="load processes set up at a time (one batch each)"
    )
    parser.add_argument(
        "--setup-timeout", type=float, default=900.0, help="seconds one load process may take"
    )
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument(
        "--uvloop", action="store_true", help="run the server on uvloop (an experiment)"
    )
    parser.add_argument(
        "--strace", type=float, default=0.0, help="count the idle server's syscalls (seconds)"
    )
    parser.add_argument(
        "--profile", default="", help="py-spy the server during the idle window: PATH (raw)"
    )
    main(parser.parse_args())
