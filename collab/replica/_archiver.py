"""One room of the archival replica: a supervised actor with one lifecycle enum.

:class:`RoomArchiver` owns everything the replica does for one room. Its whole life is one
:class:`RoomState`, changed only in :meth:`RoomArchiver.run`::

    WAITING_LEASE ──► LOADING ──► LIVE ──► UNLOADING ──► DRAINING ──► CLOSED
          ▲    (lease held        (joined,     (left, final   (flush,
          │     elsewhere:         archiving)   snapshot)      release lease)
          │     retry)                                │
          └──────── wanted again / lease lost / crash (after backoff) ◄┘

* **WAITING_LEASE** — the store's lease (PostgreSQL: another replica may own the room) is
  retried every ``acquire_retry`` seconds while the room is wanted.
* **LOADING** — the latest snapshot plus log tail is rebuilt off the event loop (a worker
  thread; the document is not shared yet), then the room's sync room is built.
* **LIVE** — a task group runs the WebRTC room, awareness timers, :class:`Persistence`
  and :class:`VersionRecorder`. It is left when the room idles (no connected peer for
  ``idle_unload_after``; never for pinned rooms), when the lease is lost, or on a crash.
* **UNLOADING / DRAINING** — leave, compact, commit what is queued and give up the lease
  (shielded, bounded in time).

A crash anywhere in a cycle is logged with its traceback at once, counted in
``ReplicaStats.room_failures[reason]``, and the room restarts after a capped exponential
backoff; other rooms never notice. The actor ends (CLOSED) when it is no longer wanted, and
the replica forgets it: nothing keyed by the room name outlives the room.

Example:
    >>> RoomState.LIVE.value
    'live'
"""

from __future__ import annotations

import base64
import enum
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from collab.awareness import Awareness
from collab.document import Document
from collab.errors import CollabError, StorageError
from collab.peer.ice_tuning import consent_checks
from collab.peer.room import WebrtcRoom
from collab.replica._authors import AuthorRecorder
from collab.replica._persistence import LeaseLost, Persistence
from collab.replica._versions import VersionRecorder
from collab.storage import rebuild
from collab.sync import DocumentUpdated, RoomEvent, SyncRoom

if TYPE_CHECKING:
    from collab.replica import ArchivalReplica

__all__ = ["LiveRoom", "RoomArchiver", "RoomState"]

log = logging.getLogger("collab.replica")

REPLICA_COLOR = "#6b7280"


class RoomState(enum.Enum):
    """The lifecycle of a :class:`RoomArchiver` (see the module docstring)."""

    WAITING_LEASE = "waiting-lease"
    LOADING = "loading"
    LIVE = "live"
    UNLOADING = "unloading"
    DRAINING = "draining"
    CLOSED = "closed"


@dataclass
class LiveRoom:
    """What a room holds while LIVE: the document, its sync and WebRTC room, collaborators."""

    document: Document
    sync: SyncRoom
    webrtc: WebrtcRoom
    persistence: Persistence
    versions: VersionRecorder
    authors: AuthorRecorder | None = None

    @property
    def peers(self) -> int:
        """Connected peers."""
        return len(self.webrtc.connected_peers())


class _Leave(enum.Enum):
    IDLE = "idle"
    LEASE_LOST = "lease-lost"


