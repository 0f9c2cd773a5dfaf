"""The archival replica: a headless y-webrtc peer that keeps every room's document forever.

The replica joins rooms through the same signaling and WebRTC path as any browser
(:class:`collab.peer.WebrtcRoom` + a :class:`collab.sync.SyncRoom` hub), so it relays like any
peer and serves late joiners. Around that it adds:

* **durable storage** — every document update the hub sees (from any peer, or local restores)
  is appended to the room's log in an :class:`collab.storage.UpdateStore` (group commit);
* **loading** — a room's document is rebuilt from its latest snapshot plus the log tail before
  the replica announces itself, so a browser opening an empty room gets the archived text;
* **compaction** — every ``compact_every`` updates the replica snapshots the live document
  (``get_update()`` of the replayed doc, never ``merge_updates``) and compacts the log;
* **"saved" signal** — its awareness state is ``{"user": {"name": ..., "color": ...},
  "collab": {"role": "replica", "sv": <base64>, "peerId": <signaling peer id>}}`` where ``sv``
  is the state vector of what is *durably stored*; the web page compares it with its own clock
  to show "saved to archive";
* **room selection** — :class:`RoomPolicy` (all / fnmatch pattern / none), explicit rooms with
  passwords, or following every room opened on our own signaling server through its hooks
  (:meth:`ArchivalReplica.on_topic_opened`); password rooms are archived only when the replica
  knows the password (otherwise it cannot even decrypt the announces);
* **capacity** — in follow mode a room with no connected peer for ``idle_unload_after``
  seconds is flushed, compacted, left and dropped from memory; it is reloaded on demand (a new
  subscriber on the signaling server, or an HTTP read).

Storage failures never lose updates: the store keeps them queued in memory and retries; the
replica logs the :class:`~collab.errors.StorageError` and counts it (``storage_errors``).

Example:
    >>> async def main() -> None:  # doctest: +SKIP
    ...     store = open_store("sqlite:///var/lib/collab/archive.db")
    ...     async with store, ArchivalReplica(store, "ws://127.0.0.1:4444") as replica:
    ...         await replica.follow("notes")
    ...         await anyio.sleep_forever()
"""

from __future__ import annotations

import base64
import fnmatch
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from collab.awareness import Awareness
from collab.document import DEFAULT_TEXT, Document
from collab.errors import NotFoundError, ProtocolError, StorageError
from collab.history import find_version, restore_into_async
from collab.peer._runner import TaskRunner
from collab.peer.config import PeerConfig
from collab.peer.room import WebrtcRoom
from collab.peer.signaling_client import SignalingClient
from collab.storage import UpdateStore, Version, rebuild
from collab.sync import Connection, DocumentUpdated, RoomEvent, SyncOptions, SyncRoom
from collab.yupdate import decode_update

__all__ = [
    "ArchivalReplica",
    "LiveRoom",
    "ReplicaOptions",
    "RoomPolicy",
    "RoomSummary",
]

log = logging.getLogger(__name__)

REPLICA_COLOR = "#6b7280"


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
    "Stay out of awareness entirely (then pages cannot show 'saved to archive')."
    idle_unload_after: float = 30.0
    "Follow mode: unload a room after this many seconds with no connected peer."
    idle_check_interval: float = 2.0
    "How often idle rooms are looked for (seconds)."
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


class LiveRoom:
    """A room the replica holds in memory: document, hub, WebRTC room, persistence state."""

    def __init__(self, name: str, document: Document, hub: SyncRoom, last_seq: int) -> None:
        self.name = name
        "Room name."
        self.document = document
        "The live document."
        self.hub = hub
        "The sync hub serving every connection."
        self.webrtc: WebrtcRoom | None = None
        "The y-webrtc room (None while not joined)."
        self.last_seq = last_seq
        "Log position of the last appended update."
        self.compacted_seq = last_seq
        "Log position of the last compaction (or load)."
        self.saved_seq = last_seq
        "Log position known durable."
        self.idle_since: float | None = time.monotonic()
        "Monotonic time since which no peer is connected (None while peers are)."
        self.dirty = anyio.Event()
        "Set when updates were appended since the last durability check."
        self.changed = anyio.Event()
        "Set on every document change (drives version recording)."
        self.since_version = 0
        "Updates since the last recorded version."
        self.contributors: dict[int, str | None] = {}
        "Client ids (and awareness names) that changed the document since the last version."
        self.gap = False
        "An update could not be queued: only a snapshot can make the archive whole again."
        self.advertised_sv = b"\x00"
        "The state vector last advertised as durably stored."
        self.scopes: list[anyio.CancelScope] = []
        "Cancel scopes of the room's background tasks (cancelled on unload)."

    @property
    def peers(self) -> int:
        """Connected peers."""
        return 0 if self.webrtc is None else len(self.webrtc.connected_peers())


