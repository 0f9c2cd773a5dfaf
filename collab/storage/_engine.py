"""The part every backend shares: the in-memory queue, the group-commit writer, retries, flush.

A backend subclasses :class:`BufferedStore` and implements the ``_db_*`` coroutines; it never
sees the queue. ``append`` only enqueues (no I/O); one background task commits the queue in
groups (at most ``commit_interval`` seconds or ``max_batch`` updates per group). A failed commit
leaves the group queued and is retried with exponential back-off; ``flush`` makes the next
attempt happen now and raises ``StorageError`` if that attempt fails.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from contextlib import AsyncExitStack
from dataclasses import dataclass
from itertools import islice
from typing import Any

import anyio
import anyio.abc

from collab.errors import NotFoundError, StorageError
from collab.outage import Outage
from collab.storage.base import (
    MAX_AUTHOR_NAME,
    Author,
    RoomInfo,
    StoreCounters,
    StoredDoc,
    StoreOptions,
    TimedLog,
    Version,
    check_blob,
    check_room,
    rebuild,
    thin_versions,
)
from collab.types import RoomName

log = logging.getLogger("collab.storage")


@dataclass(slots=True)
class Pending:
    """One queued update."""

    index: int
    room: RoomName
    seq: int
    ts: float
    data: bytes


def snapshot_of(stored: StoredDoc) -> bytes:
    """Replay ``stored`` into a fresh document and encode its full state (runs in a thread)."""
    return rebuild(stored).get_update()


class BufferedStore(ABC):
    """Base class of the stores: queue + group-commit writer + leases + the public API."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        self.options = options if options is not None else StoreOptions()
        self.outage = Outage("storage", log)
        "Commit failures as operators read them (first, reminders, recovery); ``up``."
        o = self.options
        if o.max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if min(o.commit_interval, o.retry_initial, o.close_timeout, o.busy_timeout) < 0:
            raise ValueError("commit_interval, retry_initial, close_timeout, busy_timeout >= 0")
        if o.retry_max < 0 or o.max_pending_bytes < 1:
            raise ValueError("need retry_max >= 0 and max_pending_bytes >= 1")
        self.counters = StoreCounters()
        self._pending: deque[Pending] = deque()
        self._pending_bytes = 0
        self._last_seq: dict[RoomName, int] = {}
        self._owners: dict[RoomName, str] = {}
        self._enqueued = 0
        self._flushers = 0
        self._last_ok = True
        self._last_error: StorageError | None = None
        self._dead: BaseException | None = None
        self._running = False
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._work: anyio.Event | None = None
        self._kick: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self._commit_lock: anyio.Lock | None = None

    # ------------------------------------------------------------------ backend hooks

    @abstractmethod
    async def _db_open(self) -> None: ...

    @abstractmethod
    async def _db_close(self) -> None: ...

    @abstractmethod
    async def _db_commit(self, batch: list[Pending]) -> int:
        """Make ``batch`` durable in one transaction; return how many were refused (not owner)."""

    @abstractmethod
    async def _db_load(self, room: RoomName, upto: int | None) -> StoredDoc | None: ...

    @abstractmethod
    async def _db_compact(self, room: RoomName, snapshot: bytes, upto_seq: int) -> None: ...

    @abstractmethod
    async def _db_list_rooms(self) -> list[RoomInfo]: ...

    @abstractmethod
    async def _db_delete_room(self, room: RoomName) -> bool: ...

    @abstractmethod
    async def _db_add_version(
        self,
        room: RoomName,
        seq: int,
        label: str,
        contributors: list[Any],
        snapshot: bytes,
        created_at: float,
    ) -> Version: ...

    @abstractmethod
    async def _db_list_versions(self, room: RoomName) -> list[Version]: ...

    @abstractmethod
    async def _db_load_log(
        self, room: RoomName, upto: int | None, max_updates: int, start_by: int | None
    ) -> TimedLog | None: ...

    @abstractmethod
    async def _db_add_authors(self, room: RoomName, authors: list[Author], cap: int) -> int: ...

    @abstractmethod
    async def _db_list_authors(self, room: RoomName) -> list[Author]: ...

    async def _db_ping(self) -> None:  # noqa: B027 - backends override it when they can
        """Raise StorageError when the database does not answer (readiness probes)."""

    async def ping(self) -> None:
        """Check the database answers (for readiness probes).

        Raises:
            StorageError: it does not (or the writer is failing to commit).
        """
        self._require_running()
        await self._db_ping()

    @abstractmethod
    async def _db_drop_versions(self, room: RoomName, ids: list[int]) -> None:
        """Delete these versions; unpin (and delete, unless it is the latest) each snapshot
        no remaining version needs."""

    async def _after_start(self, tg: anyio.abc.TaskGroup) -> None:  # noqa: B027
        """Start backend background tasks (PostgreSQL: lease renewal)."""

    def _check_owned(self, room: RoomName) -> None:  # noqa: B027
        """Raise if this store may not write ``room`` (PostgreSQL: lease not held)."""

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> BufferedStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the database and start the group-commit writer.

        Call ``close()`` from the same task (or use ``async with store:``).

        Raises:
            StorageError: the database cannot be opened (``corrupt``, ``read-only``, ...).
            RuntimeError: the store was already started.
        """
        if self._running or self._stack is not None:
            raise RuntimeError("store already started; use one `async with store:` block")
        self._work = anyio.Event()
        self._kick = anyio.Event()
        self._progress = anyio.Event()
        self._commit_lock = anyio.Lock()
        self._dead = None
        await self._db_open()
        stack = AsyncExitStack()
        tg: anyio.abc.TaskGroup | None = None
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self._writer)
            await self._after_start(tg)
        except BaseException:
            if tg is not None:
                tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await stack.aclose()
                await self._db_close()
            raise
        self._stack = stack
        self._tg = tg
        self._running = True

    async def close(self) -> None:
        """Commit what is queued (retrying for up to ``close_timeout`` s), then stop.

        Raises:
            StorageError: ``unflushed`` if updates were still queued when time ran out
                (they are lost; live y-webrtc peers resend them to the next replica).
        """
        if self._stack is None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.options.close_timeout):
                try:
                    await self.flush()
                except StorageError:
                    # let the writer keep retrying at its back-off pace until time runs out
                    while self._pending and self._dead is None and self._progress is not None:
                        await self._progress.wait()
                except RuntimeError:
                    log.error("storage writer is dead; %d updates lost", len(self._pending))
            unflushed = len(self._pending)
        try:
            with anyio.CancelScope(shield=True):
                await self._before_stop()
        finally:
            self._running = False
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
            stack, self._stack, self._tg = self._stack, None, None
            try:
                await stack.aclose()  # exits the task group entered in start()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._db_close()
        if unflushed:
            # they are lost: a later start() must not commit them under reused log positions
            self._pending.clear()
            self._pending_bytes = 0
            self.counters.count_error("unflushed")
            log.error("storage closed with %d updates not committed", unflushed)
            raise StorageError("unflushed", f"{unflushed} updates could not be committed")

    async def _before_stop(self) -> None:  # noqa: B027
        """Backend hook before the writer stops (PostgreSQL: release leases)."""

    def _require_running(self) -> None:
        if self._dead is not None:
            raise RuntimeError("the storage writer crashed; see the chained exception") from (
                self._dead
            )
        if not self._running:
            raise RuntimeError("store not started: use `async with store:` or `await start()`")

    # ------------------------------------------------------------------ the writer

    async def _writer(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        failures = 0
        try:
            while True:
                if not self._pending:
                    self._work = anyio.Event()
                    await self._work.wait()
                    continue
                if (
                    failures == 0
                    and self._flushers == 0
                    and len(self._pending) < self.options.max_batch
                ):
                    await self._wait_kick(self.options.commit_interval)
                if await self._commit_once():
                    failures = 0
                else:
                    failures += 1
                    backoff = self.options.retry_initial * 2 ** min(failures - 1, 40)
                    delay = min(self.options.retry_max, backoff)
                    await self._wait_kick(delay)
        except BaseException as exc:
            if not isinstance(exc, anyio.get_cancelled_exc_class()):
                self._dead = exc
                log.exception("storage writer crashed")
            self._signal_progress()
            raise

    async def _wait_kick(self, delay: float) -> None:
        self._kick = anyio.Event()
        with anyio.move_on_after(delay):
            await self._kick.wait()

    def _signal_progress(self) -> None:
        event, self._progress = self._progress, anyio.Event()
        if event is not None:
            event.set()

    async def _commit_once(self) -> bool:
        assert self._commit_lock is not None  # set in start(); internal invariant
        async with self._commit_lock:
            batch = list(islice(self._pending, self.options.max_batch))
            if not batch:
                return True
            try:
                refused = await self._db_commit(batch)
            except StorageError as exc:
                self.counters.commit_failures += 1
                self.counters.count_error(exc.code)
                self._last_ok = False
                self._last_error = exc
                self.outage.fail(f"{exc} ({len(self._pending)} updates kept queued)")
                self._signal_progress()
                return False
            for item in batch:
                self._pending.popleft()
                self._pending_bytes -= len(item.data)
            self.counters.commits += 1
            self.counters.committed += len(batch) - refused
            if refused:
                self.counters.dropped_not_owner += refused
                log.warning("dropped %d queued updates of rooms owned elsewhere now", refused)
            self._last_ok = True
            self.outage.ok()
            self._signal_progress()
            return True

    def _done_index(self) -> int:
        return self._pending[0].index if self._pending else self._enqueued

    # ------------------------------------------------------------------ public API

    @property
    def pending(self) -> int:
        """Updates queued but not yet committed."""
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """Bytes queued but not yet committed."""
        return self._pending_bytes

    def append(self, room: RoomName, update: bytes) -> int:
        """Queue one update for ``room``; never blocks, never does I/O.

        Args:
            room: the room name.
            update: one Yjs V1 update (opaque to the store).

        Returns:
            The update's log position (``seq``) in the room: 1, 2, 3, ...

        Raises:
            StorageError: ``backlog-full`` when ``max_pending_bytes`` are already queued
                (storage has been failing for a long time); ``not-owner`` (PostgreSQL) when
                the room's lease is not held.
            ValueError: an empty/oversized update or a bad room name.
            RuntimeError: the store is not started.

        Example:
            >>> seq = store.append("notes", update)  # doctest: +SKIP
        """
        check_room(room)
        check_blob(update)
        self._require_running()
        self._check_owned(room)
        if self._pending_bytes + len(update) > self.options.max_pending_bytes:
            self.counters.count_error("backlog-full")
            raise StorageError(
                "backlog-full",
                f"{len(self._pending)} updates ({self._pending_bytes} B) await a failing store",
            )
        seq = self._last_seq.get(room, 0) + 1
        self._last_seq[room] = seq
        self._pending.append(Pending(self._enqueued, room, seq, time.time(), bytes(update)))
        self._enqueued += 1
        self._pending_bytes += len(update)
        self.counters.appended += 1
        assert self._work is not None and self._kick is not None  # set in start()
        self._work.set()
        if len(self._pending) >= self.options.max_batch:
            self._kick.set()
        return seq

    async def flush(self) -> None:
        """Wait until every update appended before this call is durable.

        Skips the group-commit window. If the commit attempt fails, raises; the updates stay
        queued and the writer keeps retrying in the background (with back-off), so a later
        ``flush()`` succeeds once storage is back.

        Raises:
            StorageError: the attempt failed (code of the underlying failure).
            RuntimeError: the store is not started.

        Example:
            >>> await store.flush()  # doctest: +SKIP
        """
        self._require_running()
        target = self._enqueued
        if self._done_index() >= target:
            return
        self._flushers += 1
        try:
            while self._done_index() < target:
                progress = self._progress
                assert progress is not None and self._kick is not None and self._work is not None
                self._kick.set()
                self._work.set()
                await progress.wait()
                self._require_running()
                if self._done_index() < target and not self._last_ok:
                    err = self._last_error
                    code = err.code if err is not None else "unknown"
                    raise StorageError(
                        code, f"{len(self._pending)} updates stay queued and are retried: {err}"
                    ) from err
        finally:
            self._flushers -= 1

    async def load(self, room: RoomName, *, missing_ok: bool = False) -> StoredDoc:
        """The room's latest snapshot plus every update after it (durable, then still queued).

        Args:
            room: the room name.
            missing_ok: return an empty :class:`StoredDoc` for an unknown room.

        Raises:
            NotFoundError: ``room-not-found`` (unless ``missing_ok``).
            StorageError: the database failed (never means "not found").

        Example:
            >>> doc = rebuild(await store.load("notes"))  # doctest: +SKIP
        """
        check_room(room)
        self._require_running()
        # Queued updates may be committed (and leave the queue) while the read runs: take
        # them from the queue both before and after the read.
        queued = {p.seq: p for p in self._pending if p.room == room}
        stored = await self._db_load(room, None)
        queued.update((p.seq, p) for p in self._pending if p.room == room)
        durable_seq = stored.last_seq if stored is not None else 0
        extra = [queued[s] for s in sorted(queued) if s > durable_seq]
        if stored is None and not extra:
            if missing_ok:
                return StoredDoc(room, None, 0, [], 0)
            raise NotFoundError("room-not-found", f"no stored room {room!r}")
        if stored is None:
            stored = StoredDoc(room, None, 0, [], 0)
        if not extra:
            return stored
        return StoredDoc(
            room,
            stored.snapshot,
            stored.snapshot_seq,
            stored.updates + [p.data for p in extra],
            extra[-1].seq,
        )

    async def load_at(self, room: RoomName, seq: int) -> StoredDoc:
        """The room as of log position ``seq``: the newest snapshot ≤ seq plus the log up to seq.

        Raises:
            NotFoundError: ``room-not-found``; ``seq-not-found`` (beyond the last update);
                ``compacted`` (the log rows needed were removed by compaction and no
                snapshot sits at ``seq``; version points always have one).
            StorageError: the database failed.

        Example:
            >>> old = rebuild(await store.load_at("notes", 120))  # doctest: +SKIP
        """
        check_room(room)
        self._require_running()
        if seq < 0:
            raise ValueError("seq must be >= 0")
        if any(p.room == room and p.seq <= seq for p in self._pending):
            await self.flush()
        stored = await self._db_load(room, seq)
        if stored is None:
            raise NotFoundError("room-not-found", f"no stored room {room!r}")
        return stored

    async def compact(self, room: RoomName, snapshot: bytes, upto_seq: int) -> None:
        """Store ``snapshot`` as the room's state at ``upto_seq`` and drop what it covers.

        The caller builds ``snapshot`` by replaying updates into a document (e.g.
        ``rebuild(await store.load(room)).get_update()`` with ``upto_seq=stored.last_seq``,
        or the replica's live document). Commits everything queued first. Unless
        ``retain_log`` is set, log rows with ``seq <= upto_seq`` and older unpinned snapshots
        are deleted; version snapshots are never deleted.

        Raises:
            ValueError: ``upto_seq`` is not a position the room has reached.
            StorageError: the database failed (nothing was changed).

        Example:
            >>> stored = await store.load("notes")  # doctest: +SKIP
            >>> snapshot = rebuild(stored).get_update()  # doctest: +SKIP
            >>> await store.compact("notes", snapshot, stored.last_seq)  # doctest: +SKIP
        """
        check_room(room)
        check_blob(snapshot, "snapshot")
        self._require_running()
        self._check_owned(room)
        if upto_seq < 1 or upto_seq > self._last_seq.get(room, 0):
            raise ValueError(
                f"upto_seq={upto_seq} is not a log position of {room!r} "
                f"(last is {self._last_seq.get(room, 0)})"
            )
        await self.flush()
        await self._db_compact(room, bytes(snapshot), upto_seq)
        self.counters.compactions += 1

    async def list_rooms(self) -> list[RoomInfo]:
        """Every room with durable content, sorted by name.

        Raises:
            StorageError: the database failed.
        """
        self._require_running()
        return await self._db_list_rooms()

    async def delete_room(self, room: RoomName) -> bool:
        """Remove a room: queued updates, log, snapshots, versions. ``False`` if unknown."""
        check_room(room)
        self._require_running()
        self._check_owned(room)
        assert self._commit_lock is not None
        async with self._commit_lock:
            kept: deque[Pending] = deque()
            dropped = 0
            for item in self._pending:
                if item.room == room:
                    dropped += 1
                    self._pending_bytes -= len(item.data)
                else:
                    kept.append(item)
            self._pending = kept
            existed = await self._db_delete_room(room)
            self._last_seq[room] = 0
        self._signal_progress()
        return existed or dropped > 0

    async def add_version(
        self,
        room: RoomName,
        label: str = "",
        contributors: list[Any] | None = None,
        *,
        seq: int | None = None,
        snapshot: bytes | None = None,
    ) -> Version:
        """Record a named version at ``seq`` (default: the room's latest update).

        A snapshot is pinned at the version point (built here by replay if not given), so
        ``load_at(room, version.seq)`` keeps working after any compaction.

        Raises:
            ValueError: the room has no update at ``seq``.
            StorageError: the database failed.

        Example:
            >>> v = await store.add_version("notes", "draft 1", ["alice"])  # doctest: +SKIP
        """
        check_room(room)
        self._require_running()
        self._check_owned(room)
        last = self._last_seq.get(room, 0)
        at = last if seq is None else seq
        if at < 1 or at > last:
            raise ValueError(f"seq={at} is not a log position of {room!r} (last is {last})")
        if len(label) > 1024:
            raise ValueError("label longer than 1024 characters")
        try:
            people: list[Any] = json.loads(json.dumps(list(contributors or [])))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"contributors must be JSON-serialisable: {exc}") from exc
        await self.flush()
        if snapshot is None:
            stored = await self._db_load(room, at)
            if stored is None:
                raise NotFoundError("room-not-found", f"no stored room {room!r}")
            snapshot = await anyio.to_thread.run_sync(snapshot_of, stored)
        check_blob(snapshot, "snapshot")
        now = time.time()
        version = await self._db_add_version(room, at, label, people, bytes(snapshot), now)
        drop = thin_versions(
            await self._db_list_versions(room),
            now,
            cap=self.options.max_versions,
            keep_all_for=self.options.keep_all_versions_for,
        )
        if drop:
            await self._db_drop_versions(room, drop)
        return version

    async def list_versions(self, room: RoomName) -> list[Version]:
        """The room's versions ordered by ``seq`` (then id)."""
        check_room(room)
        self._require_running()
        return await self._db_list_versions(room)

    async def load_log(
        self,
        room: RoomName,
        seq: int | None = None,
        *,
        max_updates: int = 50_000,
        start_by: int | None = None,
    ) -> TimedLog:
        """The room's log up to ``seq`` (default: the last update) with each update's time.

        From the very first update when every row up to ``seq`` is still stored and there are
        at most ``max_updates`` of them; otherwise from the newest snapshot at or before
        ``seq`` — or at or before ``start_by`` when given (a diff replays from its older
        version) — when compaction removed the rows before it, or the replay would be too
        long. Commits what is queued for the room first.

        Raises:
            NotFoundError: ``room-not-found``; ``seq-not-found``; ``compacted``.
            StorageError: the database failed.

        Example:
            >>> log = await store.load_log("notes", 120)  # doctest: +SKIP
            >>> [(seq, when) for seq, when, _ in log.entries][:1]  # doctest: +SKIP
            [(1, 1733083200.5)]
        """
        check_room(room)
        self._require_running()
        if seq is not None and seq < 0:
            raise ValueError("seq must be >= 0")
        if max_updates < 0:
            raise ValueError("max_updates must be >= 0")
        if any(p.room == room for p in self._pending):
            await self.flush()
        stored = await self._db_load_log(room, seq, max_updates, start_by)
        if stored is None:
            raise NotFoundError("room-not-found", f"no stored room {room!r}")
        return stored

    async def add_authors(self, room: RoomName, authors: list[Author]) -> int:
        """Record who client ids belong to (attribution); durable when this returns.

        First writer wins: a client id's name never changes once stored, except that a row
        stored without a name gets the first name seen later. At most ``max_authors`` rows per
        room (client ids are peer input); past the cap new client ids are dropped. Names are
        cut to :data:`~collab.storage.base.MAX_AUTHOR_NAME` characters, colours to 16.

        Returns:
            How many rows were added or given a name.

        Raises:
            StorageError: the database failed.

        Example:
            >>> ada = Author(7, "Ada", "#30bced", 1.0)
            >>> await store.add_authors("notes", [ada])  # doctest: +SKIP
            1
        """
        check_room(room)
        self._require_running()
        clean: dict[int, Author] = {}
        for a in authors:
            if not isinstance(a.client, int) or not 0 <= a.client < 2**53:
                raise ValueError(f"client id {a.client!r} is not a Yjs client id")
            if a.client not in clean:
                clean[a.client] = Author(
                    a.client, a.name[:MAX_AUTHOR_NAME], a.color[:16], float(a.first_seen)
                )
        if not clean:
            return 0
        return await self._db_add_authors(room, list(clean.values()), self.options.max_authors)

    async def list_authors(self, room: RoomName) -> list[Author]:
        """The room's recorded authors ordered by first-seen time (then client id)."""
        check_room(room)
        self._require_running()
        return await self._db_list_authors(room)

    # ------------------------------------------------------------------ ownership

    async def acquire_room(self, room: RoomName, owner_id: str) -> bool:
        """Become the one archiver of ``room``.

        Single-process stores (memory, SQLite) keep an in-process table: ``True`` unless
        another ``owner_id`` holds the room in this store. PostgreSQL uses leases.

        Example:
            >>> await store.acquire_room("notes", "replica-1")  # doctest: +SKIP
            True
        """
        check_room(room)
        if not owner_id:
            raise ValueError("owner_id must be a non-empty string")
        self._require_running()
        holder = self._owners.get(room)
        if holder is not None and holder != owner_id:
            return False
        self._owners[room] = owner_id
        return True

    async def release_room(self, room: RoomName) -> None:
        """Give up ``room`` (commits queued updates first)."""
        check_room(room)
        self._require_running()
        if room in self._owners:
            await self.flush()
            self._owners.pop(room, None)

    def held_rooms(self) -> set[RoomName]:
        """Rooms this store currently owns."""
        return set(self._owners)
