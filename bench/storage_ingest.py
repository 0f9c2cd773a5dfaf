"""Storage ingest benchmark: the automerge-paper trace into collab's SQLite store.

Replays the trace in pycrdt (31-bit client id, one transaction and one update per edit:
259,778 updates), then measures, in the same run:

* ingest rate of :class:`collab.storage.SQLiteStore` (WAL, group commit; synchronous=NORMAL
  and FULL), appending every update and flushing at the end;
* the same for pycrdt-store's ``SQLiteYStore`` (what pycrdt-websocket uses) on a prefix only,
  because it commits (and checkpoints) per update and is far slower;
* cold open of the finished document (open the file, load snapshot + tail, apply into a Doc)
  next to pycrdt's in-memory floor ``Doc().apply_update(full_state)``;
* optionally (``--postgres``) the PostgreSQL store on a throw-away local server.

Usage:
    .venv/bin/python bench/storage_ingest.py            # full trace
    .venv/bin/python bench/storage_ingest.py --limit 20000 --ystore-limit 2000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from pycrdt import Doc, Text, TransactionEvent

from collab.storage import BufferedStore, PostgresStore, SQLiteStore, StoreOptions, rebuild

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT.parent / "shared" / "data" / "automerge-paper.json.gz"
ROOM = "automerge-paper"


def replay_trace(limit: int | None) -> tuple[list[bytes], bytes, str]:
    """One update per edit (31-bit client id), the final full state and the final text."""
    with gzip.open(TRACE, "rt") as f:
        trace = json.load(f)
    doc: Doc[Any] = Doc(client_id=random.Random(42).randrange(1, 2**31))
    text = doc.get("codemirror", type=Text)
    updates: list[bytes] = []

    def on_update(event: TransactionEvent) -> None:
        updates.append(event.update)

    doc.observe(on_update)
    for n, txn in enumerate(trace["txns"]):
        if limit is not None and n >= limit:
            break
        with doc.transaction():
            for pos, deleted, inserted in txn["patches"]:
                if deleted:
                    del text[pos : pos + deleted]
                if inserted:
                    text.insert(pos, inserted)
    if limit is None:
        assert str(text) == trace["endContent"], "replay diverged from the trace"
    return updates, doc.get_update(), str(text)


def best_of(n: int, fn: Any) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


async def ingest(store: BufferedStore, updates: list[bytes]) -> float:
    """Seconds to append every update (yielding to the loop now and then) and flush."""
    t0 = time.perf_counter()
    for i, update in enumerate(updates):
        store.append(ROOM, update)
        if i % 256 == 255:
            await anyio.lowlevel.checkpoint()  # let the writer run, as a live replica would
    await store.flush()
    return time.perf_counter() - t0


async def bench_sqlite(path: Path, updates: list[bytes], sync: str) -> dict[str, float]:
    async with SQLiteStore(path, StoreOptions(synchronous=sync)) as store:
        await store.acquire_room(ROOM, "bench")
        seconds = await ingest(store, updates)
        commits = store.counters.commits
    return {"seconds": seconds, "rate": len(updates) / seconds, "commits": commits}


async def cold_open(path: Path) -> tuple[float, Doc[Any]]:
    t0 = time.perf_counter()
    async with SQLiteStore(path, StoreOptions(check_on_open=False)) as store:
        doc = rebuild(await store.load(ROOM))
    return time.perf_counter() - t0, doc


async def compact(path: Path) -> tuple[float, int]:
    async with SQLiteStore(path) as store:
        t0 = time.perf_counter()
        stored = await store.load(ROOM)
        snapshot = rebuild(stored).get_update()
        await store.compact(ROOM, snapshot, stored.last_seq)
        return time.perf_counter() - t0, len(snapshot)


async def bench_ystore(path: Path, updates: list[bytes]) -> float:
    from pycrdt.store import SQLiteYStore

    class BenchYStore(SQLiteYStore):
        db_path = str(path)

    async with BenchYStore(ROOM) as ystore:
        t0 = time.perf_counter()
        for update in updates:
            await ystore.write(update)
        return time.perf_counter() - t0


async def bench_postgres(dsn: str, updates: list[bytes]) -> dict[str, float]:
    async with PostgresStore(dsn) as store:
        await store.acquire_room(ROOM, "bench")
        seconds = await ingest(store, updates)
        t0 = time.perf_counter()
        doc = rebuild(await store.load(ROOM))
        load = time.perf_counter() - t0
    del doc
    return {"seconds": seconds, "rate": len(updates) / seconds, "load": load}


async def main_async(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    updates, full_state, final_text = replay_trace(args.limit)
    total = sum(len(u) for u in updates)
    print(
        f"trace: {len(updates):,} updates, {total:,} B "
        f"(avg {total / len(updates):.1f} B), final state {len(full_state):,} B, "
        f"text {len(final_text):,} chars; replay {time.perf_counter() - t0:.1f} s"
    )
    floor = best_of(5, lambda: Doc().apply_update(full_state))
    print(f"anchor: in-memory load floor Doc().apply_update(full_state) = {floor * 1e3:.2f} ms")

    with tempfile.TemporaryDirectory(prefix="collab-bench-") as tmp:
        tmpdir = Path(tmp)
        results: dict[str, dict[str, float]] = {}
        for sync in ("NORMAL", "FULL"):
            path = tmpdir / f"collab-{sync}.db"
            results[sync] = r = await bench_sqlite(path, updates, sync)
            size = path.stat().st_size
            print(
                f"collab SQLiteStore WAL synchronous={sync}: {r['rate']:,.0f} updates/s "
                f"({r['seconds']:.2f} s, {r['commits']:.0f} commits, db {size / 1e6:.1f} MB)"
            )
        path = tmpdir / "collab-NORMAL.db"
        log_open, doc = await cold_open(path)
        assert str(doc.get("codemirror", type=Text)) == final_text
        print(
            f"cold open, log only (no snapshot, {len(updates):,} updates replayed): "
            f"{log_open * 1e3:.1f} ms = {log_open / floor:.1f}x floor"
        )
        seconds, snap_size = await compact(path)
        print(f"compaction (load + replay + snapshot + delete log): {seconds * 1e3:.0f} ms, "
              f"snapshot {snap_size:,} B")  # fmt: skip
        opens = []
        for _ in range(5):
            secs, doc = await cold_open(path)
            opens.append(secs)
        assert str(doc.get("codemirror", type=Text)) == final_text
        snap_open = min(opens)
        print(
            f"cold open after compaction (open file + load snapshot + apply): "
            f"{snap_open * 1e3:.2f} ms (median {statistics.median(opens) * 1e3:.2f} ms) "
            f"= {snap_open / floor:.2f}x the in-memory floor (goal <= 2x)"
        )

        prefix = updates[: args.ystore_limit]
        ys = await bench_ystore(tmpdir / "ystore.db", prefix)
        ys_rate = len(prefix) / ys
        print(
            f"pycrdt-store SQLiteYStore (default settings, first {len(prefix):,} updates only): "
            f"{ys_rate:,.0f} updates/s ({ys:.2f} s)"
        )
        print(
            f"ratio collab/SQLiteYStore: NORMAL {results['NORMAL']['rate'] / ys_rate:.0f}x, "
            f"FULL {results['FULL']['rate'] / ys_rate:.0f}x (goal >= 10x and >= 20k updates/s)"
        )

    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.support.postgres import PostgresServer  # the suite's throw-away server

        server = PostgresServer.start()
        try:
            r = await bench_postgres(server.create_database("bench"), updates)
        finally:
            server.stop()
        print(
            f"collab PostgresStore (local server, fsync=off test settings): "
            f"{r['rate']:,.0f} updates/s ({r['seconds']:.2f} s); load+replay {r['load']:.2f} s"
        )
    print(
        "durability: collab NORMAL = WAL + synchronous=NORMAL, a group commit survives a process "
        "crash (SIGKILL), not necessarily power loss; FULL = fsync per group commit, survives "
        "power loss. Updates still in the <= 50 ms group window are lost on SIGKILL (peers "
        "resend them). SQLiteYStore = rollback journal, one commit per update (its defaults)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N edits")
    parser.add_argument(
        "--ystore-limit", type=int, default=5000, help="prefix length for SQLiteYStore"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="also run PostgresStore on a temp server"
    )
    anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()
