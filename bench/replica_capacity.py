"""Capacity of one archival replica process: rooms and connections held, memory, idle CPU.

Starts a real ``collab serve`` (signaling + replica on SQLite), then opens ``--rooms`` rooms with
``--peers`` Python WebRTC peers each (in this process). Once every peer is connected to the
replica and synced, it measures the server process over ``--idle`` seconds of silence:
resident memory and CPU, each next to the same process measured before any room existed
(the anchor), so the figures read "per room / per connection above an idle server".

Run it inside the test network namespace (WebRTC needs the veth pair):

    scripts/netns-run .venv/bin/python bench/replica_capacity.py --rooms 50 --peers 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collab.peer import PeerConfig, WebrtcPeer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def idle_cpu_percent(pid: int, seconds: float) -> float:
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    await anyio.sleep(seconds)
    return 100 * (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="collab-capacity-"))
    port = args.port
    env = {
        **os.environ,
        "COLLAB_IDLE_UNLOAD_AFTER": "3600",
        "COLLAB_MAX_SOCKETS_PER_ADDRESS": "10000",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/collab"), "serve", "--port", str(port), "--data", str(data),
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        with anyio.fail_after(60):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                await anyio.sleep(0.1)
        await anyio.sleep(2)
        base_rss = rss_mb(server.pid)
        base_cpu = await idle_cpu_percent(server.pid, args.idle)

        config = PeerConfig(ice_servers=[])
        peers: list[WebrtcPeer] = []
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            for r in range(args.rooms):
                for _ in range(args.peers):
                    p = await stack.enter_async_context(
                        WebrtcPeer(f"room-{r}", f"ws://127.0.0.1:{port}/signaling", config=config)
                    )
                    p.document.text().insert(0, f"room {r} ")
                    peers.append(p)
            with anyio.fail_after(60 + 2 * len(peers)):
                for p in peers:
                    await p.wait_for_peers(args.peers)  # the replica + the others
                    await p.wait_synced()
            setup = time.monotonic() - started
            rooms = httpx.get(url + "/api/rooms").json()
            loaded = sum(1 for room in rooms if room["loaded"])
            held = sum(room["peers"] for room in rooms)
            await anyio.sleep(2)
            rss = rss_mb(server.pid)
            cpu = await idle_cpu_percent(server.pid, args.idle)

        print(f"replica capacity: {loaded} rooms loaded, {held} WebRTC connections held "
              f"by one process (set up in {setup:.1f} s)")  # fmt: skip
        print(f"  anchor (idle server, no rooms): RSS {base_rss:.1f} MB, CPU {base_cpu:.2f} %")
        print(f"  with the rooms, idle {args.idle:.0f} s: RSS {rss:.1f} MB "
              f"(+{(rss - base_rss) / max(held, 1):.2f} MB per connection), CPU {cpu:.2f} % "
              f"({cpu / max(base_cpu, 0.01):.1f}× the anchor, "
              f"{cpu / max(held, 1):.3f} % per connection)")  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--peers", type=int, default=2, help="Python peers per room")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--port", type=int, default=8931)
    anyio.run(main, parser.parse_args())
