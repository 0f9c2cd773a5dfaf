"""The embedded default store: one SQLite file, WAL, group commit, worker-thread I/O.

Schema (``PRAGMA user_version = 2``; a version-1 file gains ``authors`` when opened)::

    rooms(id, name UNIQUE, last_seq, log_count, log_bytes, snap_bytes, created_at, updated_at)
    updates(room_id, seq, ts, data)            -- the append-only log, PK (room_id, seq)
    snapshots(room_id, seq, created_at, pinned, data)   -- pinned = a version point
    versions(id, room_id, seq, created_at, label, contributors JSON)
    authors(room, client, name, color, first_seen)   -- attribution, PK (room, client)

All I/O runs in a worker thread (``anyio.to_thread.run_sync``) on one connection guarded by a
lock, so the event loop never blocks. One store per file: ``<db>-lock`` is held with ``flock``
while the store is open (a second opener gets ``StorageError("locked")``).

SQLite failures become :class:`StorageError` with codes ``corrupt``, ``disk-full``,
``read-only``, ``locked``, ``io``, ``cant-open``, ``no-memory`` or ``sqlite``; they never
become "not found".

Example:
    >>> from collab.storage import SQLiteStore
    >>> async def demo(update: bytes) -> None:  # doctest: +SKIP
    ...     async with SQLiteStore("/var/lib/collab/archive.db") as store:
    ...         store.append("notes", update)
    ...         await store.flush()
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from collab.errors import NotFoundError, StorageError
from collab.storage._engine import BufferedStore, Pending
from collab.storage.base import (
    Author,
    RoomInfo,
    StoredDoc,
    StoreOptions,
    TimedLog,
    Version,
    read_end,
)
from collab.types import RoomName

__all__ = ["SQLiteStore", "map_sqlite_error"]

log = logging.getLogger("collab.storage.sqlite")
T = TypeVar("T")

SCHEMA_VERSION = 2
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS rooms(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        last_seq INTEGER NOT NULL DEFAULT 0,
        log_count INTEGER NOT NULL DEFAULT 0,
        log_bytes INTEGER NOT NULL DEFAULT 0,
        snap_bytes INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS updates(
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (room_id, seq)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS snapshots(
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        created_at REAL NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0,
        data BLOB NOT NULL,
        PRIMARY KEY (room_id, seq))""",
    """CREATE TABLE IF NOT EXISTS versions(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        created_at REAL NOT NULL,
        label TEXT NOT NULL,
        contributors TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS versions_room_seq ON versions(room_id, seq)",
    # version 2: attribution (keyed by room name: authors may arrive before the first update)
    """CREATE TABLE IF NOT EXISTS authors(
        room TEXT NOT NULL,
        client INTEGER NOT NULL,
        name TEXT NOT NULL,
        color TEXT NOT NULL,
        first_seen REAL NOT NULL,
        PRIMARY KEY (room, client)) WITHOUT ROWID""",
]

# SQLite primary result codes (sqlite3.h) → our StorageError codes.
_CODES = {
    5: "locked",  # SQLITE_BUSY
    6: "locked",  # SQLITE_LOCKED
    7: "no-memory",  # SQLITE_NOMEM
    8: "read-only",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "disk-full",  # SQLITE_FULL
    14: "cant-open",  # SQLITE_CANTOPEN
    26: "corrupt",  # SQLITE_NOTADB
}


def map_sqlite_error(exc: sqlite3.Error) -> StorageError:
    """Translate a ``sqlite3`` exception into a coded :class:`StorageError`.

    Example:
        >>> e = sqlite3.OperationalError("database or disk is full")
        >>> e.sqlite_errorcode = 13
        >>> map_sqlite_error(e).code
        'disk-full'
    """
    raw = getattr(exc, "sqlite_errorcode", None)
    code = _CODES.get(raw & 0xFF, "sqlite") if isinstance(raw, int) else "sqlite"
    if code == "io" and isinstance(raw, int) and raw == 4874:  # SQLITE_IOERR_SHORT_READ etc.
        code = "corrupt"
    if code == "sqlite" and "malformed" in str(exc):
        code = "corrupt"
    return StorageError(code, f"sqlite: {exc}")


class SQLiteStore(BufferedStore):
    """Append-only log + snapshots in one SQLite file (WAL, group commit).

    Args:
        path: the database file (created if missing; its directory must exist), or
            ``":memory:"``.
        options: knobs; ``options.synchronous`` picks ``NORMAL`` (default) or ``FULL``.

    Example:
        >>> store = SQLiteStore("/tmp/archive.db")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, options: StoreOptions | None = None) -> None:
        super().__init__(options)
        self.path = str(path)
        sync = self.options.synchronous.upper()
        if sync not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self._sync = sync
        self._conn: sqlite3.Connection | None = None
        self._lock: anyio.Lock | None = None
        self._room_ids: dict[RoomName, int] = {}
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._lock is not None and self._conn is not None  # set by _db_open
        conn = self._conn
        async with self._lock:
            return await anyio.to_thread.run_sync(self._guarded, fn, conn)

    @staticmethod
    def _guarded(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        try:
            return fn(conn)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            _rollback(conn)
            raise  # our bug, not a storage condition
        except sqlite3.Error as exc:
            _rollback(conn)
            raise map_sqlite_error(exc) from exc
        except BaseException:
            _rollback(conn)
            raise

    # ------------------------------------------------------------------ lifecycle

    async def _db_open(self) -> None:
        self._lock = anyio.Lock()
        self._lock_fd = await anyio.to_thread.run_sync(self._lock_file)
        try:
            conn, room_seqs = await anyio.to_thread.run_sync(self._open_sync)
        except BaseException:
            self._unlock_file()
            raise
        self._conn = conn
        self._room_ids = {name: rid for name, (rid, _) in room_seqs.items()}
        self._last_seq = {name: seq for name, (_, seq) in room_seqs.items()}

    def _lock_file(self) -> int | None:
        """Hold ``<db>-lock`` exclusively: one store (process) per database file.

        Log positions are assigned in memory, so two writers on one file would collide.
        The kernel drops the lock when the process dies, SIGKILL included.
        """
        if self.path == ":memory:":
            return None
        try:
            fd = os.open(self.path + "-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _map_os_error(exc, "cannot create the lock file") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StorageError(
                "locked", f"{self.path} is in use by another store (process or object)"
            ) from exc
        except OSError as exc:
            os.close(fd)
            raise _map_os_error(exc, "cannot lock") from exc
        return fd

    def _unlock_file(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def _open_sync(self) -> tuple[sqlite3.Connection, dict[str, tuple[int, int]]]:
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.options.busy_timeout,
            )
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc) from exc
        try:
            return conn, self._init_sync(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise map_sqlite_error(exc) from exc
        except BaseException:
            conn.close()
            raise

    def _init_sync(self, conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
        conn.execute(f"PRAGMA busy_timeout={int(self.options.busy_timeout * 1000)}")
        if self.options.check_on_open and self.path != ":memory:":
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                detail = "; ".join(str(r[0]) for r in rows[:3])
                raise StorageError("corrupt", f"sqlite quick_check failed: {detail}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if self.path != ":memory:" and (mode is None or str(mode[0]).lower() != "wal"):
            log.warning("could not switch %s to WAL (journal_mode=%s)", self.path, mode)
        conn.execute(f"PRAGMA synchronous={self._sync}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError("schema", f"database schema {version} is newer than this code")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        rows = conn.execute("SELECT name, id, last_seq FROM rooms").fetchall()
        return {name: (rid, seq) for name, rid, seq in rows}

    async def _db_close(self) -> None:
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await anyio.to_thread.run_sync(conn.close)
        except sqlite3.Error as exc:
            self.counters.count_error(map_sqlite_error(exc).code)
            log.warning("closing %s failed: %s", self.path, exc)
        finally:
            self._unlock_file()

    # ------------------------------------------------------------------ writes

    async def _db_commit(self, batch: list[Pending]) -> int:
        new_ids = await self._run(lambda conn: self._commit_sync(conn, batch))
        self._room_ids.update(new_ids)
        return 0

    def _room_id(self, conn: sqlite3.Connection, room: RoomName, now: float) -> int:
        rid = self._room_ids.get(room)
        if rid is not None:
            return rid
        row = conn.execute(
            "INSERT INTO rooms(name, created_at, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
            (room, now, now),
        ).fetchone()
        return int(row[0])

    def _commit_sync(self, conn: sqlite3.Connection, batch: list[Pending]) -> dict[str, int]:
        by_room: dict[RoomName, list[Pending]] = {}
        for item in batch:
            by_room.setdefault(item.room, []).append(item)
        now = time.time()
        new_ids: dict[str, int] = {}
        conn.execute("BEGIN IMMEDIATE")
        for room, items in by_room.items():
            rid = self._room_id(conn, room, now)
            if room not in self._room_ids:
                new_ids[room] = rid
            cur = conn.executemany(
                "INSERT OR IGNORE INTO updates(room_id, seq, ts, data) VALUES (?, ?, ?, ?)",
                [(rid, p.seq, p.ts, p.data) for p in items],
            )
            if cur.rowcount == len(items):
                conn.execute(
                    "UPDATE rooms SET last_seq = max(last_seq, ?), log_count = log_count + ?, "
                    "log_bytes = log_bytes + ?, updated_at = ? WHERE id = ?",
                    (items[-1].seq, len(items), sum(len(p.data) for p in items), now, rid),
                )
            else:  # a retry of a commit that had in fact succeeded: recount exactly
                self._recount(conn, rid, now, last_seq=items[-1].seq)
        conn.execute("COMMIT")
        return new_ids

    @staticmethod
    def _recount(conn: sqlite3.Connection, rid: int, now: float, last_seq: int = 0) -> None:
        conn.execute(
            "UPDATE rooms SET last_seq = max(last_seq, :last), "
            "log_count = (SELECT count(*) FROM updates WHERE room_id = :rid), "
            "log_bytes = (SELECT coalesce(sum(length(data)), 0) FROM updates "
            "WHERE room_id = :rid), "
            "snap_bytes = (SELECT coalesce(sum(length(data)), 0) FROM snapshots "
            "WHERE room_id = :rid), "
            "updated_at = :now WHERE id = :rid",
            {"last": last_seq, "rid": rid, "now": now},
        )

    async def _db_compact(self, room: RoomName, snapshot: bytes, upto_seq: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            rid = self._room_id(conn, room, now)
            conn.execute(
                "INSERT INTO snapshots(room_id, seq, created_at, pinned, data) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT(room_id, seq) DO UPDATE SET "
                "data = excluded.data, created_at = excluded.created_at",
                (rid, upto_seq, now, snapshot),
            )
            conn.execute(
                "DELETE FROM snapshots WHERE room_id = ? AND seq < ? AND pinned = 0",
                (rid, upto_seq),
            )
            if not self.options.retain_log:
                conn.execute("DELETE FROM updates WHERE room_id = ? AND seq <= ?", (rid, upto_seq))
            self._recount(conn, rid, now, upto_seq)
            conn.execute("COMMIT")

        await self._run(run)

    async def _db_delete_room(self, room: RoomName) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT id FROM rooms WHERE name = ?", (room,)).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return False
            rid = row[0]
            for table in ("updates", "snapshots", "versions"):
                conn.execute(f"DELETE FROM {table} WHERE room_id = ?", (rid,))
            conn.execute("DELETE FROM rooms WHERE id = ?", (rid,))
            conn.execute("DELETE FROM authors WHERE room = ?", (room,))
            conn.execute("COMMIT")
            return True

        existed = await self._run(run)
        self._room_ids.pop(room, None)
        return existed

    async def _db_add_version(
        self,
        room: RoomName,
        seq: int,
        label: str,
        contributors: list[Any],
        snapshot: bytes,
        created_at: float,
    ) -> Version:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            rid = self._room_id(conn, room, created_at)
            conn.execute(
                "INSERT INTO snapshots(room_id, seq, created_at, pinned, data) "
                "VALUES (?, ?, ?, 1, ?) ON CONFLICT(room_id, seq) DO UPDATE SET pinned = 1",
                (rid, seq, created_at, snapshot),
            )
            vid = conn.execute(
                "INSERT INTO versions(room_id, seq, created_at, label, contributors) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (rid, seq, created_at, label, json.dumps(contributors)),
            ).fetchone()[0]
            self._recount(conn, rid, created_at)
            conn.execute("COMMIT")
            return int(vid)

        vid = await self._run(run)
        return Version(vid, room, seq, created_at, label, contributors)

    async def _db_ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _db_drop_versions(self, room: RoomName, ids: list[int]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT id FROM rooms WHERE name = ?", (room,)).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return
            rid = row[0]
            conn.executemany(
                "DELETE FROM versions WHERE room_id = ? AND id = ?", [(rid, i) for i in ids]
            )
            # snapshots no version pins any more: unpinned; deleted unless the latest (the base
            # every load starts from)
            conn.execute(
                "UPDATE snapshots SET pinned = 0 WHERE room_id = ? AND pinned = 1 AND seq NOT IN "
                "(SELECT seq FROM versions WHERE room_id = ?)",
                (rid, rid),
            )
            conn.execute(
                "DELETE FROM snapshots WHERE room_id = ? AND pinned = 0 AND seq < "
                "(SELECT max(seq) FROM snapshots WHERE room_id = ?)",
                (rid, rid),
            )
            self._recount(conn, rid, time.time())
            conn.execute("COMMIT")

        await self._run(run)

    # ------------------------------------------------------------------ reads

    async def _db_load(self, room: RoomName, upto: int | None) -> StoredDoc | None:
        def run(conn: sqlite3.Connection) -> StoredDoc | None:
            conn.execute("BEGIN")
            try:
                found = _room_end(conn, room, upto)
                if found is None:
                    return None
                rid, end = found
                snap = conn.execute(
                    "SELECT seq, data FROM snapshots WHERE room_id = ? AND seq <= ? "
                    "ORDER BY seq DESC LIMIT 1",
                    (rid, end),
                ).fetchone()
                base, data = (int(snap[0]), bytes(snap[1])) if snap else (0, None)
                rows = conn.execute(
                    "SELECT data FROM updates WHERE room_id = ? AND seq > ? AND seq <= ? "
                    "ORDER BY seq",
                    (rid, base, end),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            if len(rows) != end - base:
                raise NotFoundError("compacted", f"log of {room!r} before {end} was compacted")
            return StoredDoc(room, data, base, [bytes(r[0]) for r in rows], end)

        return await self._run(run)

    async def _db_list_rooms(self) -> list[RoomInfo]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT name, log_bytes + snap_bytes, log_count, last_seq, updated_at "
                "FROM rooms ORDER BY name"
            ).fetchall()
        )
        return [RoomInfo(str(n), int(b), int(c), int(s), float(u)) for n, b, c, s, u in rows]

    async def _db_list_versions(self, room: RoomName) -> list[Version]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT v.id, v.seq, v.created_at, v.label, v.contributors FROM versions v "
                "JOIN rooms r ON r.id = v.room_id WHERE r.name = ? ORDER BY v.seq, v.id",
                (room,),
            ).fetchall()
        )
        return [
            Version(int(i), room, int(s), float(c), str(lb), json.loads(p))
            for i, s, c, lb, p in rows
        ]

    async def _db_load_log(
        self, room: RoomName, upto: int | None, max_updates: int, start_by: int | None
    ) -> TimedLog | None:
        def run(conn: sqlite3.Connection) -> TimedLog | None:
            conn.execute("BEGIN")
            try:
                found = _room_end(conn, room, upto)
                if found is None:
                    return None
                rid, end = found
                base, data, at = 0, None, None
                whole = end <= max_updates and (
                    conn.execute(
                        "SELECT count(*) FROM updates WHERE room_id = ? AND seq <= ?", (rid, end)
                    ).fetchone()[0]
                    == end
                )
                if not whole:
                    snap = conn.execute(
                        "SELECT seq, data, created_at FROM snapshots WHERE room_id = ? "
                        "AND seq <= ? ORDER BY seq DESC LIMIT 1",
                        (rid, end if start_by is None else min(end, start_by)),
                    ).fetchone()
                    if snap:
                        base, data, at = int(snap[0]), bytes(snap[1]), float(snap[2])
                rows = conn.execute(
                    "SELECT seq, ts, data FROM updates WHERE room_id = ? AND seq > ? "
                    "AND seq <= ? ORDER BY seq",
                    (rid, base, end),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            if len(rows) != end - base:
                raise NotFoundError("compacted", f"log of {room!r} before {end} was compacted")
            entries = [(int(s), float(t), bytes(d)) for s, t, d in rows]
            return TimedLog(room, data, base, at, entries, end)

        return await self._run(run)

    async def _db_add_authors(self, room: RoomName, authors: list[Author], cap: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            known = {
                int(c): str(n)
                for c, n in conn.execute(
                    "SELECT client, name FROM authors WHERE room = ?", (room,)
                ).fetchall()
            }
            room_left = max(0, cap - len(known))
            changed = 0
            for a in authors:
                if a.client in known:
                    if known[a.client] or not a.name:
                        continue  # first writer wins; only a missing name is filled in
                    conn.execute(
                        "UPDATE authors SET name = ?, color = ? WHERE room = ? AND client = ?",
                        (a.name, a.color, room, a.client),
                    )
                elif room_left > 0:
                    room_left -= 1
                    conn.execute(
                        "INSERT INTO authors(room, client, name, color, first_seen) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (room, a.client, a.name, a.color, a.first_seen),
                    )
                else:
                    continue
                known[a.client] = a.name
                changed += 1
            conn.execute("COMMIT")
            return changed

        return await self._run(run)

    async def _db_list_authors(self, room: RoomName) -> list[Author]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT client, name, color, first_seen FROM authors WHERE room = ? "
                "ORDER BY first_seen, client",
                (room,),
            ).fetchall()
        )
        return [Author(int(c), str(n), str(k), float(f)) for c, n, k, f in rows]

    async def integrity_check(self) -> list[str]:
        """Run ``PRAGMA integrity_check``; ``["ok"]`` when the file is sound."""
        rows = await self._run(lambda conn: conn.execute("PRAGMA integrity_check").fetchall())
        return [str(r[0]) for r in rows]


def _map_os_error(exc: OSError, what: str) -> StorageError:
    code = {
        errno.EROFS: "read-only",
        errno.ENOSPC: "disk-full",
        errno.EDQUOT: "disk-full",
        errno.EACCES: "read-only",
        errno.EPERM: "read-only",
    }.get(exc.errno or 0, "cant-open")
    return StorageError(code, f"{what}: {exc}")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("rollback failed: %s", exc)


def _room_end(conn: sqlite3.Connection, room: RoomName, upto: int | None) -> tuple[int, int] | None:
    """``(room id, last seq to read)`` for a read up to ``upto`` (default: the end), or
    ``None`` for an unknown room.

    Raises:
        NotFoundError: ``seq-not-found`` when ``upto`` is past the room's log.
    """
    row = conn.execute("SELECT id, last_seq FROM rooms WHERE name = ?", (room,)).fetchone()
    if row is None:
        return None
    return int(row[0]), read_end(room, int(row[1]), upto)
