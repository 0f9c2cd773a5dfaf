"""Python ↔ Python over real aiortc data channels: keystroke latency and trace throughput.

Two measurements, each against an anchor measured in the same run:

1. **Keystroke latency**: peer A types single characters (one transaction each, paced at
   ``--hz``); peer B (same process, so one clock) records when each update is applied.
   Printed: p50/p99 one-way latency, and the ratio to A's own local edit time.
2. **Trace**: the automerge-paper trace (259,778 single-character edits) typed by peer A in
   this process (one transaction per edit) and received by peer B in a *separate process*
   over real aiortc. Anchor: replaying the same edits into a plain in-process ``pycrdt.Doc``.
   Printed: ratio = (A starts typing → B holds the final text) / anchor. Goal ≤ 1.5×.

Signaling: y-webrtc's own ``bin/server.js`` is started for the run (or ``--signaling URL``).
With ``--replica`` a real ``collab serve`` (signaling + archival replica on SQLite) is started
instead and both peers connect *only* to the replica (``max_conns=0``: they answer its offers
and never offer to each other), so every update goes A → replica (apply, store) → B; the
replica's CPU over the trace is printed too.
Run inside the test namespace (host candidates on the veth pair), e.g.:

    scripts/netns-run .venv/bin/python bench/peer_latency.py --limit 50000
    scripts/netns-run .venv/bin/python bench/peer_latency.py            # full trace

Outside the namespace, ICE is restricted to 127.0.0.1 (``--loopback``, the default there).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pycrdt

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT.parent / "shared" / "data" / "automerge-paper.json.gz"


def use_loopback() -> None:
    """aioice skips 127.0.0.1; outside the test namespace use it anyway (nothing else)."""
    import aioice.ice

    def loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return ["127.0.0.1"]

    aioice.ice.get_host_addresses = loopback


def load_trace(limit: int | None) -> list[tuple[int, int, str]]:
    with gzip.open(TRACE) as f:
        data = json.load(f)
    edits = [(int(p[0]), int(p[1]), str(p[2])) for txn in data["txns"] for p in txn["patches"]]
    return edits[:limit] if limit is not None else edits


def apply_edit(t: pycrdt.Text, pos: int, dels: int, ins: str) -> None:
    if dels:
        del t[pos : pos + dels]
    if ins:
        t.insert(pos, ins)


def anchor_replay(edits: list[tuple[int, int, str]]) -> tuple[float, str]:
    """The anchor: the same edits into a plain in-process pycrdt Doc, one transaction each.
    Returns (seconds, final text)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    t = doc.get("t", type=pycrdt.Text)
    start = time.perf_counter()
    cpu = time.process_time()
    for pos, dels, ins in edits:
        with doc.transaction():
            apply_edit(t, pos, dels, ins)
    _ANCHOR_CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start, str(t)


_ANCHOR_CPU: list[float] = []


def start_signaling() -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["node", str(ROOT / "node_modules/y-webrtc/bin/server.js")],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "Signaling server running on localhost: PORT"
    return f"ws://127.0.0.1:{port}", proc


def start_replica() -> tuple[str, subprocess.Popen[bytes]]:
    """A ``collab serve`` on a free port with its data in a temporary directory."""
    import tempfile

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="collab-latency-")
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/collab"), "serve", "--port", str(port), "--data", data,
         "--log-level", "warning"],
        env={**os.environ, "COLLAB_IDLE_UNLOAD_AFTER": "3600"},
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return f"ws://127.0.0.1:{port}/signaling", proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("collab serve did not start")
        time.sleep(0.1)


def peer_config() -> Any:
    """Peers of this run: via the replica only (``max_conns=0``) when ``--replica``."""
    from collab.peer import PeerConfig

    return PeerConfig(ice_servers=[], max_conns=0 if os.environ.get(_VIA_REPLICA) else 20)


_VIA_REPLICA = "COLLAB_BENCH_VIA_REPLICA"


async def connect(peer: Any) -> None:
    """Wait until ``peer`` is connected and synced; via the replica, re-announce until the
    replica offers (it may have joined the room after our first announce)."""
    via_replica = bool(os.environ.get(_VIA_REPLICA))
    while not peer.connected_peers():
        if via_replica:
            await peer.room._announce()
        with anyio.move_on_after(1.0):
            await peer.wait_for_peers(1)
    await peer.wait_synced()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


