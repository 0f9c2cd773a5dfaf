"""The archival replica: a headless y-webrtc peer that keeps every room's document forever.

The replica joins rooms through the same signaling and WebRTC path as any browser
(:class:`collab.peer.WebrtcRoom` + a :class:`collab.sync.SyncRoom` sync), so it relays like any
peer and serves late joiners. It is a :class:`collab.service.Service`: ``async with
ArchivalReplica(...)`` runs one task group holding its signaling client and one supervised
:class:`RoomArchiver` actor per room (lifecycle: :class:`RoomState`). Around each room it adds:

* **durable storage** — every document update the sync room sees (from any peer, or local restores)
  is appended to the room's log in an :class:`collab.storage.UpdateStore` (group commit);
* **loading** — a room's document is rebuilt from its latest snapshot plus the log tail
  (off the event loop) before the replica announces itself, so a browser opening an empty
  room gets the archived text;
* **compaction** — every ``compact_every`` updates the replica snapshots the live document
  (``get_update()`` of the replayed doc, never ``merge_updates``) and compacts the log;
* **versions** — after a pause in editing, with contributors (:mod:`._versions`);
* **"saved"** — :meth:`ArchivalReplica.saved_covers` tells whether a browser's state (a Yjs
  snapshot: state vector *and* delete set) is durably stored; the page asks the server over
  HTTP, so no peer can make it claim "saved" (an awareness claim of ``collab.role =
  "replica"`` is only a hint that prompts the page to ask);
* **room selection** — :class:`RoomPolicy` (all / fnmatch pattern / none), explicit rooms with
  passwords, or following every room opened on our own signaling server through its hooks
  (:meth:`ArchivalReplica.on_topic_opened`); password rooms are archived only when the replica
  knows the password (otherwise it cannot even decrypt the announces);
* **events** — :attr:`ArchivalReplica.events` (an :class:`~collab.observers.Observers` of
  ``(ReplicaEvent) -> None``) hears ``room.created`` (a new room's first update is durable),
  ``version.recorded``, ``room.restored`` and ``room.deleted``; callbacks run on the event
  loop and must not block (``collab serve`` queues them for its webhooks);
* **capacity** — in follow mode a room with no connected peer for ``idle_unload_after``
  seconds is flushed, compacted, left and forgotten; it is reloaded on demand. At most
  ``max_rooms`` rooms are tracked at once.

Storage failures never lose updates: the store keeps them queued in memory and retries; the
replica logs the :class:`~collab.errors.StorageError` and counts it. A room that crashes is
logged with its traceback, counted (:attr:`ReplicaStats.room_failures`) and restarted with
capped exponential backoff; the other rooms never notice.

Example:
    >>> async def main() -> None:  # doctest: +SKIP
    ...     store = open_store("sqlite:///var/lib/collab/archive.db")
    ...     async with store, ArchivalReplica(store, "ws://127.0.0.1:4444") as replica:
    ...         await replica.follow("notes")
    ...         await anyio.sleep_forever()
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup, TaskStatus

from collab.document import DEFAULT_TEXT, Document
from collab.errors import NotFoundError, StorageError
from collab.fork import fork_room
from collab.history import find_version, restore_into_async
from collab.observers import Observers
from collab.peer.budget import ConnectionBudget
from collab.peer.config import PeerConfig
from collab.peer.room import RoomCounters
from collab.peer.signaling_client import SignalingClient
from collab.replica._archiver import REPLICA_COLOR, LiveRoom, RoomArchiver, RoomState
from collab.replica._persistence import LeaseLost, Persistence
from collab.replica._versions import VersionRecorder
from collab.service import Service
from collab.snapshot import snapshot_covers, snapshot_of
from collab.storage import UpdateStore, Version, rebuild
from collab.storage.base import check_room
from collab.sync import SyncOptions

__all__ = [
    "EVENT_KINDS",
    "ArchivalReplica",
    "LeaseLost",
    "LiveRoom",
    "Persistence",
    "ReplicaEvent",
    "ReplicaOptions",
    "ReplicaStats",
    "RoomArchiver",
    "RoomPolicy",
    "RoomState",
    "RoomSummary",
    "VersionRecorder",
]

log = logging.getLogger("collab.replica")


@dataclass(frozen=True)
class RoomPolicy:
    """Which rooms the replica archives.

    Example:
        >>> RoomPolicy("pattern", "team-*").allows("team-a"), RoomPolicy("none").allows("x")
        (True, False)
    """

    mode: Literal["all", "pattern", "none"] = "all"
    "``all`` rooms, rooms matching ``pattern`` (fnmatch), or ``none`` (explicit rooms only)."
    pattern: str = "*"
    "The fnmatch pattern used in ``pattern`` mode."

    def allows(self, room: str) -> bool:
        """Whether a room discovered on signaling may be archived."""
        if self.mode == "all":
            return True
        if self.mode == "pattern":
            return fnmatch.fnmatchcase(room, self.pattern)
        return False

    @classmethod
    def parse(cls, text: str) -> RoomPolicy:
        """``"all"``, ``"none"`` or any other string as an fnmatch pattern.

        Example:
            >>> RoomPolicy.parse("docs-*")
            RoomPolicy(mode='pattern', pattern='docs-*')
        """
        if text in ("all", "*"):
            return cls("all")
        if text == "none":
            return cls("none")
        return cls("pattern", text)


@dataclass
class ReplicaOptions:
    """Every knob of the replica."""

    policy: RoomPolicy = field(default_factory=RoomPolicy)
    "Which rooms discovered through signaling hooks are archived."
    passwords: dict[str, str] = field(default_factory=dict)
    "Room passwords the replica knows (password rooms are archived only with them)."
    text_name: str = DEFAULT_TEXT
    "Name of the shared text served by ``text()`` (y-codemirror.next uses ``codemirror``)."
    name: str = "archive"
    "Display name in awareness."
    hidden: bool = False
    "Stay out of awareness entirely (pages then show no archive in the room's presence)."
    awareness_renewal_hold: float = 6.0
    """Seconds a peer's awareness renewal (unchanged state, sent every 15–18 s to stay alive)
    is held, so the renewals of a room — and the replica's own — are relayed together in one
    message per connection (:attr:`collab.awareness.Awareness.renewal_hold`; the first held
    6–9 s, the others with it: the others hear every peer at least every 18 + 9 = 27 s,
    within y-protocols' 30 s; 6 is the most ``Awareness`` accepts). Each relayed message
    costs every connection a DATA chunk, the peer's echo (y-webrtc re-broadcasts what it
    hears) and their acknowledgements: 6 s relays ~1.3 messages per connection per 15 s
    instead of ~1.9 at 3 s (4 peers). 0 relays each at once."""
    idle_unload_after: float = 30.0
    "Follow mode: unload a room after this many seconds with no connected peer."
    idle_check_interval: float = 2.0
    "How often a live room without connection changes re-checks whether it is idle (s)."
    compact_every: int = 2000
    "Compact a room's log after this many new updates."
    saved_interval: float = 0.1
    "How often (seconds) durability is checked and the awareness ``sv`` refreshed."
    owner_id: str = field(default_factory=lambda: f"replica-{uuid.uuid4()}")
    "This replica's identity for room ownership (PostgreSQL leases)."
    acquire_retry: float = 1.0
    "Seconds between attempts to take over a room another replica owns."
    version_pause: float = 10.0
    "Record a version once editing pauses for this many seconds."
    version_every: int = 1000
    "Record a version at least every this many updates, even without a pause."
    max_rooms: int = 10_000
    "Rooms tracked at once (any state); demand for more is refused and counted."
    restart_initial: float = 0.5
    "First delay (s) before a crashed room restarts; doubles per crash."
    restart_max: float = 30.0
    "Largest restart delay (s)."
    unload_timeout: float = 15.0
    "Seconds a leaving room may spend on its final snapshot, and on committing and releasing."
    live_timeout: float = 30.0
    "Seconds an API call (restore, versions) waits for a room to load."


@dataclass
class ReplicaStats:
    """Counters of one replica (rendered as Prometheus metrics by ``collab serve``)."""

    storage_errors: int = 0
    "StorageErrors seen (each is logged; updates stay queued in the store)."
    room_failures: Counter[str] = field(default_factory=Counter)
    "Room crashes by reason (each logged with its traceback; the room restarted)."
    rooms_refused: int = 0
    "Rooms not archived: ``max_rooms`` were tracked, or a name the store cannot hold."
    remote_closed: Counter[str] = field(default_factory=Counter)
    "Remote connections closed, by reason, in rooms that have been unloaded."
    remote_failures: int = 0
    "Remote connections that crashed (in rooms that have been unloaded)."
    offers_refused: int = 0
    "Offers ignored for lack of a pending slot (in rooms that have been unloaded)."
    offloaded: int = 0
    "Large updates scanned or split in a worker thread (in rooms that have been unloaded)."

    def merge_room(self, counters: RoomCounters) -> None:
        """Fold a leaving room's connection counters into the totals."""
        self.remote_closed.update(counters.close_reasons)
        self.remote_failures += counters.remote_failures
        self.offers_refused += counters.refused


