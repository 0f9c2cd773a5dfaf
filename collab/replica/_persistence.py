"""Persistence of one live room: append every update, track what is durable, compact.

:class:`Persistence` is a collaborator of :class:`~collab.replica.RoomArchiver` over an
:class:`~collab.storage.UpdateStore`. Every document update the room's sync sees is appended
(group commit); :meth:`Persistence.run` waits for appends to become durable, compacts every
``compact_every`` updates and reports the durable state vector (for the replica's awareness
hint). An update the store refused (backlog full, oversized) leaves a *gap* that only a
snapshot of the live document can cover: until that snapshot is stored nothing is claimed
saved.

Example:
    >>> # persistence = Persistence("notes", store, document, seq, options, stats)
    >>> # sync.observe(lambda e: persistence.append(e.update)); await persistence.run()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from collab.document import Document
from collab.errors import StorageError
from collab.storage import UpdateStore

if TYPE_CHECKING:
    from collab.replica import ReplicaOptions, ReplicaStats

__all__ = ["LeaseLost", "Persistence"]

log = logging.getLogger("collab.replica")

REPORT_INTERVAL = 1.0
"""Seconds between two durability checks (each followed by an :attr:`Persistence.on_saved`
report) while updates keep coming; the last state is always checked and reported, at most
this late. Each report re-publishes the replica's awareness hint to every peer of the room:
at every ``saved_interval`` (0.1 s) it cost about one awareness message per peer per typed
update in a busy room, plus the check's own wake-up."""


class LeaseLost(Exception):
    """Another replica took the room over (its lease expired here): stop serving it."""


class Persistence:
    """Durable log + snapshots of one live room (see the module docstring).

    Args:
        room: the room name.
        store: the (started) store; the room's lease is held by the caller.
        document: the live document.
        last_seq: log position the document was loaded at.
        options: the replica's options (``compact_every``, ``saved_interval``).
        stats: the replica's counters (storage errors).
    """

    def __init__(
        self,
        room: str,
        store: UpdateStore,
        document: Document,
        last_seq: int,
        options: ReplicaOptions,
        stats: ReplicaStats,
    ) -> None:
        self.room = room
        self.store = store
        self.document = document
        self.options = options
        self.stats = stats
        self.last_seq = last_seq
        "Log position of the last appended update."
        self.compacted_seq = last_seq
        "Log position of the last compaction (or load)."
        self.saved_seq = last_seq
        "Log position known durable."
        self.gap = False
        "An update could not be queued: only a snapshot can make the archive whole again."
        self.saved_sv = document.state_vector()
        "The state vector last known durable."
        self.on_saved: Callable[[bytes], None] | None = None
        "Called with the durable state vector after every durability check."
        self._dirty = anyio.Event()
        self._report_after = 0.0  # anyio.current_time() of the next allowed check

    @property
    def pending(self) -> bool:
        """Appended updates not yet known durable (or a gap not yet covered)."""
        return self.gap or self.last_seq > self.saved_seq

    def append(self, update: bytes) -> None:
        """Queue ``update`` in the store (called from the sync room's event, must not raise)."""
        try:
            self.last_seq = self.store.append(self.room, update)
        except (StorageError, ValueError) as exc:  # backlog full, lease lost, oversized update
            self.stats.storage_errors += 1
            log.error("replica: room %r: cannot queue an update: %s", self.room, exc)
            self.gap = True  # only a snapshot of the live document can cover it now
        self._dirty.set()

    async def run(self) -> None:
        """After appends, wait until they are durable, compact when due, report the saved
        state; forever (cancel it).

        Raises:
            LeaseLost: the store no longer holds the room's lease.
        """
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            # the first change after a quiet second is checked after saved_interval; while
            # changes keep coming, one check (and report) per REPORT_INTERVAL
            delay = self._report_after - anyio.current_time()
            await anyio.sleep(max(self.options.saved_interval, delay))
            seq, sv = self.last_seq, self.document.state_vector()
            await self._flush_retrying()
            self.saved_seq = max(self.saved_seq, seq)
            if self.room not in self.store.held_rooms():
                raise LeaseLost(self.room)
            if self.gap or self.last_seq - self.compacted_seq >= self.options.compact_every:
                gap, self.gap = self.gap, False
                if not await self.compact() and gap:
                    self.gap = True
                    self._dirty.set()
                    await anyio.sleep(1.0)
                    continue  # an update is missing from the log: do not claim it is saved
            self.saved_sv = sv
            self._report_after = anyio.current_time() + REPORT_INTERVAL
            if self.on_saved is not None:
                self.on_saved(sv)

    async def _flush_retrying(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.store.flush()
                return
            except StorageError as exc:
                self.stats.storage_errors += 1
                log.error("replica: room %r: storage failing, will retry: %s", self.room, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def compact(self) -> bool:
        """Snapshot the live document at the last appended position; True on success."""
        seq, snapshot = self.last_seq, self.document.get_update()
        if seq < 1:
            return False
        try:
            await self.store.flush()
            await self.store.compact(self.room, snapshot, seq)
        except (StorageError, ValueError) as exc:
            self.stats.storage_errors += 1
            log.error("replica: room %r: compaction failed: %s", self.room, exc)
            return False
        self.compacted_seq = seq
        return True

    async def durable_now(self) -> bool:
        """Commit everything appended so far; True when the live document as of the call is
        durably stored (no gap, the store accepted the flush)."""
        if self.gap:
            return False
        try:
            await self.store.flush()
        except StorageError:
            return False
        return not self.gap

    async def unload(self) -> None:
        """Compact what was appended since the last snapshot (best effort, on leaving)."""
        if self.last_seq > self.compacted_seq or self.gap:
            await self.compact()