class ArchivalReplica:
    """The archival replica (see the module docstring).

    Args:
        store: the update store (started and closed by the caller).
        signaling: the y-webrtc signaling URL the replica joins rooms through.
        options: see :class:`ReplicaOptions`.
        peer_config: ICE servers and limits of the replica's WebRTC peer.
    """

    def __init__(
        self,
        store: UpdateStore,
        signaling: str,
        *,
        options: ReplicaOptions | None = None,
        peer_config: PeerConfig | None = None,
    ) -> None:
        self.store = store
        self.signaling_url = signaling
        self.options = options or ReplicaOptions()
        self.peer_config = peer_config or PeerConfig()
        self.rooms: dict[str, LiveRoom] = {}
        "Rooms live in memory."
        self.storage_errors = 0
        "StorageErrors seen (each is logged; updates stay queued in the store)."
        self.task_errors = 0
        "Background tasks that crashed and were restarted (each is logged)."
        self.explicit: set[str] = set()
        "Rooms followed explicitly (never unloaded when idle)."
        self._signaling = SignalingClient(signaling, self.peer_config)
        self._runner = TaskRunner("replica")
        self._locks: dict[str, anyio.Lock] = {}
        self._waiting: set[str] = set()
        self._unloading: set[str] = set()
        self._rejoin: set[str] = set()
        self._draining: set[str] = set()
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start background work (durability tracking, idle unloading)."""
        await self._runner.start()
        await self._signaling.start()
        self._runner.spawn(self._supervised, self._idle_loop, None)

    async def close(self) -> None:
        """Leave every room after flushing and compacting it (idempotent)."""
        if not self._runner.running or self._closing:
            return
        self._closing = True
        with anyio.CancelScope(shield=True):
            try:
                for name in list(self.rooms):
                    await self._unload(name)
            finally:
                try:
                    await self._runner.stop()
                finally:
                    await self._signaling.close()

    async def __aenter__(self) -> ArchivalReplica:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _supervised(self, fn: Any, live: LiveRoom | None, *args: Any) -> None:
        """Run a background task; a crash is logged and the task restarted (never lets one
        failure stop the replica's other work). Room tasks end with their room."""
        scope = anyio.CancelScope()
        if live is not None:
            live.scopes.append(scope)
        with scope:
            while not self._closing and (live is None or self.rooms.get(live.name) is live):
                try:
                    await fn(*args)
                    return
                except Exception:
                    self.task_errors += 1
                    log.exception("replica: background task %s failed; restarting", fn.__name__)
                    await anyio.sleep(1.0)

    def _spawn_room_task(self, live: LiveRoom, fn: Any, *args: Any) -> None:
        self._runner.spawn(self._supervised, fn, live, *args)

    # ------------------------------------------------------------------ room selection

    async def follow(self, room: str, password: str | None = None) -> LiveRoom | None:
        """Archive ``room`` explicitly: load it and join it (kept loaded while idle).

        Returns the live room, or None while another replica owns it (a background task keeps
        trying to take it over).
        """
        if password is not None:
            self.options.passwords[room] = password
        self.explicit.add(room)
        return await self._ensure_joined(room)

    async def on_topic_opened(self, topic: str) -> None:
        """Signaling hook: a room opened on our own signaling server."""
        await self._discovered(topic)

    async def on_subscriber_joined(self, topic: str, info: Any = None) -> None:
        """Signaling hook: someone subscribed to a room (reload it if it was unloaded)."""
        live = self.rooms.get(topic)
        if live is not None:
            live.idle_since = time.monotonic()  # give the newcomer a full idle period to connect
        await self._discovered(topic)

    async def on_topic_closed(self, topic: str) -> None:
        """Signaling hook: nobody is subscribed any more; stop trying to take the room over."""
        if topic not in self.explicit:
            self._waiting.discard(topic)

    async def _discovered(self, topic: str) -> None:
        if self._closing or not self._runner.running:
            return
        if not self.options.policy.allows(topic) and topic not in self.explicit:
            return
        if topic in self._unloading:
            self._rejoin.add(topic)  # joined while we were leaving: come back afterwards
            return
        if topic in self.rooms:
            return
        try:
            await self._ensure_joined(topic)
        except StorageError as exc:
            self.storage_errors += 1
            log.error("replica: cannot load room %r: %s", topic, exc)

    # ------------------------------------------------------------------ loading

    def _lock(self, room: str) -> anyio.Lock:
        lock = self._locks.get(room)
        if lock is None:
            lock = self._locks[room] = anyio.Lock()
        return lock

    async def _ensure_joined(self, room: str) -> LiveRoom | None:
        async with self._lock(room):
            live = self.rooms.get(room)
            if live is not None or self._closing:
                return live
            if not await self.store.acquire_room(room, self.options.owner_id):
                if room not in self._waiting:
                    self._waiting.add(room)
                    self._runner.spawn(self._supervised, self._take_over, None, room)
                return None
            live = await self._start_room(room)
            log.info("replica: archiving room %r (seq %d)", room, live.last_seq)
            return live

    async def _start_room(self, room: str) -> LiveRoom:
        """Load and join (caller holds the room lock and owns the room); undone on failure."""
        live = await self._load(room)
        self.rooms[room] = live
        try:
            self._spawn_room_task(live, live.hub.awareness.run)
            self._spawn_room_task(live, self._durability_loop, live)
            self._spawn_room_task(live, self._version_loop, live)
            await self._join(live)
        except BaseException:
            del self.rooms[room]
            for scope in live.scopes:
                scope.cancel()
            live.hub.close()
            raise
        return live

    async def _take_over(self, room: str) -> None:
        """Retry owning a room another replica holds; join once it is ours.

        Stops when the room is no longer wanted (its topic closed) or the replica closes.
        """
        try:
            while room not in self.rooms and room in self._waiting and not self._closing:
                await anyio.sleep(self.options.acquire_retry)
                try:
                    acquired = await self.store.acquire_room(room, self.options.owner_id)
                except StorageError as exc:
                    self.storage_errors += 1
                    log.warning("replica: room %r: cannot check ownership: %s", room, exc)
                    continue
                if acquired:
                    async with self._lock(room):
                        if room not in self.rooms and not self._closing:
                            await self._start_room(room)
                            log.info("replica: took over room %r", room)
                    return
        finally:
            self._waiting.discard(room)

    async def _load(self, room: str) -> LiveRoom:
        stored = await self.store.load(room, missing_ok=True)
        await self.store.flush()  # advertise only what is durable
        document = Document(roots={self.options.text_name: "text"})
        rebuild(stored, document.ydoc)
        state = None if self.options.hidden else self._awareness_state(document)
        awareness = Awareness(document.client_id, state=state)
        hub = SyncRoom(document, awareness, options=SyncOptions())
        live = LiveRoom(room, document, hub, stored.last_seq)
        live.advertised_sv = document.state_vector()
        hub.observe(lambda event: self._on_room_event(live, event))
        return live

    async def _join(self, live: LiveRoom) -> None:
        password = self.options.passwords.get(live.name)
        live.webrtc = WebrtcRoom(
            live.name, self._signaling, live.hub, password=password, config=self.peer_config
        )
        await live.webrtc.start()
        if not self.options.hidden:
            live.hub.awareness.set_local_state_field(
                "collab", self._collab_field(live, live.advertised_sv)
            )

    def _collab_field(self, live: LiveRoom, sv: bytes) -> dict[str, Any]:
        """The replica's awareness ``collab`` field: role, stored state vector, peer id."""
        field: dict[str, Any] = {"role": "replica", "sv": base64.b64encode(sv).decode("ascii")}
        if live.webrtc is not None:
            field["peerId"] = live.webrtc.peer_id
        return field

    def _awareness_state(self, document: Document) -> dict[str, Any]:
        return {
            "user": {"name": self.options.name, "color": REPLICA_COLOR},
            "collab": {
                "role": "replica",
                "sv": base64.b64encode(document.state_vector()).decode("ascii"),
            },
        }

    # ------------------------------------------------------------------ persistence

    def _on_room_event(self, live: LiveRoom, event: RoomEvent) -> None:
        if not isinstance(event, DocumentUpdated):
            return
        try:
            live.last_seq = self.store.append(live.name, event.update)
        except (StorageError, ValueError) as exc:  # backlog full, lease lost, oversized update
            self.storage_errors += 1
            log.error("replica: room %r: cannot queue update: %s", live.name, exc)
            live.gap = True  # only a snapshot of the live document can cover it now
            live.dirty.set()
            return
        live.dirty.set()
        live.changed.set()
        live.since_version += 1
        try:
            parsed = decode_update(event.update)
        except ProtocolError:  # applied fine by Yrs, but not parseable by us: no names
            clients: set[int] = set()
        else:
            clients = {c.client for c in parsed.clients if c.structs}
        origin = event.origin
        if not clients and isinstance(origin, Connection) and len(origin.remote_clients) == 1:
            clients = set(origin.remote_clients)  # a delete-only edit from a direct peer
        for client in clients:
            if client not in live.contributors:
                live.contributors[client] = _user_name(live.hub.awareness.states.get(client))

    async def _durability_loop(self, live: LiveRoom) -> None:
        """After appends, wait until they are durable, then advertise the stored state."""
        while self.rooms.get(live.name) is live:
            await live.dirty.wait()
            live.dirty = anyio.Event()
            await anyio.sleep(self.options.saved_interval)
            seq, sv = live.last_seq, live.document.state_vector()
            while True:
                try:
                    await self.store.flush()
                    break
                except StorageError as exc:
                    self.storage_errors += 1
                    log.error("replica: room %r: storage failing, will retry: %s", live.name, exc)
                    await anyio.sleep(1.0)
            live.saved_seq = max(live.saved_seq, seq)
            if live.name not in self.store.held_rooms():
                # the lease moved to another replica: what we queued was refused, not saved
                self._runner.spawn(self._supervised, self._lost, None, live.name)
                return
            if live.gap or live.last_seq - live.compacted_seq >= self.options.compact_every:
                gap = live.gap
                live.gap = False
                if not await self._compact(live) and gap:
                    live.gap = True
                    live.dirty.set()
                    await anyio.sleep(1.0)
                    continue  # an update is missing from the log: do not claim it is saved
            live.advertised_sv = sv
            if not self.options.hidden:
                live.hub.awareness.set_local_state_field("collab", self._collab_field(live, sv))

    async def _compact(self, live: LiveRoom) -> bool:
        """Snapshot the live document at the last appended position; True on success."""
        seq, snapshot = live.last_seq, live.document.get_update()
        if seq < 1:
            return False
        try:
            await self.store.flush()
            await self.store.compact(live.name, snapshot, seq)
        except (StorageError, ValueError) as exc:
            self.storage_errors += 1
            log.error("replica: room %r: compaction failed: %s", live.name, exc)
            return False
        live.compacted_seq = seq
        return True

    # ------------------------------------------------------------------ versions

    async def _version_loop(self, live: LiveRoom) -> None:
        """Record a version after a pause in editing, or every ``version_every`` updates."""
        while self.rooms.get(live.name) is live:
            await live.changed.wait()
            live.changed = anyio.Event()
            while self.rooms.get(live.name) is live:
                if live.since_version >= self.options.version_every:
                    break
                with anyio.move_on_after(self.options.version_pause) as pause:
                    await live.changed.wait()
                    live.changed = anyio.Event()
                if pause.cancelled_caught:
                    break
            if self.rooms.get(live.name) is live and live.since_version:
                await self._record_version(live, "")

    async def _record_version(
        self, live: LiveRoom, label: str, *, raise_errors: bool = False
    ) -> Version | None:
        seq, snapshot = live.last_seq, live.document.get_update()
        if seq < 1:
            return None
        recorded = list(live.contributors)
        contributors = [{"client": c, "name": live.contributors[c]} for c in recorded]
        try:
            version = await self.store.add_version(
                live.name, label, contributors, seq=seq, snapshot=snapshot
            )
        except (StorageError, ValueError) as exc:
            self.storage_errors += 1
            log.error("replica: room %r: recording a version failed: %s", live.name, exc)
            if raise_errors:
                raise
            return None
        for client in recorded:
            live.contributors.pop(client, None)
        live.since_version = 0
        return version

    async def create_version(self, room: str, label: str = "") -> Version:
        """Record a version of ``room`` now (on demand).

        Raises:
            NotFoundError: the room has nothing stored.
            StorageError: the store failed.
        """
        live = self.rooms.get(room)
        if live is not None:
            version = await self._record_version(live, label, raise_errors=True)
            if version is None:
                raise NotFoundError("no-room", f"room {room!r} has no updates yet")
            return version
        await self.document(room)  # NotFoundError for unknown rooms
        async with self._lock(room):
            if not await self.store.acquire_room(room, self.options.owner_id):
                raise StorageError("not-owner", f"another replica archives {room!r}")
            try:
                return await self.store.add_version(room, label)
            finally:
                if room not in self.rooms:
                    await self.store.release_room(room)

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
        stored = await self.store.load_at(room, version.seq)
        document = Document(roots={self.options.text_name: "text"})
        rebuild(stored, document.ydoc)
        return document

    async def restore(self, room: str, at: str) -> Version | None:
        """Bring ``room`` back to a version *as a new change* every connected peer receives.

        The shared text is edited (minimal delete/insert runs) into the old text; declared
        maps get the old keys/values; arrays get the old items. History is not rewritten:
        the restore is a normal update, recorded as a new version labelled ``restored …``.
        """
        version = await self.resolve_version(room, at)
        stored = await self.store.load_at(room, version.seq)
        old = Document(roots={self.options.text_name: "text"})
        rebuild(stored, old.ydoc)
        live = await self._ensure_joined(room)
        if live is None:
            raise StorageError("not-owner", f"another replica archives {room!r}")
        await restore_into_async(live.document, old, self.options.text_name)
        return await self._record_version(live, f"restored version {version.id}", raise_errors=True)

    # ------------------------------------------------------------------ unloading

    async def _idle_loop(self) -> None:
        while True:
            await anyio.sleep(self.options.idle_check_interval)
            for room in list(self._draining):
                await self._drain(room)
            now = time.monotonic()
            for name, live in list(self.rooms.items()):
                if name in self.explicit:
                    continue
                if live.peers:
                    live.idle_since = None
                    continue
                if live.idle_since is None:
                    live.idle_since = now
                elif now - live.idle_since >= self.options.idle_unload_after:
                    log.info("replica: unloading idle room %r", name)
                    await self._unload(name)

    async def _unload(self, room: str) -> None:
        """Leave a room, snapshot it, drop it from memory, give up its ownership."""
        self._unloading.add(room)
        try:
            async with self._lock(room):
                live = self.rooms.get(room)
                if live is None:
                    return
                if live.webrtc is not None:
                    try:
                        await live.webrtc.close()
                    except Exception:
                        log.exception("replica: room %r: closing its WebRTC room failed", room)
                    live.webrtc = None
                if live.last_seq > live.compacted_seq:
                    await self._compact(live)
                del self.rooms[room]
                for scope in live.scopes:
                    scope.cancel()
                live.hub.close()
                self._draining.add(room)
                await self._drain(room)
        finally:
            self._unloading.discard(room)
            if room in self._rejoin and not self._closing:
                self._rejoin.discard(room)
                self._runner.spawn(self._supervised, self._discovered, None, room)

    async def _drain(self, room: str) -> None:
        """Commit what an unloaded room still has queued, then release it (retried by the idle
        loop while storage fails: the lease is kept until the updates are safe)."""
        try:
            await self.store.flush()
            if room not in self.rooms:
                await self.store.release_room(room)
            self._draining.discard(room)
        except StorageError as exc:
            self.storage_errors += 1
            log.error("replica: room %r: flush on unload failed, will retry: %s", room, exc)

    async def _lost(self, room: str) -> None:
        """Another replica took the room over (lease expired): stop serving it here."""
        log.warning("replica: lost ownership of room %r; leaving it", room)
        await self._unload(room)
        wanted = room in self.explicit or self.options.policy.allows(room)
        if wanted and not self._closing and room not in self._waiting:
            self._waiting.add(room)
            self._runner.spawn(self._supervised, self._take_over, None, room)

    # ------------------------------------------------------------------ reading

    async def document(self, room: str) -> Document:
        """The room's document: the live one, or one rebuilt from storage (not joined).

        Raises:
            NotFoundError: the room has never been stored.
            StorageError: the store failed (never reported as not found).
        """
        live = self.rooms.get(room)
        if live is not None:
            return live.document
        stored = await self.store.load(room, missing_ok=True)
        if stored.last_seq == 0 and stored.snapshot is None:
            raise NotFoundError("no-room", f"room {room!r} is not archived")
        document = Document(roots={self.options.text_name: "text"})
        rebuild(stored, document.ydoc)
        return document

    async def list_rooms(self) -> list[RoomSummary]:
        """Every stored or live room with size, last change and connected peers."""
        stored = {info.name: info for info in await self.store.list_rooms()}
        names = sorted(set(stored) | set(self.rooms))
        out = []
        for name in names:
            info = stored.get(name)
            live = self.rooms.get(name)
            out.append(
                RoomSummary(
                    name=name,
                    size=info.size_bytes if info else 0,
                    updated_at=info.updated_at if info else None,
                    peers=live.peers if live else 0,
                    loaded=live is not None,
                )
            )
        return out


def _user_name(state: Any) -> str | None:
    if isinstance(state, dict):
        user = state.get("user")
        if isinstance(user, dict) and isinstance(user.get("name"), str):
            return str(user["name"])[:200]
    return None