REPLICA_CONSENT_INTERVAL = 15.0
"""Seconds between the replica's own ICE consent checks when ``peer_config`` sets none (see
:mod:`collab.peer.ice_tuning`)."""

EVENT_KINDS = ("room.created", "version.recorded", "room.restored", "room.deleted")
"""Every :class:`ReplicaEvent` kind, in the order a room usually sees them."""


@dataclass(frozen=True)
class ReplicaEvent:
    """Something that happened to a room's archive (see :attr:`ArchivalReplica.events`).

    Example:
        >>> ReplicaEvent("room.deleted", "notes", 1.5, {}).kind in EVENT_KINDS
        True
    """

    kind: str
    "One of :data:`EVENT_KINDS`."
    room: str
    "The room name."
    at: float
    "Unix time it happened."
    data: dict[str, Any]
    """JSON-serialisable details: ``room.created`` ``{seq}``; ``version.recorded``
    ``{version, seq, label, contributors}``; ``room.restored`` ``{from_version, version}``
    (the version restored, the version recording the result); ``room.deleted`` ``{}``."""


@dataclass(frozen=True)
class RoomSummary:
    """One row of :meth:`ArchivalReplica.list_rooms`."""

    name: str
    "Room name."
    size: int
    "Bytes stored (log + snapshots)."
    updated_at: float | None
    "Unix time of the last durable change (None if nothing is stored yet)."
    peers: int
    "Peers currently connected to the replica in this room (0 when not loaded)."
    loaded: bool
    "Whether the room is live in memory."


