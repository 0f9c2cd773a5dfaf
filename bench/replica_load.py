"""The archival replica under typing load: CPU per update, relay latency, exactness.

``--rooms`` rooms × ``--peers`` Python WebRTC peers (collab's own :class:`WebrtcPeer`), spread
over ``--procs`` load processes, type into a real ``collab serve`` (signaling + replica on
SQLite) at a human rate: ``--rate`` edits/s per active editor, ``--active`` of the editors
active (each edit: one character at a random place, one transaction). Two topologies, run
interleaved (A/B/A/B, ``--repeats``) so that both see the same box:

* **star** (the subject): every peer has ``max_conns=0`` (it never initiates, it answers
  offers), so only the replica connects to it — every update goes peer → replica → peers;
* **mesh** (anchor): the same peers in rooms the replica does not follow (``--rooms rep-*``
  on the server): a plain y-webrtc mesh, no replica.

Printed per phase: the server's CPU per received typed update and per delivered message
(``/proc/<pid>/stat``, net of the same connections' idle CPU measured just before), p50/p99
latency typed → applied at every other peer of the room (one clock: ``time.monotonic`` is
system-wide), the server's RSS per connection, dropped and duplicated deliveries (a no-op
update that reached a peer: none allowed in star), the documents converged, and the archive
exact (after the run the server stops and its SQLite store is rebuilt: every room equals its
peers' text). Anchor: pycrdt applying the very same updates in-process (µs per update).

Run inside the test network namespace (WebRTC needs the veth pair), serialised with other
benchmarks:

    flock /tmp/collab-bench.lock scripts/netns-run .venv/bin/python bench/replica_load.py \\
        --rooms 10 --peers 2 --active 1.0 --duration 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")
ALPHABET = "abcdefghijklmnopqrstuvwxyz "


# ---------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (and its reaped children), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def use_loopback() -> None:
    """aioice skips 127.0.0.1; outside the test namespace use it anyway (nothing else)."""
    import aioice.ice

    def loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return ["127.0.0.1"]

    aioice.ice.get_host_addresses = loopback


# ---------------------------------------------------------------------------- load process


@dataclass
class PeerSpec:
    room: str
    index: int  # within the room
    active: bool


@dataclass
class WorkerResult:
    sent: dict[tuple[int, int], float] = field(default_factory=dict)  # (client, clock) -> t
    received: list[tuple[str, int, int, float]] = field(default_factory=list)
    """(room/peer key, client, clock, t) for every clock applied from a remote."""
    updates: list[tuple[str, float, bytes]] = field(default_factory=list)
    """(room, t, update) of every typed update (for the in-process pycrdt anchor)."""
    texts: dict[str, str] = field(default_factory=dict)  # peer key -> final text
    owners: dict[int, str] = field(default_factory=dict)  # client id -> peer key
    applied: int = 0  # update messages applied from remotes during the window
    noop: int = 0  # of which changed nothing (a duplicate delivery)
    cpu: float = 0.0  # this process's CPU during the window
    typed: int = 0


def worker_main(
    pipe: Pipe, url: str, specs: list[PeerSpec], mode: str, opts: dict[str, Any]
) -> None:
    if os.environ.get("COLLAB_NETNS") != "1":
        use_loopback()
    import anyio

    anyio.run(_worker, pipe, url, specs, mode, opts)


async def _worker(
    pipe: Pipe, url: str, specs: list[PeerSpec], mode: str, opts: dict[str, Any]
) -> None:
    import anyio

    from collab.peer import PeerConfig, WebrtcPeer
    from collab.sync import Connection, SyncRoom
    from collab.yupdate import decode_update

    result = WorkerResult()
    window = {"on": False}

    # Count every update message applied from a remote, and those that changed nothing (a
    # duplicate delivery): wraps the sync room's apply (a bench-only probe).
    original = SyncRoom._apply_remote

    async def probe(self: SyncRoom, connection: Connection, update: bytes) -> None:
        before = self.document._changes
        await original(self, connection, update)
        if window["on"]:
            result.applied += 1
            if self.document._changes == before:
                result.noop += 1

    SyncRoom._apply_remote = probe  # type: ignore[method-assign]

    # a load process holds many peers: let them all answer at once (the replica paces
    # its own offers with its pending budget)
    config = PeerConfig(
        ice_servers=[],
        max_conns=0 if mode == "star" else 20,
        max_pending_total=10_000,
        connect_timeout=60.0,
    )
    want = 1 if mode == "star" else None
    async with contextlib.AsyncExitStack() as stack:
        peers: list[tuple[PeerSpec, Any]] = []
        for spec in specs:
            peer = await stack.enter_async_context(WebrtcPeer(spec.room, url, config=config))
            key = f"{spec.room}/{spec.index}"

            def on_update(
                update: bytes, origin: Any, key: str = key, room: str = spec.room
            ) -> None:
                now = time.monotonic()
                if origin is None:
                    if window["on"]:
                        result.updates.append((room, now, update))
                    return
                if not window["on"]:
                    return
                for section in decode_update(update).clients:
                    for clock in range(section.start_clock, section.end_clock):
                        result.received.append((key, section.client, clock, now))

            peer.document.observe(on_update)
            peers.append((spec, peer))
            result.owners[peer.document.client_id] = key

        # connected: star = the replica only (re-announce until it offers: it may have joined
        # the room after our first announce); mesh = every other peer of the room
        need = want if want is not None else opts["peers"] - 1
        with anyio.fail_after(opts.get("setup_timeout", 120 + len(peers))):
            rounds = 0
            while missing := [p for _s, p in peers if len(p.connected_peers()) < need]:
                if mode == "star" and rounds % 5 == 0:
                    for peer in missing:
                        if not peer.peers():  # nothing under way with the replica
                            await peer.room._announce()
                rounds += 1
                await anyio.sleep(1.0)  # polling the peers' connections (set-up only)
            for _spec, peer in peers:
                await peer.wait_synced()
        pipe.send(("ready", len(peers)))
        if await anyio.to_thread.run_sync(pipe.recv) == "leave":  # go (or hold, then leave)
            return

        rng = random.Random(opts["seed"] + os.getpid())
        interval = 1.0 / opts["rate"]
        stop_at = time.monotonic() + opts["duration"]
        window["on"] = True
        cpu0 = time.process_time()

        async def typist(spec: PeerSpec, peer: Any) -> None:
            text = peer.document.text()
            client = peer.document.client_id
            clock = 0  # nothing typed before: our clocks start at 0
            await anyio.sleep(rng.random() * interval)  # random phase
            next_at = time.monotonic()
            while next_at < stop_at:
                position = rng.randint(0, len(text))  # ASCII only: bytes == chars
                sent = time.monotonic()
                text.insert(position, rng.choice(ALPHABET))
                result.sent[(client, clock)] = sent
                clock += 1
                result.typed += 1
                next_at += interval
                await anyio.sleep(max(0.0, next_at - time.monotonic()))

        async with anyio.create_task_group() as tg:
            for spec, peer in peers:
                if spec.active:
                    tg.start_soon(typist, spec, peer)
        result.cpu = time.process_time() - cpu0
        pipe.send(("typed", result.typed))
        # everyone stopped typing: the main process polls every peer's text (rooms span
        # processes) until every room converged
        while (await anyio.to_thread.run_sync(pipe.recv)) == "texts":
            pipe.send({f"{s.room}/{s.index}": str(p.document.text()) for s, p in peers})
        await anyio.sleep(opts["tail"])  # late duplicates would show up here
        texts = {f"{s.room}/{s.index}": str(p.document.text()) for s, p in peers}
        window["on"] = False
        result.texts = texts
        pipe.send(("result", result))
        await anyio.to_thread.run_sync(pipe.recv)  # leave together


# ---------------------------------------------------------------------------- main process


@dataclass
class Phase:
    mode: str
    cpu_server: float = 0.0
    cpu_idle: float = 0.0  # server CPU per second with the connections idle
    system_share: float = 0.0  # kernel share of the server's CPU in the window
    converge_seconds: float = 0.0  # from the end of typing until every room converged
    seconds: float = 0.0
    cpu_workers: float = 0.0
    typed: int = 0
    delivered: int = 0
    noop: int = 0
    dropped: int = 0
    duplicated: int = 0
    latencies: list[float] = field(default_factory=list)
    converged: bool = True
    rss_before: float = 0.0
    rss_after: float = 0.0
    connections: int = 0
    texts: dict[str, str] = field(default_factory=dict)
    updates: list[tuple[str, float, bytes]] = field(default_factory=list)


def start_server(port: int, data: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "COLLAB_IDLE_UNLOAD_AFTER": "3600",
        "COLLAB_MAX_SOCKETS_PER_ADDRESS": "100000",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/collab"), "serve", "--port", str(port), "--data", str(data),
         "--rooms", "rep-*", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=None, env=env, start_new_session=True,
    )  # fmt: skip
    import httpx

    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("collab serve did not start")
        time.sleep(0.1)


def run_phase(
    args: argparse.Namespace, server: subprocess.Popen[bytes], mode: str, tag: str
) -> Phase:
    prefix = "rep" if mode == "star" else "mesh"
    url = f"ws://127.0.0.1:{args.port}/signaling"
    rng = random.Random(args.seed)
    specs = [
        PeerSpec(f"{prefix}-{tag}-{r}", i, False)
        for r in range(args.rooms)
        for i in range(args.peers)
    ]
    active = max(1, round(args.active * len(specs)))
    for spec in rng.sample(specs, active):
        spec.active = True
    # a room's peers go to different processes where possible (cross-process delivery)
    groups: list[list[PeerSpec]] = [[] for _ in range(args.procs)]
    for n, spec in enumerate(specs):
        groups[n % args.procs].append(spec)
    opts = {
        "peers": args.peers,
        "rate": args.rate,
        "duration": args.duration,
        "seed": args.seed,
        "settle": 60.0,
        "tail": 1.0,
    }
    phase = Phase(mode, connections=len(specs))
    phase.rss_before = rss_mb(server.pid)
    ctx = mp.get_context("spawn")
    pipes: list[Pipe] = []
    procs = []
    for group in groups:
        if not group:
            continue
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(child, url, group, mode, opts), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        for pipe in pipes:
            if not pipe.poll(180):
                raise RuntimeError("a load process did not connect in time")
            pipe.recv()
        time.sleep(2.0)  # let connection set-up work settle
        phase.rss_after = rss_mb(server.pid)
        c0, t0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.idle)
        phase.cpu_idle = (cpu_seconds(server.pid) - c0) / (time.monotonic() - t0)
        spy = None
        if args.profile and mode == "star":
            spy = subprocess.Popen(
                [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(server.pid), "--format",
                 "raw", "--gil", "--rate", "250", "--duration", str(int(args.duration)), "--output",
                 f"{args.profile}.{tag}.txt", "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        c0, t0 = cpu_seconds(server.pid), time.monotonic()
        u0, s0 = cpu_split(server.pid)
        for pipe in pipes:
            pipe.send("go")
        for pipe in pipes:
            pipe.recv()  # typed
        deadline = time.monotonic() + opts["settle"]
        while time.monotonic() < deadline:
            texts: dict[str, str] = {}
            for pipe in pipes:
                pipe.send("texts")
            for pipe in pipes:
                texts.update(pipe.recv())
            by_room: dict[str, set[str]] = {}
            for key, value in texts.items():
                by_room.setdefault(key.split("/")[0], set()).add(value)
            if all(len(v) == 1 for v in by_room.values()):
                break
            time.sleep(0.05)  # polling the load processes for convergence
        phase.converge_seconds = time.monotonic() - t0 - args.duration
        for pipe in pipes:
            pipe.send("done")
        results: list[WorkerResult] = []
        for pipe in pipes:
            if not pipe.poll(120):
                raise RuntimeError("a load process did not converge in time")
            results.append(pipe.recv()[1])
        phase.cpu_server = cpu_seconds(server.pid) - c0
        u1, s1 = cpu_split(server.pid)
        phase.system_share = (s1 - s0) / max(1e-9, (u1 - u0) + (s1 - s0))
        phase.seconds = time.monotonic() - t0
        for pipe in pipes:
            pipe.send("leave")
        if spy is not None:
            spy.wait(60)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    sent: dict[tuple[int, int], float] = {}
    for r in results:
        sent.update(r.sent)
        phase.typed += r.typed
        phase.delivered += r.applied
        phase.noop += r.noop
        phase.cpu_workers += r.cpu
        phase.texts.update(r.texts)
        phase.updates.extend(r.updates)
    seen: Counter[tuple[str, int, int]] = Counter()
    for r in results:
        for key, client, clock, t in r.received:
            seen[(key, client, clock)] += 1
            if seen[(key, client, clock)] == 1 and (client, clock) in sent:
                phase.latencies.append(t - sent[(client, clock)])
    phase.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    # every typed clock must reach every other peer of its room
    owners: dict[int, str] = {}
    for r in results:
        owners.update(r.owners)
    receivers: dict[str, list[str]] = {}
    for key in phase.texts:
        receivers.setdefault(key.split("/")[0], []).append(key)
    for client, clock in sent:
        owner = owners[client]
        for key in receivers[owner.split("/")[0]]:
            if key != owner and (key, client, clock) not in seen:
                phase.dropped += 1
    by_room = {}
    for key, value in phase.texts.items():
        by_room.setdefault(key.split("/")[0], set()).add(value)
    phase.converged = all(len(v) == 1 for v in by_room.values())
    return phase


def pycrdt_anchor(updates: list[tuple[str, float, bytes]]) -> float:
    """µs per update for pycrdt applying the same updates in-process (one Doc per room)."""
    import pycrdt

    docs: dict[str, Any] = {}
    ordered = sorted(updates, key=lambda u: u[1])
    for room, _t, _u in ordered:
        if room not in docs:
            docs[room] = pycrdt.Doc()
    start = time.perf_counter()
    for room, _t, update in ordered:
        docs[room].apply_update(update)
    elapsed = time.perf_counter() - start
    return elapsed / max(1, len(ordered)) * 1e6


def check_archive(
    data: Path, texts: dict[str, str], text_name: str = "codemirror"
) -> tuple[int, int]:
    """Rebuild every star room from the stopped server's SQLite store: (exact, rooms)."""
    import anyio

    from collab.document import Document
    from collab.storage import open_store, rebuild

    expected: dict[str, str] = {}
    for key, value in texts.items():
        expected[key.split("/")[0]] = value

    async def main() -> tuple[int, int]:
        exact = 0
        async with open_store(f"sqlite:///{data / 'collab.db'}") as store:
            for room, text in expected.items():
                doc = Document()
                rebuild(await store.load(room), doc.ydoc)
                exact += str(doc.text(text_name)) == text
        return exact, len(expected)

    return anyio.run(main)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(phase: Phase, anchor_us: float) -> dict[str, Any]:
    updates = max(1, phase.typed)
    net = max(0.0, phase.cpu_server - phase.cpu_idle * phase.seconds)
    out = {
        "mode": phase.mode,
        "typed": phase.typed,
        "delivered": phase.delivered,
        "server_us_per_update": net / updates * 1e6,
        "server_us_per_update_gross": phase.cpu_server / updates * 1e6,
        "server_us_per_message": net / max(1, phase.delivered) * 1e6,
        "server_idle_cpu_pct": phase.cpu_idle * 100,
        "server_kernel_share": phase.system_share,
        "workers_us_per_delivered": phase.cpu_workers / max(1, phase.delivered) * 1e6,
        "p50_ms": quantile(phase.latencies, 0.5) * 1e3,
        "p99_ms": quantile(phase.latencies, 0.99) * 1e3,
        "rss_mb_per_connection": (phase.rss_after - phase.rss_before) / max(1, phase.connections),
        "noop_deliveries": phase.noop,
        "duplicated": phase.duplicated,
        "dropped": phase.dropped,
        "converged": phase.converged,
        "pycrdt_us_per_update": anchor_us,
        "converge_s": phase.converge_seconds,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--peers", type=int, default=2, help="Python peers per room")
    parser.add_argument("--procs", type=int, default=4, help="load processes")
    parser.add_argument("--rate", type=float, default=5.0, help="edits/s per active editor")
    parser.add_argument("--active", type=float, default=0.2, help="fraction of editors typing")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of typing")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle baseline")
    parser.add_argument("--repeats", type=int, default=1, help="star/mesh pairs, interleaved")
    parser.add_argument("--no-mesh", action="store_true", help="skip the mesh anchor")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8941)
    parser.add_argument(
        "--profile", default="", help="py-spy the server during star typing: PATH.<n>.txt"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per phase")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="collab-load-"))
    server = start_server(args.port, data)
    rows: list[dict[str, Any]] = []
    star_texts: dict[str, str] = {}
    try:
        base_rss = rss_mb(server.pid)
        modes = ["star"] if args.no_mesh else ["star", "mesh"]
        for repeat in range(args.repeats):
            for mode in modes:
                phase = run_phase(args, server, mode, f"{repeat}")
                row = report(phase, pycrdt_anchor(phase.updates))
                row["repeat"] = repeat
                rows.append(row)
                if mode == "star":
                    star_texts.update(phase.texts)
                print(json.dumps(row) if args.json else _line(row), flush=True)
        rss_total = rss_mb(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    exact, rooms = check_archive(data, star_texts)
    star = [r for r in rows if r["mode"] == "star"]
    mesh = [r for r in rows if r["mode"] == "mesh"]
    med = statistics.median
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1/5 min)")
    print(
        f"replica under load: {args.rooms} rooms × {args.peers} peers in {args.procs} processes, "
        f"{args.active:.0%} active at {args.rate:g} edits/s, {args.duration:g} s × {len(star)}"
    )
    su = med(r["server_us_per_update"] for r in star)
    anchor = med(r["pycrdt_us_per_update"] for r in star)
    print(
        f"  replica CPU per typed update {su:.0f} µs (net of idle; gross "
        f"{med(r['server_us_per_update_gross'] for r in star):.0f} µs), per delivered message "
        f"{med(r['server_us_per_message'] for r in star):.0f} µs"
    )
    print(
        f"  anchor: pycrdt applying the same updates in-process {anchor:.1f} µs "
        f"→ {su / anchor:.0f}×"
    )
    p50 = med(r["p50_ms"] for r in star)
    p99 = med(r["p99_ms"] for r in star)
    print(f"  latency through the replica p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    if mesh:
        m50 = med(r["p50_ms"] for r in mesh)
        m99 = med(r["p99_ms"] for r in mesh)
        print(
            f"  anchor: mesh without replica p50 {m50:.2f} ms, p99 {m99:.2f} ms → "
            f"{p50 / m50:.2f}× / {p99 / m99:.2f}×; peers' CPU per delivered update "
            f"star {med(r['workers_us_per_delivered'] for r in star):.0f} µs, mesh "
            f"{med(r['workers_us_per_delivered'] for r in mesh):.0f} µs"
        )
    print(
        f"  RSS per connection {med(r['rss_mb_per_connection'] for r in star):.2f} MB "
        f"(server {base_rss:.0f} → {rss_total:.0f} MB)"
    )
    print(
        f"  star: dropped {sum(r['dropped'] for r in star)}, duplicated "
        f"{sum(r['duplicated'] for r in star)}, no-op deliveries "
        f"{sum(r['noop_deliveries'] for r in star)}, converged "
        f"{all(r['converged'] for r in star)}; archive exact {exact}/{rooms} rooms"
    )
    if mesh:
        print(
            f"  mesh: dropped {sum(r['dropped'] for r in mesh)}, no-op deliveries (flooding) "
            f"{sum(r['noop_deliveries'] for r in mesh)}"
        )


def _line(row: dict[str, Any]) -> str:
    return (
        f"[{row['mode']} #{row['repeat']}] typed {row['typed']}, delivered {row['delivered']}, "
        f"server {row['server_us_per_update']:.0f} µs/update (gross "
        f"{row['server_us_per_update_gross']:.0f}), {row['server_us_per_message']:.0f} µs/msg, "
        f"idle {row['server_idle_cpu_pct']:.1f} %, kernel {row['server_kernel_share']:.0%}, "
        f"p50 {row['p50_ms']:.2f} ms p99 "
        f"{row['p99_ms']:.2f} ms, noop {row['noop_deliveries']}, dropped {row['dropped']}, "
        f"dup {row['duplicated']}, pycrdt {row['pycrdt_us_per_update']:.1f} µs, converged "
        f"{row['converge_s']:.1f} s after typing"
    )


if __name__ == "__main__":
    main()
