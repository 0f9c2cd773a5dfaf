"""Child processes for the crash and takeover tests (run as ``python store_child.py MODE ...``).

Each prints one JSON object per line on stdout (flushed), so the parent can SIGKILL it at a
known point and later check that everything it reported as durable is there.

* ``sqlite-writer DB SEED``: types into the room ``crash`` (text "abcd…"), flushing every 20
  edits, compacting from its live document every 100 edits, a version every 170.
* ``pg-replica DSN OWNER TTL ROOMS``: a replica-like loop contending for comma-separated rooms:
  acquire what it can, append ``OWNER:ROOM:SEQ`` payloads, flush every 10 appends.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import anyio
from pycrdt import Doc, Text, TransactionEvent

from collab.storage import PostgresStore, SQLiteStore, StoreOptions, rebuild


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def sqlite_writer(path: str, seed: int) -> None:
    rng = random.Random(seed)
    async with SQLiteStore(path) as store:
        stored = await store.load("crash", missing_ok=True)
        doc: Doc[Any] = rebuild(stored, Doc(client_id=rng.randrange(1, 2**31)))
        text = doc.get("codemirror", type=Text)
        start = len(str(text))
        last_seq = stored.last_seq

        def on_update(event: TransactionEvent) -> None:
            nonlocal last_seq
            last_seq = store.append("crash", event.update)

        doc.observe(on_update)
        say(event="started", seq=stored.last_seq, length=start)
        length = start
        for i in range(1, 1_000_000):
            text.insert(length, chr(97 + length % 26))
            length += 1
            if i % 20 == 0:
                await store.flush()
                say(event="flushed", seq=last_seq, length=length)
            if i % 100 == 0:
                await store.compact("crash", doc.get_update(), last_seq)
                say(event="compacted", seq=last_seq)
            if i % 170 == 0:
                await store.add_version("crash", f"v{i}", [seed])


async def pg_replica(dsn: str, owner: str, ttl: float, rooms: list[str]) -> None:
    opts = StoreOptions(lease_ttl=ttl, lease_renew_interval=ttl / 4, commit_interval=0.01)
    async with PostgresStore(dsn, opts) as store:
        counts: dict[str, int] = {}
        while True:
            for room in rooms:
                if room not in store.held_rooms() and await store.acquire_room(room, owner):
                    stored = await store.load(room, missing_ok=True)
                    say(event="acquired", room=room, seq=stored.last_seq)
            for room in sorted(store.held_rooms()):
                seq = store.append(room, f"{owner}:{room}:{store._last_seq[room] + 1}".encode())
                counts[room] = counts.get(room, 0) + 1
                if counts[room] % 10 == 0:
                    await store.flush()
                    say(event="flushed", room=room, seq=seq)
            await anyio.sleep(0.005)  # pace the writer like a stream of keystrokes


def main() -> None:
    mode = sys.argv[1]
    if mode == "sqlite-writer":
        anyio.run(sqlite_writer, sys.argv[2], int(sys.argv[3]))
    elif mode == "pg-replica":
        rooms = sys.argv[5].split(",")
        anyio.run(pg_replica, sys.argv[2], sys.argv[3], float(sys.argv[4]), rooms)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
