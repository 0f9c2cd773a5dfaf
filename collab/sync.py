"""The sync engine: one document + awareness shared over any number of :class:`Channel` s.

:class:`SyncRoom` speaks y-webrtc's data-channel protocol exactly, per connection:

1. on open, send sync step 1 (our state vector) and, if we know any, every awareness state;
2. answer a step 1 with a step 2 (everything the remote lacks);
3. apply step 2s and updates (a step 2 marks the connection :attr:`Connection.synced`);
4. answer query-awareness with every known awareness state;
5. **relay**: every document update (from any origin, including other connections) and every
   accepted awareness change is broadcast to all connections. This is what makes a partial
   mesh converge. Unlike y-webrtc, a document update is by default not echoed back to the
   connection it came from (:attr:`SyncOptions.echo_to_origin`, which halves the traffic),
   *unless* the document holds pending (parked) updates when it arrives: applying it may
   release those, and the origin may lack them. Updates parked by
   :class:`~collab.document.Document` are re-applied with their own origin, so they are
   relayed like fresh ones. The Hypothesis machine checks both modes.

Per connection there is one sequential inbox (the receive loop applies messages one at a
time) and one bounded outbox drained by a sender task. Outbox overflow **closes that
connection** with reason ``"outbox-overflow"`` (never silently drops): the peer layer
reconnects and the fresh step 1/2 exchange repairs everything. The sender coalesces runs of
queued updates (at most :attr:`SyncOptions.coalesce_max_updates` updates /
:attr:`SyncOptions.coalesce_max_bytes` bytes) with ``pycrdt.merge_updates``; messages larger
than the channel's ``max_message_size`` are split with
:func:`collab.update_split.split_update` (a split step 2 goes out as updates with the last
piece as the step 2).

Received bytes are untrusted: ``empty``/``unknown-type`` messages are logged and ignored (as
y-webrtc does); any other :class:`~collab.errors.ProtocolError` (malformed, truncated,
too-large, bad-update, ...) closes *that* connection with the error code as reason.
:meth:`SyncRoom.serve` returns normally when the connection ends for any of these reasons.

**Bounds** (:class:`SyncOptions`), so that one peer can neither exhaust memory nor make the
document unsyncable for everyone else:

* *state vector / clients* — a stock browser's sync step 1 is one message, and a browser
  cannot receive a message over 256 KiB. An update that would take the encoded state vector
  over ``max_state_vector_bytes`` (128 KiB, ≈ 12,000 clients), or make one connection
  introduce more than ``max_new_clients_per_connection`` client ids, is refused and that
  connection closed with ``too-many-clients``. The check costs O(1) per update (the update's
  number of client sections against the remaining budgets); only near a limit is the update
  scanned exactly.
* *parked updates* — updates whose dependencies are missing are parked until they integrate,
  at most ``max_parked_bytes_per_connection`` per connection and ``max_parked_bytes`` per room;
  past that, an update that cannot integrate closes its connection with ``pending-overflow``.
* *event loop* — updates over ``offload_above`` bytes are scanned strictly in a worker thread,
  so one peer's big message never stalls every other room for tens of milliseconds. Yrs
  extends a client's contiguous run in time proportional to the run (a string copy), so one
  client id may send at most ``max_client_bytes`` (4 MiB) of content into a room: an
  attacker appending 14 MB from one client would otherwise stall the loop ~50 ms per update.
  A browser cannot send more than 256 KiB per update anyway; a new session is a new client.
* *awareness* — per-state and per-room byte caps (:class:`~collab.awareness.Awareness`); the
  initial awareness and relayed changes go out in as many messages as the remote's
  ``max_message_size`` requires.
* a sync step 1 that would not fit the remote's limit (a document archived before these
  bounds) is sent with the state vector cut to the clients with the largest clocks, never as
  a message the remote drops.

The room does not start timers: whoever owns it runs ``room.awareness.run()`` in its task
group (15 s renewal, 30 s expiry) and serves each transport with ``room.serve(channel, label)``.

Events (:meth:`SyncRoom.observe`): :class:`ConnectionAdded`, :class:`ConnectionRemoved` and
:class:`DocumentUpdated` (every document update with its origin: a :class:`Connection` for
remote updates, whatever the editor passed for local ones) — the replica persists updates
from it, the peer reports stats from it. Callbacks must not raise (errors are logged and
counted in :attr:`SyncRoom.callback_errors`).

Example:
    >>> import anyio
    >>> from collab.memnet import channel_pair
    >>> async def main() -> str:
    ...     a, b = SyncRoom(), SyncRoom()
    ...     a.document.text().insert(0, "hello")
    ...     left, right = channel_pair()
    ...     async with anyio.create_task_group() as tg:
    ...         tg.start_soon(a.serve, left, "to-b")
    ...         tg.start_soon(b.serve, right, "to-a")
    ...         await b.wait_connected_synced()
    ...         tg.cancel_scope.cancel()
    ...     return str(b.document.text())
    >>> anyio.run(main)
    'hello'
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import anyio.lowlevel
import pycrdt

from collab.awareness import Awareness, AwarenessEvent
from collab.document import Document, UpdateScan, scan_update
from collab.errors import ProtocolError, TransportError
from collab.lib0 import Decoder
from collab.observers import Observers
from collab.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AwarenessEntry,
    AwarenessMessage,
    BcPeerId,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_message,
    decode_state_vector,
    encode_awareness_messages,
    encode_state_vector,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from collab.types import Channel
from collab.update_split import split_update

__all__ = [
    "Connection",
    "ConnectionAdded",
    "ConnectionRemoved",
    "DocumentUpdated",
    "RoomEvent",
    "SyncCounters",
    "SyncOptions",
    "SyncRoom",
    "connection_of",
]

log = logging.getLogger(__name__)

_IGNORED_CODES: Final = frozenset({"empty", "unknown-type"})
_SYNC_HEADER: Final = 16  # outer type + sync type + length varint, generously
_MAX_SV_ENTRY: Final = 16  # an encoded state-vector entry: client + clock varUints, ≤ 8 each
_RECV_YIELD_EVERY: Final = 16  # received messages handled per event-loop turn, at most
_now = time.monotonic  # the pacing clock (asyncio's loop clock is monotonic too)


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """Knobs of a :class:`SyncRoom`."""

    outbox_size: int = 4096
    "Messages queued per connection before it is closed with ``outbox-overflow``."
    coalesce_max_updates: int = 2000
    """Merge at most this many queued updates into one message (merged in rounds of 32:
    Yrs' merge_updates is superlinear in the number of updates it takes at once)."""
    coalesce_wait: float = 0.005
    """Seconds the sender waits, at most, while its previous message is unacknowledged (a
    channel with ``wait_writable``: aiortc's) before sending queued updates; what queues
    meanwhile is merged into the same message (Nagle). No wait when the transport is idle,
    which is the case at typing rates; a burst goes out as ≤ 1 message per 5 ms."""
    coalesce_max_bytes: int = 64 * 1024
    "Stop merging once a run reaches this many bytes."
    burst_interval: float = 0.02
    """Over a channel that reports acknowledgements (aiortc's), send update messages at most
    once per this many seconds: what is typed meanwhile is merged into the next message.
    Every message costs the sender, each relay and each receiver a fixed amount of CPU
    (SCTP/DTLS in pure Python) that dwarfs merging, and a burst (a fast typist, a paste
    typed by a program, a replay) otherwise goes out as one message per round trip. An
    update more than this long after the previous message, with nothing waiting in the
    channel, goes out at once (typing rates are 5-10 keystrokes/s). 0 disables pacing."""
    max_incoming_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    "Incoming messages larger than this close the connection (``too-large``)."
    echo_to_origin: bool = False
    "Send updates back to the connection they came from, as y-webrtc does (costs 2x traffic)."
    relay: bool = True
    "Relay remote updates/awareness to other connections (only tests turn this off)."
    max_state_vector_bytes: int = 128 * 1024
    "Largest encoded state vector remote updates may create (a browser's step 1 must fit)."
    max_new_clients_per_connection: int = 1000
    "Client ids one connection may introduce into the document."
    max_parked_bytes: int = 16 * 1024 * 1024
    "Bytes of not-yet-integrable updates parked per room."
    max_parked_bytes_per_connection: int = 4 * 1024 * 1024
    "Bytes of not-yet-integrable updates parked per connection."
    offload_above: int = 32 * 1024
    "Updates larger than this are scanned in a worker thread, off the event loop."
    max_client_bytes: int = 4 * 1024 * 1024
    """Bytes of content one client id may send into the room (Yrs appends to a client's run
    in time proportional to the run: a 14 MB run costs ~50 ms of event loop per update)."""


@dataclass(slots=True)
class SyncCounters:
    """Counters of one connection."""

    messages_in: int = 0
    "Messages received."
    bytes_in: int = 0
    "Bytes received."
    messages_out: int = 0
    "Messages sent."
    bytes_out: int = 0
    "Bytes sent."
    ignored: int = 0
    "Received messages ignored (empty, unknown type, BroadcastChannel-only)."
    updates_coalesced: int = 0
    "Queued updates merged into an earlier message instead of sent alone."
    new_clients: int = 0
    "Client ids this connection introduced into the document."
    duplicates: int = 0
    """Received updates the document already held entirely: dropped on arrival (not applied,
    not stored, not relayed, not charged to any bound)."""


_MESSAGE: Final = 0  # payload is a whole encoded message
_UPDATE: Final = 1  # payload is a raw update (coalescable)
_STEP2: Final = 2  # payload is the raw update of a step 2 (split if too large)
_STEP1: Final = 3  # payload is our state vector (cut if too large)
_AWARENESS: Final = 4  # payload is a tuple of awareness entries (split if too large)
_Item = tuple[int, Any]


class Connection:
    """One peer connection served by :meth:`SyncRoom.serve` (read-only view for callers)."""

    def __init__(self, room: SyncRoom, channel: Channel, label: str) -> None:
        self.room = room
        "The room this connection belongs to."
        self.channel = channel
        "The underlying transport."
        self.label = label
        "A human-readable name (used in logs and events)."
        self.stats = SyncCounters()
        "Traffic counters."
        self.synced = anyio.Event()
        "Set once the remote's sync step 2 has been applied."
        self.remote_clients: set[int] = set()
        "Awareness client ids the remote announced (non-null states) on this connection."
        self.close_reason: str | None = None
        "Why the connection ended (``remote-closed``, a protocol error code, ...)."
        self._echo = False  # echo the update being applied (see _on_document_update)
        self._outbox: deque[_Item] = deque()
        self._outbox_size = room.options.outbox_size
        self._wakeup: anyio.Event | None = None
        self._scope = anyio.CancelScope()
        # a channel that can send without waiting (aiortc's: nothing waiting to go out) takes
        # an update straight from the document's event while the sender is idle: no task
        # switch per delivered message
        self._try_send: Callable[[bytes], bool] | None = getattr(channel, "try_send", None)
        self._idle = False  # the send loop waits for work (its outbox is empty)
        self._paced_until = 0.0  # monotonic time before which a burst's next update waits

    def __repr__(self) -> str:
        return f"<Connection {self.label!r} reason={self.close_reason!r}>"

    @property
    def queued(self) -> int:
        """Items waiting in the outbox."""
        return len(self._outbox)

    def _enqueue(self, item: _Item) -> None:
        if self.close_reason is not None:
            return
        if (
            self._idle
            and not self._outbox
            and item[0] == _UPDATE
            and self._try_send is not None
            and _now() >= self._paced_until
        ):
            message = encode_update(item[1])
            if self._try_send(message):  # in order: nothing queued here or in the channel
                self._sent(message)
                self._paced_until = _now() + self.room.options.burst_interval
                return
        if len(self._outbox) >= self._outbox_size:
            log.warning("%s: outbox full, closing connection", self.label)
            self._fail("outbox-overflow")
            return
        self._outbox.append(item)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            self._idle = False  # no direct send may overtake what is now queued
            wakeup.set()

    def _sent(self, message: bytes) -> None:
        """Count one message handed to the channel (direct send or the send loop)."""
        self.stats.messages_out += 1
        self.stats.bytes_out += len(message)

    async def _next(self) -> _Item:
        while not self._outbox:
            wakeup = self._wakeup = anyio.Event()
            self._idle = True
            try:
                await wakeup.wait()
            finally:
                self._idle = False
        return self._outbox.popleft()

    def _fail(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._scope.cancel()


@dataclass(frozen=True, slots=True)
class ConnectionAdded:
    """A connection started (its step 1 is already queued)."""

    connection: Connection


@dataclass(frozen=True, slots=True)
class ConnectionRemoved:
    """A connection ended; ``connection.close_reason`` says why."""

    connection: Connection


@dataclass(frozen=True, slots=True)
class DocumentUpdated:
    """The document changed: ``origin`` is a :class:`Connection` for remote updates."""

    update: bytes
    origin: Any


RoomEvent = ConnectionAdded | ConnectionRemoved | DocumentUpdated
"""Everything :meth:`SyncRoom.observe` callbacks receive."""


class SyncRoom:
    """A document + awareness shared with every connection passed to :meth:`serve`.

    Args:
        document: the document (a fresh one by default).
        awareness: the awareness (default: ``{}`` state for the document's client id, like
            y-protocols; pass ``Awareness(doc.client_id, state=None)`` to stay hidden).
        options: see :class:`SyncOptions`.
    """

    def __init__(
        self,
        document: Document | None = None,
        awareness: Awareness | None = None,
        *,
        options: SyncOptions | None = None,
    ) -> None:
        self.document = document if document is not None else Document()
        "The shared document."
        self.awareness = awareness if awareness is not None else Awareness(self.document.client_id)
        "The shared awareness."
        self.options = options if options is not None else SyncOptions()
        "The room's options."
        self.connections: list[Connection] = []
        "Connections currently served."
        self.callback_errors = 0
        "Room-event callbacks that raised (they are logged)."
        self.offloaded = 0
        """Updates over ``options.offload_above`` bytes scanned or split in a worker thread
        instead of on the event loop every room shares."""
        self._observers: Observers[Callable[[RoomEvent], None]] = Observers()
        self._changed: anyio.Event | None = None
        self._reserved_clients = 0  # client sections of parked updates (charged on arrival)
        self._client_bytes: dict[int, int] = {}  # per client id (bounded by the state vector)
        self._full_logged = False
        self._doc_handle = self.document.observe(self._on_document_update)
        self._aw_handle = self.awareness.observe(self._on_awareness_event)

    # ------------------------------------------------------------------ events

    def observe(self, callback: Callable[[RoomEvent], None]) -> int:
        """Call ``callback(event)`` for every :data:`RoomEvent`; returns a handle."""
        return self._observers.add(callback)

    def unobserve(self, handle: int) -> None:
        """Remove a callback added by :meth:`observe`."""
        self._observers.remove(handle)

    def _emit(self, event: RoomEvent) -> None:
        for callback in self._observers:
            try:
                callback(event)
            except Exception:
                self.callback_errors += 1
                log.exception("room event callback %r failed on %r", callback, event)
        self._notify()

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def close(self) -> None:
        """Stop observing the document/awareness (connections end with their channels)."""
        self.document.unobserve(self._doc_handle)
        self.awareness.unobserve(self._aw_handle)
        for connection in list(self.connections):
            connection._fail("room-closed")

    # ------------------------------------------------------------------ broadcast

    def _on_document_update(self, update: bytes, origin: Any) -> None:
        options = self.options
        if isinstance(origin, Connection):
            for connection in self.connections:
                if connection is origin:
                    # Echo when asked to, or when pending structs may have been released
                    # (they came from elsewhere and the origin may lack them).
                    if options.echo_to_origin or origin._echo:
                        connection._enqueue((_UPDATE, update))
                elif options.relay:
                    connection._enqueue((_UPDATE, update))
        else:
            for connection in self.connections:
                connection._enqueue((_UPDATE, update))
        if self._observers:
            self._emit(DocumentUpdated(update, origin))
        elif self._changed is not None:
            self._notify()

    def _on_awareness_event(self, event: AwarenessEvent) -> None:
        clients = event.clients
        if not clients:
            return
        entries = self.awareness.encode(clients)
        remote = isinstance(event.origin, Connection)
        for connection in self.connections:
            if remote and connection is not event.origin and not self.options.relay:
                continue
            connection._enqueue((_AWARENESS, entries))

    # ------------------------------------------------------------------ serving

    async def wait_connected_synced(self) -> None:
        """Wait until at least one connection exists and every connection is synced."""
        while True:
            if self.connections and all(c.synced.is_set() for c in self.connections):
                return
            await self._changed_or_synced()

    async def _changed_or_synced(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        changed = self._changed
        async with anyio.create_task_group() as tg:

            async def wait(event: anyio.Event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(wait, changed)
            for connection in self.connections:
                if not connection.synced.is_set():
                    tg.start_soon(wait, connection.synced)

    async def serve(self, channel: Channel, label: str = "peer") -> None:
        """Run one connection until it closes; returns normally for every peer-caused end.

        Raises nothing for remote close, protocol errors or outbox overflow (see
        ``Connection.close_reason`` via :class:`ConnectionRemoved`). Cancelling the caller
        closes the channel with reason ``"cancelled"``.
        """
        connection = Connection(self, channel, label)
        connection._enqueue((_STEP1, self.document.state_vector()))
        entries = self.awareness.encode(self.awareness.states.keys())
        if entries:
            connection._enqueue((_AWARENESS, entries))
        self.connections.append(connection)
        self._emit(ConnectionAdded(connection))
        try:
            with connection._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._send_loop, connection)
                    await self._receive_loop(connection)
                    tg.cancel_scope.cancel()
        finally:
            if connection.close_reason is None:
                connection.close_reason = "cancelled"
            self.connections.remove(connection)
            connection._outbox.clear()
            with anyio.CancelScope(shield=True):
                await channel.close(connection.close_reason)
                self._emit(ConnectionRemoved(connection))
            log.debug("%s: closed (%s)", label, connection.close_reason)

    async def _receive_loop(self, connection: Connection) -> None:
        stats = connection.stats
        while True:
            try:
                data = await connection.channel.recv()
            except TransportError as e:
                connection.close_reason = connection.close_reason or "remote-closed"
                log.debug("%s: channel ended: %s", connection.label, e)
                return
            stats.messages_in += 1
            stats.bytes_in += len(data)
            if not stats.messages_in % _RECV_YIELD_EVERY:
                # a channel's recv need not yield when a message is waiting: stay fair to
                # the other connections and rooms on this event loop
                await anyio.lowlevel.checkpoint()
            try:
                await self._handle(connection, data)
            except ProtocolError as e:
                if e.code in _IGNORED_CODES:
                    stats.ignored += 1
                    log.info("%s: ignoring message: %s", connection.label, e)
                    continue
                log.warning("%s: closing after bad message: %s", connection.label, e)
                connection.close_reason = e.code
                return

    async def _handle(self, connection: Connection, data: bytes) -> None:
        message = decode_message(data, max_size=self.options.max_incoming_message_size)
        if isinstance(message, SyncStep1):
            reply = self.document.get_update(message.state_vector)
            connection._enqueue((_STEP2, reply))
        elif isinstance(message, SyncStep2):
            await self._apply_remote(connection, message.update)
            connection.synced.set()
            self._notify()
        elif isinstance(message, SyncUpdate):
            await self._apply_remote(connection, message.update)
        elif isinstance(message, AwarenessMessage):
            for entry in message.entries:
                if entry.state is None:
                    connection.remote_clients.discard(entry.client_id)
                elif len(connection.remote_clients) < self.awareness.max_clients:
                    connection.remote_clients.add(entry.client_id)
            self.awareness.apply(message.entries, origin=connection)
        elif isinstance(message, QueryAwareness):
            connection._enqueue((_AWARENESS, self.awareness.encode()))
        elif isinstance(message, BcPeerId):
            connection.stats.ignored += 1
            log.info("%s: ignoring BroadcastChannel-only message", connection.label)

    # ------------------------------------------------------------------ remote updates

    async def _apply_remote(self, connection: Connection, update: bytes) -> None:
        """Apply one update from a connection within the room's bounds (module docstring)."""
        options = self.options
        document = self.document
        sv = document.state_vector()
        if len(update) <= options.offload_above and document.holds(update, sv):
            # a duplicate (flooding delivers every update once per path): costs one Yrs
            # call, and never reaches the bounds, the observers, the store or the relay
            if update != b"\x00\x00":  # (an empty step 2 is not a duplicate)
                connection.stats.duplicates += 1
            return
        sections = _update_sections(update)
        if not document.parked:
            self._reserved_clients = 0  # everything parked has integrated (or was dropped)
        before = _sv_count(sv)
        near_limit = (
            connection.stats.new_clients + sections > options.max_new_clients_per_connection
            or len(sv) + (sections + self._reserved_clients) * _MAX_SV_ENTRY
            > options.max_state_vector_bytes
            or document.parked_bytes_of(connection) + len(update)
            > options.max_parked_bytes_per_connection
            or document.parked_bytes + len(update) > options.max_parked_bytes
        )
        first = _first_client(update) if sections == 1 else None
        scan: UpdateScan | None = None
        if len(update) > options.offload_above:
            self.offloaded += 1
            scan = await anyio.to_thread.run_sync(_scan, update)
        elif near_limit or (sections > 1 and first is None):
            scan = _scan(update)
        if scan is not None:
            self._charge(scan.sizes)
            if near_limit:
                self._check_bounds(connection, update, scan)
        elif first is not None:
            self._charge({first: len(update)})
        connection._echo = document.parked > 0
        integrated = document.apply_update(update, origin=connection, scan=scan)
        after = _sv_count(document.state_vector())
        connection.stats.new_clients += max(0, after - before)
        if not integrated:
            # parked: the clients it may add once it integrates are charged now
            connection.stats.new_clients += sections
            self._reserved_clients += sections

    def _charge(self, sizes: dict[int, int]) -> None:
        """Count content bytes per client id; refuse an update that takes one over the cap.

        Raises:
            ProtocolError: ``client-too-large``.
        """
        cap = self.options.max_client_bytes
        sent = self._client_bytes
        if any(sent.get(client, 0) + size > cap for client, size in sizes.items()):
            raise ProtocolError(
                "client-too-large", f"a client id may send at most {cap} bytes of content"
            )
        for client, size in sizes.items():
            sent[client] = sent.get(client, 0) + size

    def _check_bounds(self, connection: Connection, update: bytes, scan: UpdateScan) -> None:
        """The exact check near a limit (see the module docstring).

        Raises:
            ProtocolError: ``too-many-clients`` or ``pending-overflow``.
        """
        options = self.options
        document = self.document
        sv_bytes = document.state_vector()
        sv = decode_state_vector(sv_bytes)
        new = {client: clock for client, clock in scan.ends.items() if client not in sv}
        if connection.stats.new_clients + len(new) > options.max_new_clients_per_connection:
            raise ProtocolError(
                "too-many-clients",
                f"connection would introduce more than {options.max_new_clients_per_connection}"
                " client ids",
            )
        reserved = {c: 0 for c in document.parked_clients() if c not in sv and c not in new}
        added = len(encode_state_vector({**new, **reserved})) - 1
        if len(sv_bytes) + added > options.max_state_vector_bytes:
            if not self._full_logged:
                self._full_logged = True
                log.warning(
                    "document reached %d state-vector bytes (%d clients): refusing new clients",
                    len(sv_bytes),
                    len(sv),
                )
            raise ProtocolError(
                "too-many-clients",
                f"state vector would exceed {options.max_state_vector_bytes} bytes",
            )
        integrable = all(sv.get(client, 0) >= clock for client, clock in scan.needs.items())
        if not integrable and (
            document.parked_bytes_of(connection) + len(update)
            > options.max_parked_bytes_per_connection
            or document.parked_bytes + len(update) > options.max_parked_bytes
        ):
            raise ProtocolError(
                "pending-overflow", "too many updates waiting for missing dependencies"
            )

    async def _send_loop(self, connection: Connection) -> None:
        options = self.options
        outbox = connection._outbox
        channel = connection.channel
        wait_writable: Callable[[], Awaitable[None]] | None = getattr(
            channel, "wait_writable", None
        )
        try:
            while True:
                kind, payload = await connection._next()
                if kind == _UPDATE:
                    if wait_writable is not None:
                        # a burst: let updates queue up behind this one and go out merged
                        # (fewer, larger messages): while the previous one is
                        # unacknowledged (Nagle, bounded in time) ...
                        if not getattr(channel, "writable", True):
                            with anyio.move_on_after(options.coalesce_wait):
                                await wait_writable()
                        # ... and at most one message per burst_interval
                        delay = connection._paced_until - _now()
                        if delay > 0:
                            await anyio.sleep(delay)
                    run = [payload]
                    size = len(payload)
                    while len(run) < options.coalesce_max_updates and size < (
                        options.coalesce_max_bytes
                    ):
                        if not outbox or outbox[0][0] != _UPDATE:
                            break
                        nxt = outbox.popleft()[1]
                        run.append(nxt)
                        size += len(nxt)
                    more = bool(outbox) and outbox[0][0] == _UPDATE
                    if len(run) > 1:
                        connection.stats.updates_coalesced += len(run) - 1
                        payload = _merge(run)
                        if not more:
                            # our own typing since the last message: re-encoded from the
                            # document (squashed items), when that is what the run holds
                            payload = self.document.compact_own(payload)
                    messages = await self._frame(channel, payload, encode_update, encode_update)
                    if wait_writable is not None:
                        # pace the next message, unless this one could not take every
                        # queued update (then the rest follows at once: the outbox must
                        # not grow while we wait)
                        connection._paced_until = 0.0 if more else _now() + options.burst_interval
                elif kind == _STEP2:
                    messages = await self._frame(channel, payload, encode_update, encode_sync_step2)
                elif kind == _STEP1:
                    messages = [_step1(payload, channel.max_message_size)]
                elif kind == _AWARENESS:
                    messages = self._awareness_messages(connection, payload)
                else:
                    messages = [payload]
                for message in messages:
                    await channel.send(message)
                    connection._sent(message)
                    if len(messages) > 1:
                        await anyio.lowlevel.checkpoint()  # pace the pieces of a split
                if outbox:
                    # a burst: let the transport flush before the next message (a channel's
                    # send need not yield; firing thousands of sends in one turn overflows
                    # aiortc's UDP path, performance-notes §3)
                    await anyio.lowlevel.checkpoint()
        except TransportError as e:
            log.debug("%s: send failed: %s", connection.label, e)
            connection._fail(connection.close_reason or "remote-closed")
        except ProtocolError as e:
            log.warning("%s: cannot send: %s", connection.label, e)
            connection._fail(e.code)

    def _awareness_messages(
        self, connection: Connection, entries: tuple[AwarenessEntry, ...]
    ) -> list[bytes]:
        messages, skipped = encode_awareness_messages(entries, connection.channel.max_message_size)
        if skipped:
            connection.stats.ignored += skipped
            log.info("%s: %d awareness states too large to send", connection.label, skipped)
        return messages

    async def _frame(
        self,
        channel: Channel,
        update: bytes,
        encode: Callable[[bytes], bytes],
        encode_last: Callable[[bytes], bytes],
    ) -> list[bytes]:
        message = encode_last(update)
        limit = channel.max_message_size
        if len(message) <= limit:
            return [message]
        if len(update) > self.options.offload_above:
            # splitting is pure Python over the whole update: off the event loop
            self.offloaded += 1
            pieces = await anyio.to_thread.run_sync(split_update, update, limit - _SYNC_HEADER)
        else:
            pieces = split_update(update, limit - _SYNC_HEADER)
        framed = [encode(piece) for piece in pieces[:-1]]
        framed.append(encode_last(pieces[-1]))
        return framed


_MERGE_FAN_IN: Final = 32


def _merge(updates: list[bytes]) -> bytes:
    """``pycrdt.merge_updates`` in rounds of at most :data:`_MERGE_FAN_IN` updates: Yrs merges
    n updates in time that grows with n times the structs (500 keystrokes at once: ~1.8 ms;
    in rounds of 32: a fraction), and the result is the same valid update."""
    while len(updates) > _MERGE_FAN_IN:
        updates = [
            pycrdt.merge_updates(*updates[i : i + _MERGE_FAN_IN])
            for i in range(0, len(updates), _MERGE_FAN_IN)
        ]
    return pycrdt.merge_updates(*updates) if len(updates) > 1 else updates[0]


def _scan(update: bytes) -> UpdateScan:
    """:func:`scan_update` (runs in a worker thread for large updates: pure Python on bytes)."""
    return scan_update(update)


def _update_sections(update: bytes) -> int:
    """The number of client sections an update claims (its first varUint), O(1).

    Raises:
        ProtocolError: ``bad-update`` if it does not even start with a varUint.
    """
    try:
        return Decoder(update[:10]).read_var_uint()
    except ProtocolError as e:
        raise ProtocolError("bad-update", str(e)) from None


def _first_client(update: bytes) -> int | None:
    """The client id of a one-section update, read from its header in O(1) (None if the
    header does not parse: the strict paths report it)."""
    try:
        decoder = Decoder(update[:40])
        decoder.read_var_uint()  # sections (1)
        decoder.read_var_uint()  # structs
        return decoder.read_var_uint()
    except ProtocolError:
        return None


def _sv_count(state_vector: bytes) -> int:
    return Decoder(state_vector[:10]).read_var_uint()


def _step1(state_vector: bytes, limit: int) -> bytes:
    """Our sync step 1, with the state vector cut to the clients with the largest clocks if
    the whole one would not fit the remote's limit (it then sends us a little more in its
    step 2 than needed, instead of never receiving our step 1 at all)."""
    message = encode_sync_step1(state_vector)
    if len(message) <= limit:
        return message
    entries = sorted(decode_state_vector(state_vector).items(), key=lambda e: -e[1])
    keep = max(0, (limit - _SYNC_HEADER) // _MAX_SV_ENTRY)
    log.warning("state vector of %d clients over %d bytes: sending %d", len(entries), limit, keep)
    return encode_sync_step1(encode_state_vector(dict(entries[:keep])))


def connection_of(origin: Any) -> Connection | None:
    """The :class:`Connection` an update origin refers to, or ``None`` for local edits."""
    return origin if isinstance(origin, Connection) else None
