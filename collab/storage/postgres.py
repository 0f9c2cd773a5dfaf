"""The shared store: PostgreSQL (psycopg 3, async), several replica processes, one owner per room.

Ownership uses **leases** in a table, not session advisory locks: a lease row
``room_leases(room, owner, token, expires_at)`` is taken when free or expired
(``expires_at`` uses the database clock, so replica clocks do not matter), renewed in the
background every ``lease_renew_interval`` seconds and expires ``lease_ttl`` seconds after the
last renewal. A standby calling :meth:`PostgresStore.acquire_room` gets the room within
``lease_ttl`` of its owner's death. Every takeover increments ``token``; each commit locks the
lease row (``FOR SHARE``) and checks the token, so a replica that lost its lease (paused,
partitioned) can never write after the new owner started: its queued updates are dropped and
counted (``dropped_not_owner``) — the new owner gets them from the live peers' sync.
Leases survive connection drops and work through any pooler, unlike advisory locks.

Example:
    >>> from collab.storage import PostgresStore
    >>> async def demo(update: bytes) -> None:  # doctest: +SKIP
    ...     async with PostgresStore("postgresql://collab@db:5432/collab") as store:
    ...         if await store.acquire_room("notes", "replica-a"):
    ...             store.append("notes", update)
    ...             await store.flush()
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.abc
import psycopg
from psycopg.rows import TupleRow

from collab.errors import NotFoundError, StorageError
from collab.storage._engine import BufferedStore, Pending
from collab.storage.base import (
    Author,
    RoomInfo,
    StoredDoc,
    StoreOptions,
    TimedLog,
    Version,
    check_room,
    read_end,
)
from collab.types import RoomName

__all__ = ["PostgresStore", "map_postgres_error"]

log = logging.getLogger("collab.storage.postgres")
T = TypeVar("T")
Conn = psycopg.AsyncConnection[TupleRow]

_SCHEMA_LOCK = 0x636F6C6C6162  # "collab": serialises schema creation across replicas
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS rooms(
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        last_seq BIGINT NOT NULL DEFAULT 0,
        log_count BIGINT NOT NULL DEFAULT 0,
        log_bytes BIGINT NOT NULL DEFAULT 0,
        snap_bytes BIGINT NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS updates(
        room_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (room_id, seq))""",
    """CREATE TABLE IF NOT EXISTS snapshots(
        room_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        pinned BOOLEAN NOT NULL DEFAULT false,
        data BYTEA NOT NULL,
        PRIMARY KEY (room_id, seq))""",
    """CREATE TABLE IF NOT EXISTS versions(
        id BIGSERIAL PRIMARY KEY,
        room_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        label TEXT NOT NULL,
        contributors JSONB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS versions_room_seq ON versions(room_id, seq)",
    # attribution (added later: existing databases gain it at open; keyed by room name, as
    # authors may arrive before the room's first update)
    """CREATE TABLE IF NOT EXISTS authors(
        room TEXT NOT NULL,
        client BIGINT NOT NULL,
        name TEXT NOT NULL,
        color TEXT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (room, client))""",
    """CREATE TABLE IF NOT EXISTS room_leases(
        room TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL)""",
]

_UPSERT_ROOM = (
    "INSERT INTO rooms(name, created_at, updated_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at RETURNING id"
)
_RECOUNT = (
    "UPDATE rooms SET last_seq = greatest(last_seq, %(last)s), "
    "log_count = (SELECT count(*) FROM updates WHERE room_id = %(rid)s), "
    "log_bytes = (SELECT coalesce(sum(length(data)), 0) FROM updates WHERE room_id = %(rid)s), "
    "snap_bytes = (SELECT coalesce(sum(length(data)), 0) FROM snapshots "
    "WHERE room_id = %(rid)s), updated_at = %(now)s WHERE id = %(rid)s"
)


def map_postgres_error(exc: psycopg.Error) -> StorageError:
    """Translate a psycopg exception into a coded :class:`StorageError`.

    Example:
        >>> map_postgres_error(psycopg.errors.DiskFull("no space")).code
        'disk-full'
    """
    state = exc.sqlstate or ""
    if state == "53100":
        code = "disk-full"
    elif state.startswith("53"):
        code = "no-memory"
    elif state == "25006":
        code = "read-only"
    elif state in ("40P01", "55P03", "40001") or state.startswith("55"):
        code = "locked"
    elif state in ("XX001", "XX002"):
        code = "corrupt"
    elif state.startswith("28"):
        code = "auth"  # invalid authorization / password
    elif state.startswith(("08", "57")) or not state:
        code = "unavailable"
    else:
        code = "postgres"
    return StorageError(code, f"postgresql [{state or 'no sqlstate'}]: {exc}")


class PostgresStore(BufferedStore):
    """Append-only log + snapshots in PostgreSQL, shared by several replicas (room leases).

    Args:
        dsn: a libpq URL or conninfo string (``postgresql://user@host:port/db``).
        options: knobs; ``lease_ttl`` / ``lease_renew_interval`` set the takeover time.

    Example:
        >>> store = PostgresStore("postgresql://collab@127.0.0.1:5432/collab")  # doctest: +SKIP
    """

    def __init__(self, dsn: str, options: StoreOptions | None = None) -> None:
        super().__init__(options)
        self.dsn = dsn
        if self.options.lease_ttl <= 0:
            raise ValueError("lease_ttl must be > 0")
        self._write_conn: Conn | None = None
        self._read_conn: Conn | None = None
        self._write_lock: anyio.Lock | None = None
        self._read_lock: anyio.Lock | None = None
        self._leases: dict[RoomName, tuple[str, int]] = {}
        self._lost: dict[RoomName, str] = {}
        self._stopping = False

    # ------------------------------------------------------------------ plumbing

    async def _connect(self) -> Conn:
        try:
            return await psycopg.AsyncConnection.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, int(self.options.connect_timeout)),
            )
        except psycopg.Error as exc:
            text = str(exc)
            code = (
                "auth"
                if "password authentication failed" in text or "no password supplied" in text
                else map_postgres_error(exc).code
            )
            raise StorageError(code, f"cannot connect to postgresql: {exc}") from exc

    async def _use(self, which: str, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn`` on the write or read connection, reconnecting if it broke.

        Every ``fn`` is one transaction (or one idempotent statement), so when the connection
        turns out to be broken (server restart, killed backend) it is re-run once on a fresh
        connection; a second failure is reported.
        """
        lock = self._write_lock if which == "write" else self._read_lock
        assert lock is not None  # set in _db_open
        async with lock:
            for attempt in (1, 2):
                conn = self._write_conn if which == "write" else self._read_conn
                if conn is None or conn.closed or conn.broken:
                    if conn is not None:
                        await conn.close()
                    conn = await self._connect()
                    if which == "write":
                        self._write_conn = conn
                    else:
                        self._read_conn = conn
                try:
                    return await fn(conn)
                except (psycopg.ProgrammingError, psycopg.IntegrityError, psycopg.DataError):
                    raise  # our bug, not a storage condition
                except psycopg.Error as exc:
                    if attempt == 1 and (conn.broken or conn.closed):
                        self.counters.count_error("reconnect")
                        log.warning("postgresql connection lost (%s); reconnecting", exc)
                        continue
                    raise map_postgres_error(exc) from exc
            raise AssertionError("unreachable")

    # ------------------------------------------------------------------ lifecycle

    async def _db_open(self) -> None:
        self._write_lock = anyio.Lock()
        self._read_lock = anyio.Lock()

        async def schema(conn: Conn) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for stmt in _SCHEMA:
                    await conn.execute(stmt)

        await self._use("write", schema)

    async def _db_close(self) -> None:
        for conn in (self._write_conn, self._read_conn):
            if conn is not None:
                await conn.close()
        self._write_conn = self._read_conn = None

    async def _after_start(self, tg: anyio.abc.TaskGroup) -> None:
        self._stopping = False
        tg.start_soon(self._renew_loop)

    async def _before_stop(self) -> None:
        self._stopping = True
        for room in list(self._leases):
            try:
                await self._release_lease(room)
            except StorageError as exc:
                # the database is unreachable: do not wait once per room, the leases expire
                log.warning("could not release leases (%s); they expire in %s s", exc,
                            self.options.lease_ttl)  # fmt: skip
                break

    # ------------------------------------------------------------------ leases

    def held_rooms(self) -> set[RoomName]:
        """Rooms whose lease this store holds (as far as the last renewal knows)."""
        return set(self._leases)

    @property
    def lost_rooms(self) -> dict[RoomName, str]:
        """Rooms whose lease was lost since start, with the reason (read-only view)."""
        return dict(self._lost)

    def _check_owned(self, room: RoomName) -> None:
        if room not in self._leases:
            raise StorageError(
                "not-owner",
                f"this replica does not hold room {room!r}: call acquire_room() first "
                f"({self._lost.get(room, 'never acquired')})",
            )

    async def acquire_room(self, room: RoomName, owner_id: str) -> bool:
        """Take the room's lease if it is free, expired, or already ours (same ``owner_id``).

        On success the room's log position is read from the database, so ``append``
        continues after the last durable update of the previous owner.

        Returns:
            ``True`` if this store now owns the room; ``False`` if another owner's lease is
            still valid.

        Raises:
            StorageError: the database failed.

        Example:
            >>> if await store.acquire_room("notes", "replica-b"):  # doctest: +SKIP
            ...     stored = await store.load("notes", missing_ok=True)
        """
        check_room(room)
        if not owner_id:
            raise ValueError("owner_id must be a non-empty string")
        self._require_running()
        held = self._leases.get(room)
        if held is not None and held[0] == owner_id:
            return True
        if held is not None:
            return False

        async def run(conn: Conn) -> tuple[int, int] | None:
            async with conn.transaction():
                row = await (
                    await conn.execute(
                        "INSERT INTO room_leases AS l (room, owner, token, expires_at) "
                        "VALUES (%s, %s, 1, now() + make_interval(secs => %s)) "
                        "ON CONFLICT (room) DO UPDATE SET owner = excluded.owner, "
                        "token = l.token + 1, expires_at = excluded.expires_at "
                        "WHERE l.expires_at < now() OR l.owner = excluded.owner "
                        "RETURNING token",
                        (room, owner_id, self.options.lease_ttl),
                    )
                ).fetchone()
                if row is None:
                    return None
                seq = await (
                    await conn.execute("SELECT last_seq FROM rooms WHERE name = %s", (room,))
                ).fetchone()
                return int(row[0]), int(seq[0]) if seq else 0

        got = await self._use("read", run)
        if got is None:
            return False
        token, last_seq = got
        self._drop_pending(room)
        self._leases[room] = (owner_id, token)
        self._owners[room] = owner_id
        self._last_seq[room] = last_seq
        self._lost.pop(room, None)
        log.info("acquired room %r (token %d, last seq %d)", room, token, last_seq)
        return True

    async def release_room(self, room: RoomName) -> None:
        """Commit the room's queued updates, then give its lease up (a standby may take it).

        Raises:
            StorageError: the queued updates could not be committed (the lease is kept).
        """
        check_room(room)
        self._require_running()
        if room not in self._leases:
            return
        await self.flush()
        await self._release_lease(room)

    async def _release_lease(self, room: RoomName) -> None:
        owner, token = self._leases[room]
        await self._use(
            "read",
            lambda conn: conn.execute(
                "DELETE FROM room_leases WHERE room = %s AND owner = %s AND token = %s",
                (room, owner, token),
            ),
        )
        self._forget(room, "released")

    def _forget(self, room: RoomName, reason: str) -> None:
        self._leases.pop(room, None)
        self._owners.pop(room, None)
        self._last_seq.pop(room, None)
        self._lost[room] = reason

    def _drop_pending(self, room: RoomName) -> int:
        """Discard queued updates of ``room`` (its lease moved); returns how many."""
        kept: deque[Pending] = deque()
        dropped = 0
        for item in self._pending:
            if item.room == room:
                dropped += 1
                self._pending_bytes -= len(item.data)
            else:
                kept.append(item)
        if dropped:
            self._pending = kept
            self.counters.dropped_not_owner += dropped
            self._signal_progress()
        return dropped

    async def _renew_loop(self) -> None:
        interval = self.options.lease_renew_interval or self.options.lease_ttl / 3
        while True:
            await anyio.sleep(interval)
            if not self._leases or self._stopping:
                continue
            renewal_done = False
            held = dict(self._leases)
            try:
                # shielded: a renewal cut by close() would only make psycopg cancel the query
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(self.options.lease_ttl):
                        renewed = await self._use("read", partial(self._renew, held=held))
                        renewal_done = True
                    if not renewal_done:
                        continue
            except StorageError as exc:
                self.counters.count_error(exc.code)
                log.warning("lease renewal failed: %s", exc)
                continue
            for room, (owner, token) in held.items():
                if room not in renewed and self._leases.get(room) == (owner, token):
                    self._lease_lost(room, "lease taken over by another replica")

    async def _renew(self, conn: Conn, *, held: dict[RoomName, tuple[str, int]]) -> set[str]:
        cur = await conn.execute(
            "UPDATE room_leases AS l SET expires_at = now() + make_interval(secs => %s) "
            "FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS h(room, owner, token) "
            "WHERE l.room = h.room AND l.owner = h.owner AND l.token = h.token "
            "RETURNING l.room",
            (
                self.options.lease_ttl,
                list(held),
                [o for o, _ in held.values()],
                [t for _, t in held.values()],
            ),
        )
        return {str(r[0]) for r in await cur.fetchall()}

    def _lease_lost(self, room: RoomName, reason: str) -> None:
        self.counters.count_error("lease-lost")
        log.warning("lost room %r: %s", room, reason)
        self._forget(room, reason)

    async def _fence(self, conn: Conn, rooms: list[RoomName]) -> set[RoomName]:
        """Lock the lease rows of ``rooms`` (FOR SHARE); return the rooms still ours."""
        cur = await conn.execute(
            "SELECT room, owner, token FROM room_leases WHERE room = ANY(%s) FOR SHARE",
            (rooms,),
        )
        ok: set[RoomName] = set()
        for room, owner, token in await cur.fetchall():
            if self._leases.get(room) == (owner, token):
                ok.add(room)
        return ok

    # ------------------------------------------------------------------ writes

    async def _db_commit(self, batch: list[Pending]) -> int:
        by_room: dict[RoomName, list[Pending]] = {}
        for item in batch:
            by_room.setdefault(item.room, []).append(item)

        async def run(conn: Conn) -> set[RoomName]:
            now = time.time()
            async with conn.transaction():
                ours = await self._fence(conn, list(by_room))
                for room, items in by_room.items():
                    if room not in ours:
                        continue
                    rid = await self._room_id(conn, room, now)
                    await conn.execute(
                        "WITH ins AS (INSERT INTO updates(room_id, seq, ts, data) "
                        "SELECT %(rid)s, s, t, d FROM unnest(%(s)s::bigint[], "
                        "%(t)s::float8[], %(d)s::bytea[]) AS u(s, t, d) "
                        "ON CONFLICT DO NOTHING RETURNING length(data) AS n) "
                        "UPDATE rooms SET last_seq = greatest(last_seq, %(last)s), "
                        "log_count = log_count + (SELECT count(*) FROM ins), "
                        "log_bytes = log_bytes + (SELECT coalesce(sum(n), 0) FROM ins), "
                        "updated_at = %(now)s WHERE id = %(rid)s",
                        {
                            "rid": rid,
                            "s": [p.seq for p in items],
                            "t": [p.ts for p in items],
                            "d": [p.data for p in items],
                            "last": items[-1].seq,
                            "now": now,
                        },
                        binary=True,  # bytea[] in binary: no hex escaping of every update
                    )
            return ours

        ours = await self._use("write", run)
        refused = 0
        for room, items in by_room.items():
            if room not in ours:
                refused += len(items)
                if room in self._leases:
                    self._lease_lost(room, "lease taken over before commit")
        return refused

    @staticmethod
    async def _room_id(conn: Conn, room: RoomName, now: float) -> int:
        row = await (await conn.execute(_UPSERT_ROOM, (room, now, now))).fetchone()
        assert row is not None  # INSERT .. RETURNING always yields a row
        return int(row[0])

    async def _fenced(self, room: RoomName, body: Callable[[Conn, int, float], Awaitable[T]]) -> T:
        async def run(conn: Conn) -> T:
            now = time.time()
            async with conn.transaction():
                if room not in await self._fence(conn, [room]):
                    raise StorageError("not-owner", f"lease of {room!r} moved")
                rid = await self._room_id(conn, room, now)
                return await body(conn, rid, now)

        try:
            return await self._use("write", run)
        except StorageError as exc:
            if exc.code == "not-owner" and room in self._leases:
                self._lease_lost(room, "lease taken over")
            raise

    async def _db_compact(self, room: RoomName, snapshot: bytes, upto_seq: int) -> None:
        async def body(conn: Conn, rid: int, now: float) -> None:
            await conn.execute(
                "INSERT INTO snapshots(room_id, seq, created_at, pinned, data) "
                "VALUES (%s, %s, %s, false, %s) ON CONFLICT (room_id, seq) DO UPDATE SET "
                "data = excluded.data, created_at = excluded.created_at",
                (rid, upto_seq, now, snapshot),
            )
            await conn.execute(
                "DELETE FROM snapshots WHERE room_id = %s AND seq < %s AND NOT pinned",
                (rid, upto_seq),
            )
            if not self.options.retain_log:
                await conn.execute(
                    "DELETE FROM updates WHERE room_id = %s AND seq <= %s", (rid, upto_seq)
                )
            await conn.execute(_RECOUNT, {"last": upto_seq, "rid": rid, "now": now})

        await self._fenced(room, body)

    async def _db_delete_room(self, room: RoomName) -> bool:
        async def body(conn: Conn, rid: int, now: float) -> bool:
            row = await (
                await conn.execute("SELECT last_seq FROM rooms WHERE id = %s", (rid,))
            ).fetchone()
            for table in ("updates", "snapshots", "versions"):
                await conn.execute(f"DELETE FROM {table} WHERE room_id = %s", (rid,))
            await conn.execute("DELETE FROM rooms WHERE id = %s", (rid,))
            await conn.execute("DELETE FROM authors WHERE room = %s", (room,))
            return row is not None and int(row[0]) > 0

        return await self._fenced(room, body)

    async def _db_add_version(
        self,
        room: RoomName,
        seq: int,
        label: str,
        contributors: list[Any],
        snapshot: bytes,
        created_at: float,
    ) -> Version:
        async def body(conn: Conn, rid: int, now: float) -> int:
            await conn.execute(
                "INSERT INTO snapshots(room_id, seq, created_at, pinned, data) "
                "VALUES (%s, %s, %s, true, %s) "
                "ON CONFLICT (room_id, seq) DO UPDATE SET pinned = true",
                (rid, seq, created_at, snapshot),
            )
            row = await (
                await conn.execute(
                    "INSERT INTO versions(room_id, seq, created_at, label, contributors) "
                    "VALUES (%s, %s, %s, %s, %s::jsonb) RETURNING id",
                    (rid, seq, created_at, label, json.dumps(contributors)),
                )
            ).fetchone()
            await conn.execute(_RECOUNT, {"last": 0, "rid": rid, "now": now})
            assert row is not None  # INSERT .. RETURNING always yields a row
            return int(row[0])

        vid = await self._fenced(room, body)
        return Version(vid, room, seq, created_at, label, contributors)

    # ------------------------------------------------------------------ reads

    async def _db_load(self, room: RoomName, upto: int | None) -> StoredDoc | None:
        async def run(conn: Conn) -> StoredDoc | None:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                found = await _room_end(conn, room, upto)
                if found is None:
                    return None
                rid, end = found
                snap = await (
                    await conn.execute(
                        "SELECT seq, data FROM snapshots WHERE room_id = %s AND seq <= %s "
                        "ORDER BY seq DESC LIMIT 1",
                        (rid, end),
                    )
                ).fetchone()
                base, data = (int(snap[0]), bytes(snap[1])) if snap else (0, None)
                rows = await (
                    await conn.execute(
                        "SELECT data FROM updates WHERE room_id = %s AND seq > %s "
                        "AND seq <= %s ORDER BY seq",
                        (rid, base, end),
                    )
                ).fetchall()
            if len(rows) != end - base:
                raise NotFoundError("compacted", f"log of {room!r} before {end} was compacted")
            return StoredDoc(room, data, base, [bytes(r[0]) for r in rows], end)

        return await self._use("read", run)

    async def _db_list_rooms(self) -> list[RoomInfo]:
        async def run(conn: Conn) -> list[RoomInfo]:
            cur = await conn.execute(
                "SELECT name, log_bytes + snap_bytes, log_count, last_seq, updated_at "
                "FROM rooms ORDER BY name"
            )
            return [
                RoomInfo(str(n), int(b), int(c), int(s), float(u))
                for n, b, c, s, u in await cur.fetchall()
            ]

        return await self._use("read", run)

    async def _db_ping(self) -> None:
        async def select(conn: Conn) -> None:
            await conn.execute("SELECT 1")

        await self._use("read", select)

    async def _db_drop_versions(self, room: RoomName, ids: list[int]) -> None:
        async def body(conn: Conn, rid: int, now: float) -> None:
            await conn.execute(
                "DELETE FROM versions WHERE room_id = %s AND id = ANY(%s)", (rid, list(ids))
            )
            # snapshots no version pins any more: unpinned; deleted unless the latest
            await conn.execute(
                "UPDATE snapshots SET pinned = false WHERE room_id = %(rid)s AND pinned "
                "AND seq NOT IN (SELECT seq FROM versions WHERE room_id = %(rid)s)",
                {"rid": rid},
            )
            await conn.execute(
                "DELETE FROM snapshots WHERE room_id = %(rid)s AND NOT pinned AND seq < "
                "(SELECT max(seq) FROM snapshots WHERE room_id = %(rid)s)",
                {"rid": rid},
            )
            await conn.execute(_RECOUNT, {"last": 0, "rid": rid, "now": now})

        await self._fenced(room, body)

    async def _db_list_versions(self, room: RoomName) -> list[Version]:
        async def run(conn: Conn) -> list[Version]:
            cur = await conn.execute(
                "SELECT v.id, v.seq, v.created_at, v.label, v.contributors FROM versions v "
                "JOIN rooms r ON r.id = v.room_id WHERE r.name = %s ORDER BY v.seq, v.id",
                (room,),
            )
            return [
                Version(int(i), room, int(s), float(c), str(lb), list(p))
                for i, s, c, lb, p in await cur.fetchall()
            ]

        return await self._use("read", run)

    async def _db_load_log(
        self, room: RoomName, upto: int | None, max_updates: int, start_by: int | None
    ) -> TimedLog | None:
        async def run(conn: Conn) -> TimedLog | None:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                found = await _room_end(conn, room, upto)
                if found is None:
                    return None
                rid, end = found
                base, data, at = 0, None, None
                whole = False
                if end <= max_updates:
                    count = await (
                        await conn.execute(
                            "SELECT count(*) FROM updates WHERE room_id = %s AND seq <= %s",
                            (rid, end),
                        )
                    ).fetchone()
                    whole = count is not None and int(count[0]) == end
                if not whole:
                    snap = await (
                        await conn.execute(
                            "SELECT seq, data, created_at FROM snapshots WHERE room_id = %s "
                            "AND seq <= %s ORDER BY seq DESC LIMIT 1",
                            (rid, end if start_by is None else min(end, start_by)),
                        )
                    ).fetchone()
                    if snap:
                        base, data, at = int(snap[0]), bytes(snap[1]), float(snap[2])
                rows = await (
                    await conn.execute(
                        "SELECT seq, ts, data FROM updates WHERE room_id = %s AND seq > %s "
                        "AND seq <= %s ORDER BY seq",
                        (rid, base, end),
                    )
                ).fetchall()
            if len(rows) != end - base:
                raise NotFoundError("compacted", f"log of {room!r} before {end} was compacted")
            entries = [(int(s), float(t), bytes(d)) for s, t, d in rows]
            return TimedLog(room, data, base, at, entries, end)

        return await self._use("read", run)

    async def _db_add_authors(self, room: RoomName, authors: list[Author], cap: int) -> int:
        async def run(conn: Conn) -> int:
            async with conn.transaction():
                # one writer per room at a time, so the cap holds across replicas
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (room,))
                rows = await (
                    await conn.execute("SELECT client, name FROM authors WHERE room = %s", (room,))
                ).fetchall()
                known = {int(c): str(n) for c, n in rows}
                room_left = max(0, cap - len(known))
                changed = 0
                for a in authors:
                    if a.client in known:
                        if known[a.client] or not a.name:
                            continue  # first writer wins; only a missing name is filled in
                        await conn.execute(
                            "UPDATE authors SET name = %s, color = %s "
                            "WHERE room = %s AND client = %s",
                            (a.name, a.color, room, a.client),
                        )
                    elif room_left > 0:
                        room_left -= 1
                        await conn.execute(
                            "INSERT INTO authors(room, client, name, color, first_seen) "
                            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            (room, a.client, a.name, a.color, a.first_seen),
                        )
                    else:
                        continue
                    known[a.client] = a.name
                    changed += 1
                return changed

        return await self._use("write", run)

    async def _db_list_authors(self, room: RoomName) -> list[Author]:
        async def run(conn: Conn) -> list[Author]:
            cur = await conn.execute(
                "SELECT client, name, color, first_seen FROM authors WHERE room = %s "
                "ORDER BY first_seen, client",
                (room,),
            )
            return [Author(int(c), str(n), str(k), float(f)) for c, n, k, f in await cur.fetchall()]

        return await self._use("read", run)


async def _room_end(conn: Conn, room: RoomName, upto: int | None) -> tuple[int, int] | None:
    """``(room id, last seq to read)`` for a read up to ``upto`` (default: the end), or
    ``None`` for an unknown room.

    Raises:
        NotFoundError: ``seq-not-found`` when ``upto`` is past the room's log.
    """
    row = await (
        await conn.execute("SELECT id, last_seq FROM rooms WHERE name = %s", (room,))
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), read_end(room, int(row[1]), upto)
