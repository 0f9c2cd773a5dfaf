"""The authors table and the timed log, on every backend; the SQLite schema migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pycrdt
import pytest

from collab.errors import NotFoundError
from collab.storage import Author, SQLiteStore
from tests.attribution.conftest import StoreFactory

pytestmark = pytest.mark.anyio


def _edits(n: int, client_id: int = 11) -> list[bytes]:
    doc = pycrdt.Doc(client_id=client_id)
    text = doc.get("codemirror", type=pycrdt.Text)
    out: list[bytes] = []
    doc.observe(lambda event: out.append(event.update))
    for i in range(n):
        text += f"line {i}\n"
    return out


async def test_authors_first_writer_wins_and_names_fill_in(make_store: StoreFactory) -> None:
    async with make_store() as store:
        added = await store.add_authors(
            "r", [Author(1, "Ada", "#ff0000", 10.0), Author(2, "", "", 11.0)]
        )
        assert added == 2
        # a second claim on client 1 is ignored; client 2 gets its first name
        again = [Author(1, "Mallory", "#000000", 1.0), Author(2, "Bob", "#00ff00", 12.0)]
        assert await store.add_authors("r", again) == 1
        assert await store.add_authors("r", [Author(2, "Eve", "", 13.0)]) == 0
        assert await store.list_authors("r") == [
            Author(1, "Ada", "#ff0000", 10.0),
            Author(2, "Bob", "#00ff00", 11.0),
        ]
        assert await store.list_authors("other") == []
    async with make_store() as store:  # durable
        assert [a.name for a in await store.list_authors("r")] == ["Ada", "Bob"]
        await store.acquire_room("r", "t")
        store.append("r", _edits(1)[0])
        await store.flush()
        assert await store.delete_room("r")
        assert await store.list_authors("r") == []


async def test_authors_are_capped_per_room(make_store: StoreFactory) -> None:
    async with make_store(max_authors=50) as store:
        invented = [Author(c, f"bot {c}", "", float(c)) for c in range(1, 100_001)]
        assert await store.add_authors("r", invented) == 50
        assert await store.add_authors("r", [Author(200_000, "late", "", 1.0)]) == 0
        assert len(await store.list_authors("r")) == 50
        assert await store.add_authors("s", [Author(5, "x" * 500, "#abc" * 10, 1.0)]) == 1
        (only,) = await store.list_authors("s")
        assert len(only.name) == 64 and len(only.color) <= 16
        with pytest.raises(ValueError):
            await store.add_authors("s", [Author(-1, "neg", "", 1.0)])


async def test_load_log_has_times_and_falls_back_to_snapshots(make_store: StoreFactory) -> None:
    updates = _edits(6)
    async with make_store() as store:
        await store.acquire_room("r", "t")
        for u in updates:
            store.append("r", u)
        log = await store.load_log("r")  # queued updates are committed first
        assert log.snapshot is None and [s for s, _, _ in log.entries] == [1, 2, 3, 4, 5, 6]
        times = [t for _, t, _ in log.entries]
        assert times == sorted(times) and log.updates == updates
        at3 = await store.load_log("r", 3)
        assert at3.last_seq == 3 and len(at3.entries) == 3
        doc = pycrdt.Doc()
        for u in updates[:4]:
            doc.apply_update(u)
        await store.add_version("r", "v", seq=4, snapshot=doc.get_update())
        # too long a replay: from the newest snapshot at or before the position
        short = await store.load_log("r", 6, max_updates=3)
        assert short.snapshot_seq == 4 and short.snapshot_at is not None
        assert [s for s, _, _ in short.entries] == [5, 6]
        assert (await store.load_log("r", 6, max_updates=3, start_by=2)).snapshot_seq == 0
        for u in updates[:4]:
            doc.apply_update(u)
        await store.compact("r", doc.get_update(), 4)
        after = await store.load_log("r")
        assert after.snapshot_seq == 4 and len(after.entries) == 2
        with pytest.raises(NotFoundError):
            await store.load_log("r", 99)
        with pytest.raises(NotFoundError):
            await store.load_log("nope")


async def test_sqlite_version_1_database_gains_authors(tmp_path: Path) -> None:
    """A database written before attribution (schema 1) opens, keeps its rooms, and stores
    authors afterwards."""
    path = tmp_path / "old.db"
    update = _edits(1)[0]
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE rooms(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            last_seq INTEGER NOT NULL DEFAULT 0, log_count INTEGER NOT NULL DEFAULT 0,
            log_bytes INTEGER NOT NULL DEFAULT 0, snap_bytes INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE updates(room_id INTEGER NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,
            data BLOB NOT NULL, PRIMARY KEY (room_id, seq)) WITHOUT ROWID;
        CREATE TABLE snapshots(room_id INTEGER NOT NULL, seq INTEGER NOT NULL,
            created_at REAL NOT NULL, pinned INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL,
            PRIMARY KEY (room_id, seq));
        CREATE TABLE versions(id INTEGER PRIMARY KEY AUTOINCREMENT, room_id INTEGER NOT NULL,
            seq INTEGER NOT NULL, created_at REAL NOT NULL, label TEXT NOT NULL,
            contributors TEXT NOT NULL);
        PRAGMA user_version = 1;
        """
    )
    conn.execute("INSERT INTO rooms VALUES (1, 'old', 1, 1, ?, 0, 5.0, 5.0)", (len(update),))
    conn.execute("INSERT INTO updates VALUES (1, 1, 5.0, ?)", (update,))
    conn.commit()
    conn.close()

    async with SQLiteStore(path) as store:
        log = await store.load_log("old")
        assert log.entries == [(1, 5.0, update)]
        assert await store.list_authors("old") == []
        assert await store.add_authors("old", [Author(11, "Ada", "", 5.0)]) == 1
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT name FROM authors").fetchall() == [("Ada",)]
    finally:
        conn.close()
