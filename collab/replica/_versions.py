"""Versions of one live room: recorded after a pause in editing, with their contributors.

:class:`VersionRecorder` counts the room's updates; :meth:`VersionRecorder.run` records a
version once editing pauses for ``version_pause`` seconds, or every ``version_every`` updates.
Contributors are the clients whose clocks advanced since the previous version (two state
vectors compared once per version, not a decode per update), plus the direct peer behind a
delete-only edit (deletes do not move state vectors), named by their awareness ``user.name``.

Example:
    >>> # versions = VersionRecorder("notes", store, document, awareness, options, stats, seq)
    >>> # sync.observe(lambda e: versions.on_update(e.update, e.origin)); await versions.run()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from collab.awareness import Awareness, AwarenessEvent
from collab.document import Document
from collab.errors import StorageError
from collab.protocol import decode_state_vector
from collab.storage import UpdateStore, Version
from collab.sync import Connection

if TYPE_CHECKING:
    from collab.replica import ReplicaOptions, ReplicaStats

__all__ = ["VersionRecorder", "user_name"]

log = logging.getLogger("collab.replica")

MAX_NAMED_CLIENTS = 10_000
"""Cap on remembered client id → awareness name pairs (peer-controlled keys)."""


def user_name(state: Any) -> str | None:
    """``state.user.name`` of an awareness state, if it is a string (cut to 200 chars).

    Example:
        >>> user_name({"user": {"name": "Ada"}}), user_name({})
        ('Ada', None)
    """
    if isinstance(state, dict):
        user = state.get("user")
        if isinstance(user, dict) and isinstance(user.get("name"), str):
            return str(user["name"])[:200]
    return None


class VersionRecorder:
    """Records versions of one live room (see the module docstring).

    Args:
        room: the room name.
        store: the store.
        document: the live document.
        awareness: the room's awareness (names of contributors).
        options: ``version_pause`` / ``version_every``.
        stats: the replica's counters.
        last_seq: ``() -> int``, the log position a version made now would cover.
    """

    def __init__(
        self,
        room: str,
        store: UpdateStore,
        document: Document,
        awareness: Awareness,
        options: ReplicaOptions,
        stats: ReplicaStats,
        last_seq: Callable[[], int],
    ) -> None:
        self.room = room
        self.store = store
        self.document = document
        self.options = options
        self.stats = stats
        self._last_seq = last_seq
        self._awareness = awareness
        self.since_version = 0
        "Updates since the last recorded version."
        self._base_sv = decode_state_vector(document.state_vector())
        self._deleters: set[int] = set()
        self._names: dict[int, str] = {}
        self._changed = anyio.Event()
        self._due = anyio.Event()  # version_every updates reached
        self._last_change = time.monotonic()
        self.on_recorded: Callable[[Version], None] | None = None
        "Called with every version recorded (the replica's ``version.recorded`` event)."
        awareness.observe(self._remember_names)

    def _remember_names(self, event: AwarenessEvent) -> None:
        for client in event.added + event.updated:
            name = user_name(self._awareness.states.get(client))
            if name is None:
                continue
            if client not in self._names and len(self._names) >= MAX_NAMED_CLIENTS:
                self._names.pop(next(iter(self._names)))
            self._names[client] = name

    def on_update(self, update: bytes, origin: Any) -> None:
        """Count one document update (called from the sync room's event inside the document's
        commit: it must not raise nor touch the document)."""
        self.since_version += 1
        self._last_change = time.monotonic()
        self._changed.set()
        if self.since_version >= self.options.version_every:
            self._due.set()
        if (
            update[:1] == b"\x00"  # no struct section: a delete-only edit ...
            and isinstance(origin, Connection)  # ... from a direct peer speaking for one client
            and len(origin.remote_clients) == 1
            and len(self._deleters) < MAX_NAMED_CLIENTS
        ):
            self._deleters.update(origin.remote_clients)

    def contributors(self) -> list[dict[str, Any]]:
        """Who changed the document since the last version: ``[{"client", "name"}]``."""
        now = decode_state_vector(self.document.state_vector())
        clients = [c for c, clock in now.items() if clock > self._base_sv.get(c, 0)]
        clients += sorted(self._deleters - set(clients))
        return [
            {"client": c, "name": self._names.get(c) or user_name(self._awareness.states.get(c))}
            for c in clients
        ]

    async def run(self) -> None:
        """Record a version after a pause in editing, or every ``version_every`` updates."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            # one wake-up per pause window (not one per update: a timer and a cancel scope
            # for every keystroke), early once version_every updates arrived
            while self.since_version < self.options.version_every:
                left = self._last_change + self.options.version_pause - time.monotonic()
                if left <= 0:
                    break
                with anyio.move_on_after(left):
                    await self._due.wait()
            self._due = anyio.Event()
            if self.since_version:
                await self.record("")

    async def record(self, label: str, *, raise_errors: bool = False) -> Version | None:
        """Record a version now (``None`` when nothing is stored yet).

        Raises:
            StorageError: the store failed (only with ``raise_errors``).
            ValueError: the store refused it (only with ``raise_errors``).
        """
        seq, snapshot = self._last_seq(), self.document.get_update()
        if seq < 1:
            return None
        sv = self.document.state_vector()
        contributors = self.contributors()
        try:
            version = await self.store.add_version(
                self.room, label, contributors, seq=seq, snapshot=snapshot
            )
        except (StorageError, ValueError) as exc:
            self.stats.storage_errors += 1
            log.error("replica: room %r: recording a version failed: %s", self.room, exc)
            if raise_errors:
                raise
            return None
        self._base_sv = decode_state_vector(sv)
        self._deleters.clear()
        self.since_version = 0
        if self.on_recorded is not None:
            self.on_recorded(version)
        return version