# ---------------------------------------------------------------------------- receiver role


async def receiver(url: str, room: str, expected_len: int) -> None:
    from collab.peer import WebrtcPeer

    async with WebrtcPeer(room, url, config=peer_config()) as peer:
        text = peer.document.text()
        changed = anyio.Event()
        first: list[float] = []

        def on_update(update: bytes, origin: Any) -> None:
            # never read the document inside its own observer (the transaction is open)
            if not first:
                first.append(time.time())
                first.append(time.process_time())
            changed.set()

        peer.document.observe(on_update)
        if os.environ.get(_VIA_REPLICA):  # else A is not there yet: it starts on READY
            with anyio.fail_after(60):
                await connect(peer)
        print("READY", flush=True)
        while len(str(text)) != expected_len:
            await changed.wait()
            changed = anyio.Event()
        cpu = time.process_time() - first[1]
        print(f"DONE {time.time():.6f} {first[0]:.6f} {cpu:.6f}", flush=True)
        await anyio.sleep(0.2)


# ---------------------------------------------------------------------------- measurements


async def keystrokes(url: str, count: int, hz: float) -> None:
    from collab.peer import WebrtcPeer

    cfg = peer_config()
    room = f"bench-keys-{os.getpid()}"
    async with WebrtcPeer(room, url, config=cfg) as a, WebrtcPeer(room, url, config=cfg) as b:
        with anyio.fail_after(30):
            await connect(a)
            await connect(b)
        arrived = anyio.Event()
        stamp: list[float] = []

        def on_b(update: bytes, origin: Any) -> None:
            stamp.append(time.perf_counter())
            arrived.set()

        b.document.observe(on_b)
        latencies, local = [], []
        text = a.document.text()
        for i in range(count):
            stamp.clear()
            arrived = anyio.Event()
            t0 = time.perf_counter()
            text.insert(len(str(text)), "abcdefghij"[i % 10])
            local.append(time.perf_counter() - t0)
            with anyio.fail_after(10):
                await arrived.wait()
            latencies.append(stamp[0] - t0)
            await anyio.sleep(1 / hz)
        (stats,) = await a.stats()
    q = statistics.quantiles(latencies, n=100)
    p50, p99 = statistics.median(latencies), q[98]
    anchor = statistics.median(local)
    print(f"keystrokes: {count} at {hz:.0f} Hz over a real data channel")
    print(f"  one-way latency p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
    print(
        f"  anchor (local edit, same run) p50 {anchor * 1e6:.1f} µs → p50 ratio {p50 / anchor:.0f}×"
    )
    rtt = f"{stats.rtt * 1e3:.2f} ms" if stats.rtt else "n/a"
    print(f"  SCTP smoothed RTT {rtt}")


async def trace(
    url: str, limit: int | None, batch: int, burst: int, server: int | None = None
) -> None:
    from collab.peer import WebrtcPeer

    edits = load_trace(limit)
    anchor, final = anchor_replay(edits)
    room = f"bench-trace-{os.getpid()}"
    args = [
        sys.executable,
        __file__,
        "--role",
        "receiver",
        "--signaling",
        url,
        "--room",
        room,
        "--expected-len",
        str(len(final)),
    ]
    if "--loopback" in sys.argv or os.environ.get("COLLAB_NETNS") != "1":
        args.append("--loopback")
    proc = await anyio.open_process(args, stdout=subprocess.PIPE, stderr=None)
    try:
        assert proc.stdout is not None
        lines = proc.stdout
        buf = b""

        async def next_line() -> str:
            nonlocal buf
            while b"\n" not in buf:
                buf += await lines.receive()
            line, buf = buf.split(b"\n", 1)
            return line.decode()

        with anyio.fail_after(60):
            assert (await next_line()) == "READY"
        async with WebrtcPeer(room, url, config=peer_config()) as a:
            with anyio.fail_after(60):
                await connect(a)
            t = a.document.text()
            server_cpu = cpu_seconds(server) if server is not None else 0.0
            a_cpu = time.process_time()
            start = time.time()
            for i in range(0, len(edits), batch):
                with a.document.transaction():
                    for pos, dels, ins in edits[i : i + batch]:
                        apply_edit(t, pos, dels, ins)
                if (i // batch) % burst == burst - 1:  # let the sender run between bursts
                    await anyio.lowlevel.checkpoint()
            typed = time.time() - start
            with anyio.fail_after(600):
                done = await next_line()
            a_cpu = time.process_time() - a_cpu
            end = float(done.split()[1])
            b_cpu = float(done.split()[3])  # from its first update on
            if server is not None:
                server_cpu = cpu_seconds(server) - server_cpu
            (stats,) = await a.stats()
        assert str(t) == final
        # the anchor again (A/B/A): the box's load moves; the ratio uses the mean of both
        anchor_after, _ = anchor_replay(edits)
        anchor = (anchor + anchor_after) / 2
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    total = end - start
    print(
        f"trace: automerge-paper, {len(edits):,} edits, final {len(final):,} chars, "
        f"{batch} edit(s) per transaction, yielding every {burst} transaction(s)"
    )
    print(
        f"  anchor: in-process pycrdt replay {anchor:.2f} s (mean of before and after) "
        f"({anchor / len(edits) * 1e6:.1f} µs/edit)"
    )
    print(
        f"  typed by peer A in {typed:.2f} s; "
        f"received by peer B (other process) after {total:.2f} s"
    )
    print(
        f"  messages {stats.messages_out:,}, payload {stats.bytes_out / 1e6:.2f} MB, "
        f"wire {stats.transport_bytes_out / 1e6:.2f} MB"
    )
    print(f"  typing alone / anchor = {typed / anchor:.2f}× (local Document + sync cost)")
    print(f"  delivery lag after the last edit: {(total - typed) * 1e3:.0f} ms")
    if server is not None:
        print(
            f"  through the replica: its CPU {server_cpu:.2f} s = "
            f"{server_cpu / len(edits) * 1e6:.1f} µs per typed edit, "
            f"{server_cpu / max(1, stats.messages_out) * 1e6:.0f} µs per message from A"
        )
    anchor_cpu = sum(_ANCHOR_CPU[-2:]) / 2
    print(
        f"  CPU (load-independent): anchor {anchor_cpu:.2f} s; peer A (typing + sending) "
        f"{a_cpu:.2f} s = {a_cpu / anchor_cpu:.2f}×; peer B (receiving) "
        f"{b_cpu:.2f} s = {b_cpu / anchor_cpu:.2f}×"
        + (f"; replica {server_cpu:.2f} s = {server_cpu / anchor_cpu:.2f}×" if server else "")
    )
    print(f"  load {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    print(f"  RATIO end-to-end / anchor = {total / anchor:.2f}× (goal ≤ 1.5×)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N trace edits")
    parser.add_argument("--keystrokes", type=int, default=300, help="0 skips this part")
    parser.add_argument("--hz", type=float, default=50.0)
    parser.add_argument("--batch", type=int, default=1, help="trace edits per transaction")
    parser.add_argument("--burst", type=int, default=16, help="transactions between yields")
    parser.add_argument("--signaling", default=None, help="use this signaling server")
    parser.add_argument("--loopback", action="store_true", help="ICE on 127.0.0.1 only")
    parser.add_argument(
        "--replica", action="store_true", help="through collab serve's replica (peers → replica)"
    )
    parser.add_argument("--role", default="main", choices=["main", "receiver"])
    parser.add_argument("--room", default="")
    parser.add_argument("--expected-len", type=int, default=0)
    opts = parser.parse_args()
    if opts.loopback or os.environ.get("COLLAB_NETNS") != "1":
        use_loopback()
    if opts.role == "receiver":
        anyio.run(receiver, opts.signaling, opts.room, opts.expected_len)
        return
    proc = None
    url = opts.signaling
    if opts.replica:
        os.environ[_VIA_REPLICA] = "1"  # inherited by the receiver process
        url, proc = start_replica()
    elif url is None:
        url, proc = start_signaling()
    server = proc.pid if opts.replica and proc is not None else None
    try:
        if opts.keystrokes:
            anyio.run(keystrokes, url, opts.keystrokes, opts.hz)
        anyio.run(trace, url, opts.limit, opts.batch, opts.burst, server)
    finally:
        if proc is not None:
            stop(proc)


if __name__ == "__main__":
    main()
