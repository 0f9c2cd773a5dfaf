"""Authors of one live room: client id → awareness name and colour, stored for attribution.

:class:`AuthorRecorder` is a collaborator of :class:`~collab.replica.RoomArchiver`. On the hot
path it does one thing per applied update: for an update with a single client section (a
typical edit) it reads that client id from the first bytes (:func:`collab.attribution.first_client`,
no decode) and remembers it when it is new. Updates with
several sections (a sync step 2) only set a flag; :meth:`AuthorRecorder.run` then compares the
document's state vector with the known clients (once per ``interval``, not per update).

Names come from the awareness state of the client id itself (y-webrtc pages and collab's
peers use the document's client id in awareness); never from the connection an update arrived
on, since peers relay each other's updates. They are written to the store in small batches:
first writer wins, a row stored without a name gets the first name seen later. Client ids are
peer input: at most ``max_authors`` per room are remembered here and in the store.

Example:
    >>> # authors = AuthorRecorder("notes", store, document, awareness, stats)
    >>> # sync.observe(lambda e: authors.on_update(e.update, e.origin)); await authors.run()
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from collab.attribution import first_client, user_of
from collab.awareness import Awareness, AwarenessEvent
from collab.document import Document
from collab.errors import StorageError
from collab.protocol import decode_state_vector
from collab.storage import Author, UpdateStore

if TYPE_CHECKING:
    from collab.replica import ReplicaStats

__all__ = ["AuthorRecorder"]

log = logging.getLogger("collab.replica")


class AuthorRecorder:
    """Records who each client id of one live room is (see the module docstring).

    Args:
        room: the room name.
        store: the store (its ``options.max_authors`` caps the room's authors).
        document: the live document.
        awareness: the room's awareness (names and colours).
        stats: the replica's counters (storage errors).
        interval: seconds between batches written to the store.
    """

    def __init__(
        self,
        room: str,
        store: UpdateStore,
        document: Document,
        awareness: Awareness,
        stats: ReplicaStats,
        *,
        interval: float = 0.5,
    ) -> None:
        self.room = room
        self.store = store
        self.document = document
        self.stats = stats
        self.interval = interval
        options = getattr(store, "options", None)
        self.cap: int = int(getattr(options, "max_authors", 512))
        "Client ids remembered per room (peer input)."
        self._awareness = awareness
        self._known: dict[int, bool] = {}  # stored client -> stored with a name
        self._pending: dict[int, float] = {}  # client -> first seen
        self._rename: set[int] = set()
        self._scan = False
        self._failures = 0
        self._changed = anyio.Event()
        awareness.observe(self._on_awareness)

    @property
    def known(self) -> int:
        """Client ids stored or waiting to be stored (at most :attr:`cap`)."""
        return len(self._known) + len(self._pending)

    def on_update(self, update: bytes, origin: Any) -> None:
        """Note one applied update (hot path: called inside the document's commit; must not
        raise nor touch the document)."""
        if len(self._known) + len(self._pending) >= self.cap:
            return
        client = first_client(update)
        if client is None:
            if update[:1] != b"\x00":  # several client sections: find new ones in run()
                self._scan = True
                self._changed.set()
            return
        if client in self._known or client in self._pending:
            return
        self._pending[client] = time.time()
        self._changed.set()

    def _on_awareness(self, event: AwarenessEvent) -> None:
        for client in event.added + event.updated:
            if client in self._pending or self._known.get(client) is False:
                self._rename.add(client)
                self._changed.set()

    def _user(self, client: int) -> tuple[str, str]:
        """The client's own awareness name and colour (``("", "")`` while unknown: a row
        stored without a name gets the first name seen later). Never the name of the peer
        whose connection carried the update: y-webrtc peers relay each other's updates, and
        the first name stored for a client id stays."""
        return user_of(self._awareness.states.get(client))

    async def run(self) -> None:
        """Load the room's stored authors, then write new ones in batches; forever."""
        try:
            for author in await self.store.list_authors(self.room):
                self._known[author.client] = bool(author.name)
        except StorageError as exc:
            self.stats.storage_errors += 1
            log.warning("replica: room %r: cannot read its authors: %s", self.room, exc)
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            # a failing store is retried with capped exponential backoff (logged each time)
            await anyio.sleep(min(30.0, self.interval * 2**self._failures))
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending now (a storage failure is logged; it is retried later)."""
        if self._scan:
            self._scan = False
            now = time.time()
            for client in decode_state_vector(self.document.state_vector()):
                if len(self._known) + len(self._pending) >= self.cap:
                    break
                if client not in self._known and client not in self._pending:
                    self._pending[client] = now
        batch = []
        for client, seen in self._pending.items():
            name, color = self._user(client)
            batch.append(Author(client, name, color, seen))
        for client in self._rename - set(self._pending):
            name, color = self._user(client)
            if name:
                batch.append(Author(client, name, color, time.time()))
        self._rename.clear()
        if not batch:
            return
        try:
            await self.store.add_authors(self.room, batch)
        except (StorageError, ValueError) as exc:
            self.stats.storage_errors += 1
            self._failures = min(self._failures + 1, 10)
            log.warning("replica: room %r: cannot record authors: %s", self.room, exc)
            self._changed.set()
            return
        self._failures = 0
        for author in batch:
            self._pending.pop(author.client, None)
            self._known[author.client] = self._known.get(author.client, False) or bool(author.name)
