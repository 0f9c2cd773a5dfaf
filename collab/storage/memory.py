"""An in-memory store (tests and examples): same queue, group commit and API as the others.

Nothing survives the process. ``fault`` is a test hook: while set, every database operation
raises it, which exercises the retry path exactly like a failing disk would.

Example:
    >>> from collab.storage import MemoryStore
    >>> async def demo() -> int:  # doctest: +SKIP
    ...     async with MemoryStore() as store:
    ...         seq = store.append("r", b"\\x00\\x00")
    ...         await store.flush()
    ...         return (await store.load("r")).last_seq
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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

__all__ = ["MemoryStore"]


@dataclass
class _Room:
    last_seq: int = 0
    updated_at: float = 0.0
    log: dict[int, bytes] = field(default_factory=dict)
    times: dict[int, float] = field(default_factory=dict)
    snapshots: dict[int, tuple[bytes, bool]] = field(default_factory=dict)
    snapshot_times: dict[int, float] = field(default_factory=dict)


class MemoryStore(BufferedStore):
    """Keeps rooms in dictionaries; for tests, examples and ``memory://`` URLs."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        super().__init__(options)
        self.fault: StorageError | None = None
        "Test hook: while set, every database operation raises this error."
        self._rooms: dict[RoomName, _Room] = {}
        self._versions: list[Version] = []
        self._next_version_id = 1
        self._authors: dict[RoomName, dict[int, Author]] = {}

    def _check_fault(self) -> None:
        if self.fault is not None:
            raise StorageError(self.fault.code, str(self.fault))

    async def _db_open(self) -> None:
        self._check_fault()
        for name, room in self._rooms.items():
            self._last_seq[name] = room.last_seq

    async def _db_close(self) -> None:
        return None

    async def _db_commit(self, batch: list[Pending]) -> int:
        self._check_fault()
        now = time.time()
        for item in batch:
            room = self._rooms.setdefault(item.room, _Room())
            room.log[item.seq] = item.data
            room.times[item.seq] = item.ts
            room.last_seq = max(room.last_seq, item.seq)
            room.updated_at = now
        return 0

    async def _db_load(self, room: RoomName, upto: int | None) -> StoredDoc | None:
        self._check_fault()
        r = self._rooms.get(room)
        if r is None:
            return None
        end = read_end(room, r.last_seq, upto)
        bases = [s for s in r.snapshots if s <= end]
        base = max(bases) if bases else 0
        snap = r.snapshots[base][0] if bases else None
        rows = [r.log[s] for s in range(base + 1, end + 1) if s in r.log]
        if len(rows) != end - base:
            raise NotFoundError("compacted", f"log of {room!r} before {end} was compacted")
        return StoredDoc(room, snap, base, rows, end)

    async def _db_compact(self, room: RoomName, snapshot: bytes, upto_seq: int) -> None:
        self._check_fault()
        r = self._rooms.setdefault(room, _Room())
        pinned = r.snapshots.get(upto_seq, (b"", False))[1]
        r.snapshots[upto_seq] = (snapshot, pinned)
        r.snapshot_times[upto_seq] = time.time()
        for s in [s for s, (_, p) in r.snapshots.items() if s < upto_seq and not p]:
            del r.snapshots[s]
        if not self.options.retain_log:
            for s in [s for s in r.log if s <= upto_seq]:
                del r.log[s]
                r.times.pop(s, None)
        r.updated_at = time.time()

    async def _db_list_rooms(self) -> list[RoomInfo]:
        self._check_fault()
        return [
            RoomInfo(
                name,
                sum(len(d) for d in r.log.values()) + sum(len(d) for d, _ in r.snapshots.values()),
                len(r.log),
                r.last_seq,
                r.updated_at,
            )
            for name, r in sorted(self._rooms.items())
        ]

    async def _db_delete_room(self, room: RoomName) -> bool:
        self._check_fault()
        self._versions = [v for v in self._versions if v.room != room]
        self._authors.pop(room, None)
        return self._rooms.pop(room, None) is not None

    async def _db_add_version(
        self,
        room: RoomName,
        seq: int,
        label: str,
        contributors: list[Any],
        snapshot: bytes,
        created_at: float,
    ) -> Version:
        self._check_fault()
        r = self._rooms[room]
        if seq not in r.snapshots:
            r.snapshot_times[seq] = created_at
        r.snapshots[seq] = (snapshot, True)
        version = Version(self._next_version_id, room, seq, created_at, label, contributors)
        self._next_version_id += 1
        self._versions.append(version)
        return version

    async def _db_ping(self) -> None:
        self._check_fault()

    async def _db_drop_versions(self, room: RoomName, ids: list[int]) -> None:
        self._check_fault()
        gone = set(ids)
        self._versions = [v for v in self._versions if v.id not in gone]
        r = self._rooms.get(room)
        if r is None:
            return
        needed = {v.seq for v in self._versions if v.room == room}
        latest = max(r.snapshots, default=0)
        for seq, (data, pinned) in list(r.snapshots.items()):
            if pinned and seq not in needed:
                if seq == latest:
                    r.snapshots[seq] = (data, False)
                else:
                    del r.snapshots[seq]

    async def _db_list_versions(self, room: RoomName) -> list[Version]:
        self._check_fault()
        return sorted((v for v in self._versions if v.room == room), key=lambda v: (v.seq, v.id))

    async def _db_load_log(
        self, room: RoomName, upto: int | None, max_updates: int, start_by: int | None
    ) -> TimedLog | None:
        self._check_fault()
        r = self._rooms.get(room)
        if r is None:
            return None
        end = read_end(room, r.last_seq, upto)
        base, snap, at = 0, None, None
        if not (end <= max_updates and all(s in r.log for s in range(1, end + 1))):
            limit = end if start_by is None else min(end, start_by)
            bases = [s for s in r.snapshots if s <= limit]
            if bases:
                base = max(bases)
                snap, at = r.snapshots[base][0], r.snapshot_times.get(base, r.updated_at)
        entries = [(s, r.times[s], r.log[s]) for s in range(base + 1, end + 1) if s in r.log]
        if len(entries) != end - base:
            raise NotFoundError("compacted", f"log of {room!r} before {end} was compacted")
        return TimedLog(room, snap, base, at, entries, end)

    async def _db_add_authors(self, room: RoomName, authors: list[Author], cap: int) -> int:
        self._check_fault()
        known = self._authors.setdefault(room, {})
        changed = 0
        for a in authors:
            old = known.get(a.client)
            if old is not None:
                if old.name or not a.name:
                    continue  # first writer wins; only a missing name is filled in
                known[a.client] = Author(a.client, a.name, a.color, old.first_seen)
            elif len(known) < cap:
                known[a.client] = a
            else:
                continue
            changed += 1
        if not known:
            del self._authors[room]
        return changed

    async def _db_list_authors(self, room: RoomName) -> list[Author]:
        self._check_fault()
        found = self._authors.get(room, {}).values()
        return sorted(found, key=lambda a: (a.first_seen, a.client))