class ArchivalReplica(Service):
    """The archival replica (see the module docstring).

    Args:
        store: the update store (started and closed by the caller).
        signaling: the y-webrtc signaling URL the replica joins rooms through.
        options: see :class:`ReplicaOptions`.
        peer_config: ICE servers and limits of the replica's WebRTC peer.
        sync_options: limits of every room's sync room (state vector, awareness, parked
            updates; see :class:`collab.sync.SyncOptions`).
        signaling_headers: extra headers of the signaling upgrade (e.g. the internal key of a
            co-located signaling service; never logged).
    """

    def __init__(
        self,
        store: UpdateStore,
        signaling: str,
        *,
        options: ReplicaOptions | None = None,
        peer_config: PeerConfig | None = None,
        sync_options: SyncOptions | None = None,
        signaling_headers: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.signaling_url = signaling
        self.options = options or ReplicaOptions()
        config = peer_config or PeerConfig()
        # the archive should reach every peer: initiate towards every announce up to the
        # connection cap, not y-webrtc's ~20 (a browser never initiates towards earlier peers)
        # and check ICE consent every 15 s, not aioice's 5 s (collab.peer.ice_tuning: idle
        # connections cost the replica a third less ICE work; browsers' checks are answered)
        consent = config.consent_interval
        self.peer_config = dataclasses.replace(
            config,
            max_conns=config.max_remotes,
            consent_interval=REPLICA_CONSENT_INTERVAL if consent is None else consent,
        )
        self.sync_options = sync_options or SyncOptions()
        self.stats = ReplicaStats()
        "Counters (storage errors, room failures, closed connections)."
        self.rooms: dict[str, RoomArchiver] = {}
        "Every room actor, in any :class:`RoomState` (forgotten once CLOSED)."
        self.signaling = SignalingClient(signaling, self.peer_config, headers=signaling_headers)
        "The one signaling socket every room shares."
        self.budget = ConnectionBudget(
            self.peer_config.max_pending_total,
            fd_reserve=self.peer_config.fd_reserve,
            min_age=self.peer_config.pending_min_age,
        )
        "Pending-connection and file-descriptor budget shared by every room."
        self.closing = False
        "True once the replica is shutting down (no room is started any more)."
        self.events: Observers[Callable[[ReplicaEvent], None]] = Observers()
        "Callbacks hearing every :class:`ReplicaEvent` (must not block; errors are logged)."
        self._deleting: set[str] = set()
        self._tg: TaskGroup | None = None

    def emit(self, kind: str, room: str, data: dict[str, Any]) -> None:
        """Tell every :attr:`events` callback (a callback that raises is logged, not fatal)."""
        if not self.events:
            return
        event = ReplicaEvent(kind, room, time.time(), data)
        for callback in self.events:
            try:
                callback(event)
            except Exception:
                log.exception("replica: an event callback failed on %s", kind)

    @property
    def storage_errors(self) -> int:
        """StorageErrors seen (see :class:`ReplicaStats`)."""
        return self.stats.storage_errors

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the signaling client and every room actor until cancelled; on the way out every
        room leaves, snapshots, commits and releases its lease."""
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.signaling.run)
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self.closing = True
            self._tg = None

    async def before_stop(self) -> None:
        """Leave every room gracefully (snapshots and commits) before the task group stops."""
        self.closing = True
        for actor in list(self.rooms.values()):
            actor.stop()
        with anyio.move_on_after(self.options.unload_timeout * 2):
            for actor in list(self.rooms.values()):
                await actor.wait_state(RoomState.CLOSED)

    def _forget(self, actor: RoomArchiver) -> None:
        if self.rooms.get(actor.name) is actor:
            del self.rooms[actor.name]

    def _actor(self, room: str, *, pinned: bool = False) -> RoomArchiver | None:
        """The room's actor, started if needed (None while closing or at ``max_rooms``)."""
        actor = self.rooms.get(room)
        if actor is not None:
            actor.pinned = actor.pinned or pinned
            actor.demand()
            return actor
        if self.closing or self._tg is None or room in self._deleting:
            return None
        try:
            check_room(room)
        except ValueError as exc:  # a name the store cannot hold: never archived, once logged
            self.stats.rooms_refused += 1
            if self.stats.rooms_refused in (1, 10, 100) or self.stats.rooms_refused % 1000 == 0:
                log.warning("replica: not archiving a room: %s", exc)
            return None
        if len(self.rooms) >= self.options.max_rooms:
            self.stats.rooms_refused += 1
            if self.stats.rooms_refused in (1, 10, 100) or self.stats.rooms_refused % 1000 == 0:
                log.warning(
                    "replica: %d rooms tracked (max_rooms); refused %d so far",
                    len(self.rooms),
                    self.stats.rooms_refused,
                )
            return None
        actor = self.rooms[room] = RoomArchiver(self, room, pinned=pinned)
        self._tg.start_soon(actor.run)
        return actor

    # ------------------------------------------------------------------ room selection
    async def follow(self, room: str, password: str | None = None) -> RoomArchiver:
        """Archive ``room`` explicitly (kept loaded while idle); returns its actor once it is
        live or waiting for another replica's lease.

        Raises:
            RuntimeError: the replica is not running, or ``max_rooms`` rooms are tracked.
        """
        if password is not None:
            self.options.passwords[room] = password
        actor = self._actor(room, pinned=True)
        if actor is None:
            raise RuntimeError(f"cannot follow {room!r}: replica not running or at max_rooms")
        with anyio.move_on_after(self.options.live_timeout):
            await actor.wait_state(RoomState.LIVE, RoomState.CLOSED)
        return actor

    async def on_topic_opened(self, topic: str) -> None:
        """Signaling hook: a room opened on our own signaling server."""
        self._discovered(topic)

    async def on_subscriber_joined(self, topic: str, info: Any = None) -> None:
        """Signaling hook: someone subscribed to a room (reload it if it was unloaded)."""
        self._discovered(topic)

    async def on_topic_closed(self, topic: str) -> None:
        """Signaling hook: nobody is subscribed any more (a room waiting for a lease stops
        waiting; a live one idles out)."""
        actor = self.rooms.get(topic)
        if actor is not None:
            actor.topic_closed()

    def _discovered(self, topic: str) -> None:
        if self.closing or (not self.options.policy.allows(topic) and topic not in self.rooms):
            return
        self._actor(topic)

    async def _live(self, room: str) -> LiveRoom:
        """The room live in this replica (loaded on demand).

        Raises:
            StorageError: ``not-owner`` when another replica archives it (or it did not load).
        """
        actor = self._actor(room)
        if actor is None:
            raise StorageError("unavailable", f"room {room!r} cannot be loaded now")
        with anyio.move_on_after(self.options.live_timeout):
            await actor.wait_state(RoomState.LIVE, RoomState.CLOSED)
        if actor.live is None:
            raise StorageError("not-owner", f"room {room!r} is archived by another replica")
        return actor.live

    # ------------------------------------------------------------------ awareness
    def awareness_state(self, stored_sv: bytes) -> dict[str, Any]:
        """The replica's initial awareness state in a room."""
        return {
            "user": {"name": self.options.name, "color": REPLICA_COLOR},
            "collab": {"role": "replica", "sv": base64.b64encode(stored_sv).decode("ascii")},
        }

    # ------------------------------------------------------------------ saved?
    async def saved_covers(self, room: str, snapshot: bytes) -> bool:
        """Whether a peer's state — a Yjs snapshot (delete set + state vector, as
        ``Y.encodeSnapshot(Y.snapshot(doc))``) — is durably stored: every struct and every
        deletion it holds. Live rooms only (a peer asking is in the room).

        Raises:
            ProtocolError: ``bad-snapshot`` for a malformed snapshot.
        """
        actor = self.rooms.get(room)
        live = actor.live if actor is not None else None
        if live is None:
            return False
        current = snapshot_of(live.document)
        if not await live.persistence.durable_now():
            return False
        return snapshot_covers(current, snapshot)

    # ------------------------------------------------------------------ versions
    async def create_version(self, room: str, label: str = "") -> Version:
        """Record a version of ``room`` now (on demand).

        Raises:
            NotFoundError: the room has nothing stored.
            StorageError: the store failed, or another replica archives the room.
        """
        await self.document(room)  # NotFoundError for unknown rooms
        live = await self._live(room)
        version = await live.versions.record(label, raise_errors=True)
        if version is None:
            raise NotFoundError("no-room", f"room {room!r} has no updates yet")
        return version

    async def versions(self, room: str) -> list[Version]:
        """The room's recorded versions, oldest first."""
        return await self.store.list_versions(room)

    async def resolve_version(self, room: str, at: str) -> Version:
        """A version by id (``"12"``) or the newest one at or before an ISO time.

        Raises:
            NotFoundError: no such version.
            ValueError: ``at`` is neither an id nor an ISO 8601 time.
        """
        return find_version(await self.store.list_versions(room), room, at)

    async def document_at(self, room: str, at: str | None) -> Document:
        """The document now (``at=None``) or as of a version (id or ISO time)."""
        if at is None:
            return await self.document(room)
        version = await self.resolve_version(room, at)
        return await self._rebuilt(await self.store.load_at(room, version.seq))

    async def restore(self, room: str, at: str) -> Version | None:
        """Bring ``room`` back to a version *as a new change* every connected peer receives.

        Every root type is restored (see :func:`collab.history.restore_into`): texts by
        minimal edits plus their formatting, XML fragments (TipTap/ProseMirror) node by node
        (changed nodes edited in place, others replaced), maps and arrays recursively. History
        is not rewritten: the restore is a normal update, recorded as a new version labelled
        ``restored …``.

        Raises:
            NotFoundError: no such room or version.
            ValueError: ``at`` is malformed, or the old version cannot be restored (a root
                declared with another kind, nesting deeper than ``collab.render.MAX_DEPTH``).
        """
        version = await self.resolve_version(room, at)
        old = await self._rebuilt(await self.store.load_at(room, version.seq))
        live = await self._live(room)
        await restore_into_async(live.document, old, self.options.text_name)
        restored = await live.versions.record(f"restored version {version.id}", raise_errors=True)
        # the restore is one big update: its version pins a snapshot of the same state, so
        # compact now rather than keep the update in the log as well
        await live.persistence.compact()
        self.emit(
            "room.restored",
            room,
            {"from_version": version.id, "version": None if restored is None else restored.id},
        )
        return restored

    async def fork(self, room: str, at: str, to: str) -> Version:
        """Create room ``to`` whose history starts at version ``at`` of ``room`` (its first
        version is labelled ``forked from ROOM@V``; authors are copied). Peers joining ``to``
        get it from this replica, which loads it on demand like any archived room.

        Raises:
            NotFoundError: unknown room or version.
            StorageError: ``room-exists`` when ``to`` is stored or loaded here;
                ``not-owner`` when another replica holds it; or the store failed.
            ValueError: a bad name or ``at``.
        """
        version = await self.resolve_version(room, at)
        check_room(to)
        if to in self.rooms or to in self._deleting:
            raise StorageError("room-exists", f"room {to!r} is loaded")
        self._deleting.add(to)  # no actor may start on the new room while it is written
        try:
            return await fork_room(
                self.store,
                room,
                version.seq,
                to,
                owner=self.options.owner_id,
                label=f"forked from {room}@{version.id}",
            )
        finally:
            self._deleting.discard(to)

    async def delete_room(self, room: str) -> bool:
        """Delete a room's whole archive (log, snapshots, versions); ``False`` if unknown.

        Only a room this replica does not hold: deleting under connected peers would lose the
        deletion to the next update they send (every peer still has the document).

        Raises:
            StorageError: ``room-loaded`` while the room is tracked here (wait until its peers
                leave and it unloads); ``not-owner`` when another replica archives it; or the
                store failed.
        """
        check_room(room)
        if room in self.rooms or room in self._deleting:
            raise StorageError("room-loaded", f"room {room!r} is loaded; delete it once idle")
        self._deleting.add(room)  # no actor may start while the archive is deleted
        try:
            if not await self.store.acquire_room(room, self.options.owner_id):
                raise StorageError("not-owner", f"room {room!r} is archived by another replica")
            try:
                existed = await self.store.delete_room(room)
            finally:
                await self.store.release_room(room)
        finally:
            self._deleting.discard(room)
        if existed:
            self.emit("room.deleted", room, {})
        return existed

    # ------------------------------------------------------------------ reading
    async def _rebuilt(self, stored: Any) -> Document:
        def build() -> Document:
            document = Document(roots={self.options.text_name: "text"})
            rebuild(stored, document.ydoc)
            return document

        return await anyio.to_thread.run_sync(build)

    async def document(self, room: str) -> Document:
        """The room's document: the live one, or one rebuilt from storage (not joined).

        Raises:
            NotFoundError: the room has never been stored.
            StorageError: the store failed (never reported as not found).
        """
        actor = self.rooms.get(room)
        if actor is not None and actor.document is not None:
            return actor.document
        stored = await self.store.load(room, missing_ok=True)
        if stored.last_seq == 0 and stored.snapshot is None:
            raise NotFoundError("no-room", f"room {room!r} is not archived")
        return await self._rebuilt(stored)

    async def list_rooms(self) -> list[RoomSummary]:
        """Every stored or live room with size, last change and connected peers."""
        stored = {info.name: info for info in await self.store.list_rooms()}
        live = {name: a for name, a in self.rooms.items() if a.live is not None}
        out = []
        for name in sorted(set(stored) | set(live)):
            info = stored.get(name)
            actor = live.get(name)
            out.append(
                RoomSummary(
                    name=name,
                    size=info.size_bytes if info else 0,
                    updated_at=info.updated_at if info else None,
                    peers=actor.peers if actor else 0,
                    loaded=actor is not None,
                )
            )
        return out