class RoomArchiver:
    """The replica's actor for one room (see the module docstring).

    Args:
        replica: the owning replica (store, signaling, options, counters).
        name: the room name.
        pinned: followed explicitly: never unloaded while idle, always wanted.
    """

    def __init__(self, replica: ArchivalReplica, name: str, *, pinned: bool = False) -> None:
        self.replica = replica
        self.name = name
        self.pinned = pinned
        self.state = RoomState.WAITING_LEASE
        "Where the room is in its lifecycle."
        self.history: deque[RoomState] = deque([self.state], maxlen=64)
        "The last transitions, oldest first (diagnostics and tests)."
        self.live: LiveRoom | None = None
        "The live room (set while LIVE)."
        self.failures = 0
        "Crashes since the room was last live for a while."
        self.topic_open = True
        "Someone is subscribed to the room on our signaling server (follow mode)."
        self._rejoin = False
        self._idle_since = time.monotonic()
        self._changed = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    # ------------------------------------------------------------------ views
    @property
    def document(self) -> Document | None:
        """The live document (None unless LIVE)."""
        return self.live.document if self.live is not None else None

    @property
    def peers(self) -> int:
        """Connected peers (0 unless LIVE)."""
        return self.live.peers if self.live is not None else 0

    @property
    def wanted(self) -> bool:
        """Whether the room should be (or stay) archived."""
        return not self.replica.closing and (self.pinned or self.topic_open or self._rejoin)

    async def wait_state(self, *states: RoomState) -> RoomState:
        """Wait until the room is in one of ``states`` (use with ``anyio.fail_after``)."""
        while self.state not in states:
            await self._changed.wait()
        return self.state

    # ------------------------------------------------------------------ demand (from hooks)
    def demand(self) -> None:
        """Someone wants the room (a subscriber, an API call): keep it, or come back."""
        self.topic_open = True
        self._idle_since = time.monotonic()  # a newcomer gets a full idle period to connect
        if self.state in (RoomState.UNLOADING, RoomState.DRAINING):
            self._rejoin = True

    def topic_closed(self) -> None:
        """Nobody is subscribed any more: stop waiting for the lease (LIVE rooms idle out)."""
        self.topic_open = False
        self._notify()

    def stop(self) -> None:
        """Leave now (the replica is closing)."""
        if self._scope is not None:
            self._scope.cancel()

    # ------------------------------------------------------------------ lifecycle
    def _set(self, state: RoomState) -> None:
        log.debug("replica: room %r: %s -> %s", self.name, self.state.value, state.value)
        if state is not self.state:
            self.history.append(state)
        self.state = state
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The whole life of the room (see the module docstring); ready at once."""
        options = self.replica.options
        task_status.started()
        try:
            with anyio.CancelScope() as self._scope:
                while self.wanted:
                    self._rejoin = False
                    live_since: float | None = None
                    failed: BaseException | None = None
                    try:
                        if not await self._acquire():
                            break
                        self._set(RoomState.LOADING)
                        self.live = await self._load()
                        self._set(RoomState.LIVE)
                        live_since = time.monotonic()
                        leave = await self._serve(self.live)
                        log.info("replica: room %r: leaving (%s)", self.name, leave.value)
                        if leave is _Leave.LEASE_LOST:
                            self._rejoin = True  # wait for the lease again, if still wanted
                    except Exception as exc:  # noqa: BLE001 - logged with its traceback, counted
                        failed = exc
                        self._count_failure(exc)
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self._unload(self.live)
                        self.live = None
                    if live_since is not None and time.monotonic() - live_since >= 10.0:
                        self.failures = 0 if failed is None else 1
                    if failed is not None and self.wanted:
                        delay = min(
                            options.restart_max, options.restart_initial * 2 ** (self.failures - 1)
                        )
                        log.info("replica: room %r: restarting in %.1f s", self.name, delay)
                        self._set(RoomState.WAITING_LEASE)
                        await anyio.sleep(delay)
                        continue
                    if not (self.pinned or self._rejoin):
                        break
                    self._set(RoomState.WAITING_LEASE)
        except Exception as exc:  # noqa: BLE001 - the last boundary: logged, counted, room ends
            # only the shielded clean-up can get here: the room ends, the replica does not
            self._count_failure(exc)
        finally:
            self.live = None
            self._set(RoomState.CLOSED)
            self.replica._forget(self)

    def _count_failure(self, exc: BaseException) -> None:
        self.failures += 1
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # task groups wrap: name the real failure
        if isinstance(exc, CollabError):
            reason = f"{type(exc).__name__}:{exc.code}"
        else:
            reason = type(exc).__name__
        self.replica.stats.room_failures[reason] += 1
        if isinstance(exc, StorageError):
            self.replica.stats.storage_errors += 1
        log.error(
            "replica: room %r failed in state %s (%s)",
            self.name,
            self.state.value,
            reason,
            exc_info=exc,
        )

    async def _acquire(self) -> bool:
        """WAITING_LEASE: True once the lease is ours, False when no longer wanted."""
        replica = self.replica
        self._set(RoomState.WAITING_LEASE)
        told = False
        while self.wanted:
            try:
                if await replica.store.acquire_room(self.name, replica.options.owner_id):
                    if told:
                        log.info("replica: took over room %r", self.name)
                    return True
                if not told:
                    told = True
                    log.info("replica: room %r is archived by another replica; waiting", self.name)
            except StorageError as exc:
                replica.stats.storage_errors += 1
                log.warning("replica: room %r: cannot check ownership: %s", self.name, exc)
            with anyio.move_on_after(replica.options.acquire_retry):
                while self.wanted:
                    await self._changed.wait()
        return False

    async def _load(self) -> LiveRoom:
        """LOADING: rebuild the document off the event loop; build sync, room, collaborators."""
        replica = self.replica
        options = replica.options
        stored = await replica.store.load(self.name, missing_ok=True)
        await replica.store.flush()  # advertise only what is durable

        def build() -> Document:
            document = Document(roots={options.text_name: "text"})
            rebuild(stored, document.ydoc)
            return document

        document = await anyio.to_thread.run_sync(build)
        state = None if options.hidden else replica.awareness_state(document.state_vector())
        awareness = Awareness(
            document.client_id, state=state, renewal_hold=options.awareness_renewal_hold
        )
        sync = SyncRoom(document, awareness, options=replica.sync_options)
        persistence = Persistence(
            self.name, replica.store, document, stored.last_seq, options, replica.stats
        )
        versions = VersionRecorder(
            self.name,
            replica.store,
            document,
            awareness,
            options,
            replica.stats,
            lambda: persistence.last_seq,
        )
        webrtc = WebrtcRoom(
            self.name,
            replica.signaling,
            sync,
            password=options.passwords.get(self.name),
            config=replica.peer_config,
            budget=replica.budget,
        )
        authors = AuthorRecorder(self.name, replica.store, document, awareness, replica.stats)
        live = LiveRoom(document, sync, webrtc, persistence, versions, authors)

        def on_event(event: RoomEvent) -> None:
            if isinstance(event, DocumentUpdated):
                persistence.append(event.update)
                versions.on_update(event.update, event.origin)
                authors.on_update(event.update, event.origin)

        sync.observe(on_event)
        new_room = stored.last_seq == 0 and stored.snapshot is None

        def on_saved(sv: bytes) -> None:
            nonlocal new_room
            if new_room and persistence.saved_seq > 0:  # its first update is durable
                new_room = False
                replica.emit("room.created", self.name, {"seq": persistence.saved_seq})
            self._advertise(live, sv)

        persistence.on_saved = on_saved
        versions.on_recorded = lambda v: replica.emit(
            "version.recorded",
            self.name,
            {"version": v.id, "seq": v.seq, "label": v.label, "contributors": v.contributors},
        )
        log.info("replica: archiving room %r (seq %d)", self.name, stored.last_seq)
        return live

    async def _serve(self, live: LiveRoom) -> _Leave:
        """LIVE: run the room until it idles out or the lease is lost."""
        self._idle_since = time.monotonic()
        leave = _Leave.IDLE
        try:
            # every connection of the room (made by the room's tasks) checks consent at the
            # replica's pace (collab.peer.ice_tuning)
            with consent_checks(self.replica.peer_config.consent_interval):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(live.sync.awareness.run)
                    tg.start_soon(live.persistence.run)
                    tg.start_soon(live.versions.run)
                    if live.authors is not None:
                        tg.start_soon(live.authors.run)
                    await tg.start(live.webrtc.run)
                    self._advertise(live, live.persistence.saved_sv)
                    await self._until_idle(live)
                    tg.cancel_scope.cancel()
        except* LeaseLost:
            leave = _Leave.LEASE_LOST
            log.warning("replica: lost ownership of room %r; leaving it", self.name)
        return leave

    async def _until_idle(self, live: LiveRoom) -> None:
        options = self.replica.options
        while True:
            if live.peers or self.pinned:
                # only a connection change can make the room idle: no timer while it has
                # peers (a wake-up every idle_check_interval per room, for nothing)
                self._idle_since = time.monotonic()
                await live.webrtc.wait_changed()
                continue
            if time.monotonic() - self._idle_since >= options.idle_unload_after:
                return
            with anyio.move_on_after(options.idle_check_interval):
                await live.webrtc.wait_changed()

    async def _unload(self, live: LiveRoom | None) -> None:
        """UNLOADING + DRAINING (shielded by the caller): leave, snapshot, commit, release."""
        replica = self.replica
        if live is not None:
            self._set(RoomState.UNLOADING)
            replica.stats.merge_room(live.webrtc.counters)
            replica.stats.offloaded += live.sync.offloaded
            with anyio.move_on_after(replica.options.unload_timeout):
                await live.persistence.unload()
                if live.authors is not None:
                    await live.authors.flush()
            live.sync.close()
        self._set(RoomState.DRAINING)
        with anyio.move_on_after(replica.options.unload_timeout) as scope:
            delay = 0.5
            while True:
                try:
                    await replica.store.flush()
                    await replica.store.release_room(self.name)
                    break
                except StorageError as exc:
                    replica.stats.storage_errors += 1
                    log.error(
                        "replica: room %r: flush on unload failed, retrying: %s", self.name, exc
                    )
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except ValueError as exc:  # the store refuses the room itself: nothing to drain
                    log.error("replica: room %r: cannot release it: %s", self.name, exc)
                    break
        if scope.cancelled_caught:
            log.error(
                "replica: room %r: could not commit on unload within %.0f s; the store keeps "
                "retrying and the lease expires on its own",
                self.name,
                replica.options.unload_timeout,
            )

    # ------------------------------------------------------------------ awareness hint
    def _advertise(self, live: LiveRoom, sv: bytes) -> None:
        if self.replica.options.hidden:
            return
        field: dict[str, Any] = {
            "role": "replica",
            "sv": base64.b64encode(sv).decode("ascii"),
            "peerId": live.webrtc.peer_id,
        }
        live.sync.awareness.set_local_state_field("collab", field)
