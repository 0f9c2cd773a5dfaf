"""A y-webrtc room over aiortc: signaling + one :class:`RemotePeer` per remote + a sync room.

:class:`WebrtcRoom` joins one room on a y-webrtc signaling server (ours or ``bin/server.js``)
and attaches every open data channel to a sync room (``await sync.serve(channel, label=...)``) —
the sync room owns the document, awareness and the y-protocols conversation. It follows y-webrtc:
announce on (re)connect, initiate towards announced peers below ``max_conns``, answer every
offer, re-announce after a connection closes, and encrypt every signaling payload in
password rooms (payloads that don't decrypt are ignored).

Example:
    >>> async with WebrtcRoom("r", "ws://127.0.0.1:8000/signaling", sync) as room:  # doctest: +SKIP
    ...     await room.wait_for_peers(1)
    ...     print(room.peers())
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from collab.crypto import derive_key, open_payload, seal_payload
from collab.errors import ProtocolError
from collab.peer.budget import ConnectionBudget
from collab.peer.config import PeerConfig
from collab.peer.datachannel import DataChannel
from collab.peer.remote import ConnectionStats, RemotePeer
from collab.peer.signaling_client import SignalingClient
from collab.service import Service
from collab.types import Channel

__all__ = ["ChannelServer", "PeerInfo", "RoomCounters", "WebrtcRoom"]

log = logging.getLogger(__name__)

_MAX_PEER_ID = 128
_MAX_SIGNAL_QUEUE = 1024
_MAX_DEFERRED = 16
"""Newcomers (their announce, or their offer and first candidates) remembered per room while
no pending slot is free; peer-chosen ids, so bounded (an offer is at most 64 KiB)."""
_MAX_DEFERRED_CANDIDATES = 16
"""Trickled candidates kept with a deferred offer."""
_DEFERRED_TTL = 30.0
"""Seconds a deferred announce is retried before it is forgotten."""
_DEFERRED_RETRY = 0.25
"""Seconds between retries of deferred announces."""


@dataclass(slots=True)
class _Deferred:
    """A newcomer waiting for a pending slot: its announce, or its offer (and candidates)."""

    since: float
    offer: Any = None
    token: Any = None
    candidates: list[Any] = field(default_factory=list)


class ChannelServer(Protocol):
    """What a room needs from a sync room: serve one channel until it closes."""

    def serve(self, channel: Channel, *, label: str) -> Awaitable[Any]:
        """Run the y-protocols conversation on ``channel``; return when it closes."""
        ...


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One remote peer of a room (``WebrtcRoom.peers()``)."""

    peer_id: str
    state: str
    initiator: bool


@dataclass(slots=True)
class RoomCounters:
    """Signaling-level counters of a room."""

    announces_sent: int = 0
    signals_sent: int = 0
    payloads_in: int = 0
    undecryptable: int = 0
    malformed: int = 0
    connections: int = 0
    refused: int = 0
    """Offers ignored: ``max_remotes`` connections exist, or no pending slot could be freed
    (``PeerConfig.max_pending`` / ``max_pending_total``, file descriptors)."""
    glare_rejected: int = 0
    """Offers rejected by the glare rule (closed connections included)."""
    remote_failures: int = 0
    """Connections that ended with an unexpected exception (logged with its traceback; only
    that connection was closed)."""
    close_reasons: dict[str, int] = field(default_factory=dict)
    """Closed connections by reason (``connect-timeout``, ``bad-sdp``, ``evicted``, ...)."""


class WebrtcRoom(Service):
    """Join room ``name`` and serve every WebRTC peer in it with ``sync``.

    A :class:`~collab.service.Service`: ``async with room:`` or ``await tg.start(room.run)``.
    Each remote peer runs as a child task behind its own error boundary: whatever one remote
    sends, at worst *its* connection closes (coded reason, counted in
    :attr:`RoomCounters.close_reasons`); the room keeps answering everyone else.

    Args:
        name: the y-webrtc room name (signaling topic, PBKDF2 salt).
        signaling: a ``ws://`` URL (the room then runs its own client), or a running
            :class:`SignalingClient` shared with other rooms (its owner runs it).
        sync: the sync room (``sync.serve(channel, label=peer_id)``), e.g. ``collab.sync``'s.
        password: the room password (y-webrtc's ``password`` option), or None.
        config: ICE servers, limits, timers.
        budget: the process-wide pending-connection budget shared by rooms (a private one by
            default).

    Example:
        >>> async with WebrtcRoom("notes", "ws://127.0.0.1:4444", sync) as room:  # doctest: +SKIP
        ...     await room.wait_for_peers(1)
    """

    def __init__(
        self,
        name: str,
        signaling: str | SignalingClient,
        sync: ChannelServer,
        *,
        password: str | None = None,
        config: PeerConfig | None = None,
        budget: ConnectionBudget | None = None,
    ) -> None:
        if not name:
            raise ValueError("room name must not be empty")
        self.name = name
        self.config = config or (
            signaling.config if isinstance(signaling, SignalingClient) else PeerConfig()
        )
        self._signaling = (
            signaling
            if isinstance(signaling, SignalingClient)
            else SignalingClient(signaling, self.config)
        )
        self.sync = sync
        self.password = password
        self._owns_signaling = not isinstance(signaling, SignalingClient)
        self.budget = (
            budget
            if budget is not None
            else ConnectionBudget(
                self.config.max_pending_total,
                fd_reserve=self.config.fd_reserve,
                min_age=self.config.pending_min_age,
            )
        )
        self.peer_id = str(uuid.uuid4())
        self.counters = RoomCounters()
        self._key: bytes | None = None
        self._remotes: dict[str, RemotePeer] = {}
        self._deferred: dict[str, _Deferred] = {}
        self._retrying = False
        self._tg: TaskGroup | None = None
        self._closing = False
        self._changed = anyio.Event()
        self._queue_send, self._queue_recv = anyio.create_memory_object_stream[Any](
            _MAX_SIGNAL_QUEUE
        )

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Derive the key (password rooms), subscribe and announce, then serve signals and
        remote peers until cancelled; leaving unsubscribes and closes every connection."""
        if self._tg is not None:
            raise RuntimeError("room already running")
        if self.password is not None:
            self._key = await anyio.to_thread.run_sync(derive_key, self.password, self.name)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._owns_signaling:
                    await tg.start(self._signaling.run)
                elif not self._signaling.active:
                    raise RuntimeError(
                        "the shared SignalingClient is not running: run it first "
                        "(`async with client:` or `await tg.start(client.run)`)"
                    )
                tg.start_soon(self._process)
                await self._signaling.subscribe(
                    self.name, on_message=self._on_signaling_message, on_connect=self._on_connect
                )
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._closing = True
            self._tg = None
            with anyio.CancelScope(shield=True):
                for remote in list(self._remotes.values()):
                    remote.close("room closed")
                    self.budget.forget(remote)
                self._remotes.clear()
                with anyio.move_on_after(2):
                    await self._signaling.unsubscribe(self.name)
                self._queue_send.close()
                self._queue_recv.close()
                self._notify()

    # ------------------------------------------------------------------ public API
    @property
    def signaling(self) -> SignalingClient:
        """The signaling client (possibly shared with other rooms)."""
        return self._signaling

    def pending(self) -> list[RemotePeer]:
        """Connections being set up (offered, answering, connecting)."""
        return [r for r in self._remotes.values() if r.pending]

    def peers(self) -> list[PeerInfo]:
        """The remote peers this room knows (any state)."""
        return [PeerInfo(r.remote_id, r.state, r.initiator) for r in self._remotes.values()]

    def connected_peers(self) -> list[str]:
        """Peer ids with an open data channel."""
        return [r.remote_id for r in self._remotes.values() if r.is_open]

    def channel(self, peer_id: str) -> DataChannel | None:
        """The open data channel to ``peer_id`` (for diagnostics and tests)."""
        remote = self._remotes.get(peer_id)
        return remote.channel if remote is not None and remote.is_open else None

    async def stats(self) -> list[ConnectionStats]:
        """Per-connection stats: state, SCTP RTT, messages/bytes in and out."""
        return [await r.stats() for r in list(self._remotes.values())]

    async def wait_for_peers(self, count: int) -> list[str]:
        """Wait until at least ``count`` peers have an open data channel (use with
        ``anyio.fail_after``); returns their ids."""
        while len(self.connected_peers()) < count:
            await self._changed.wait()
        return self.connected_peers()

    async def flush(self) -> None:
        """Best effort: let queued sync messages reach aiortc before a polite close."""
        for _ in range(10):
            await anyio.lowlevel.checkpoint()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checked on every connection change."""
        while not predicate():
            await self._changed.wait()

    async def wait_changed(self) -> None:
        """Wait for the next connection change (a remote added, opened, closed, refused)."""
        await self._changed.wait()

    # ------------------------------------------------------------------ signaling in
    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _on_connect(self) -> None:
        self._enqueue(("announce-self", None))

    def _on_signaling_message(self, data: Any) -> None:
        self._enqueue(("data", data))

    def _enqueue(self, item: Any) -> None:
        try:
            self._queue_send.send_nowait(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return  # the room is closing
        except anyio.WouldBlock:
            self.counters.malformed += 1
            log.warning("room %r: signaling queue full, dropped a message", self.name)

    async def _process(self) -> None:
        async for kind, data in self._queue_recv:
            if kind == "announce-self":
                await self._announce()
                continue
            self.counters.payloads_in += 1
            try:
                message = self._decode(data)
                if message is not None:
                    await self._dispatch(message)
            except Exception:  # per-message boundary: a hostile payload never ends the room
                self.counters.malformed += 1
                log.exception("room: failed on a signaling payload; ignored it")

    def _decode(self, data: Any) -> dict[str, Any] | None:
        if self._key is not None:
            if not isinstance(data, str):
                return None  # y-webrtc: with a key, only string payloads are considered
            try:
                data = open_payload(data, self._key)
            except ProtocolError as e:
                self.counters.undecryptable += 1
                log.debug("room %r: ignored an undecryptable payload (%s)", self.name, e.code)
                return None
        if not isinstance(data, dict):
            return None
        return data

    async def _dispatch(self, message: dict[str, Any]) -> None:
        sender = message.get("from")
        if not isinstance(sender, str) or not sender or len(sender) > _MAX_PEER_ID:
            self.counters.malformed += 1
            return
        if sender == self.peer_id:
            return  # our own echo
        to = message.get("to")
        if to is not None and to != self.peer_id:
            return
        kind = message.get("type")
        if kind == "announce":
            remote = self._remotes.get(sender)
            if remote is not None:
                remote.deliver("announce")
            elif len(self._remotes) < min(self.config.max_conns, self.config.max_remotes):
                if self._admit():
                    self._open_remote(sender, initiator=True)
                else:
                    # a newcomer announces once and then waits for us to offer: remember it
                    # and offer as soon as a pending slot frees, instead of losing it
                    self._defer(sender)
        elif kind == "signal" and to == self.peer_id:
            signal = message.get("signal")
            remote = self._remotes.get(sender)
            if remote is None:
                kind = signal.get("type") if isinstance(signal, dict) else None
                deferred = self._deferred.get(sender)
                if kind == "candidate" and deferred is not None and deferred.offer is not None:
                    if len(deferred.candidates) < _MAX_DEFERRED_CANDIDATES:
                        deferred.candidates.append(signal)
                    return
                if kind != "offer":
                    return  # an answer/candidate for a connection we no longer have
                if len(self._remotes) >= self.config.max_remotes:
                    self._refuse(f"{len(self._remotes)} connections")
                    return
                if not self._admit():
                    # the remote waits for our answer (simple-peer never gives up): keep
                    # its offer and answer it as soon as a pending slot frees
                    self._defer(sender, offer=signal, token=message.get("token"))
                    return
                remote = self._open_remote(sender, initiator=False)
            remote.deliver("signal", signal, message.get("token"))
        else:
            self.counters.malformed += 1

    def _defer(self, sender: str, *, offer: Any = None, token: Any = None) -> None:
        previous = self._deferred.pop(sender, None)
        if offer is None and previous is not None and previous.offer is not None:
            offer, token = previous.offer, previous.token  # an announce after the offer
        if len(self._deferred) >= _MAX_DEFERRED:
            self._deferred.pop(next(iter(self._deferred)))
        self._deferred[sender] = _Deferred(time.monotonic(), offer, token)
        if not self._retrying and self._tg is not None:
            self._retrying = True
            self._tg.start_soon(self._retry_deferred)

    async def _retry_deferred(self) -> None:
        """Serve deferred newcomers as pending slots free up: answer a kept offer, or offer
        to an announced peer (bounded in count and time)."""
        try:
            while self._deferred:
                await anyio.sleep(_DEFERRED_RETRY)
                now = time.monotonic()
                for sender, entry in list(self._deferred.items()):
                    if now - entry.since > _DEFERRED_TTL or sender in self._remotes:
                        del self._deferred[sender]
                        continue
                    cap = self.config.max_remotes if entry.offer else self.config.max_conns
                    if len(self._remotes) >= min(cap, self.config.max_remotes):
                        break
                    pending = list(self.pending())
                    if self.budget.admit(pending, self.config.max_pending, count=False) is not None:
                        break
                    del self._deferred[sender]
                    if entry.offer is None:
                        self._open_remote(sender, initiator=True)
                        continue
                    remote = self._open_remote(sender, initiator=False)
                    remote.deliver("signal", entry.offer, entry.token)
                    for candidate in entry.candidates:
                        remote.deliver("signal", candidate, entry.token)
        finally:
            self._retrying = False

    def _admit(self) -> bool:
        """Room for one more pending connection (may evict a stale one, see
        :mod:`collab.peer.budget`)."""
        reason = self.budget.admit(list(self.pending()), self.config.max_pending)
        if reason is None:
            return True
        self._refuse(reason)
        return False

    def _refuse(self, why: str) -> None:
        self.counters.refused += 1
        self._notify()
        if self.counters.refused in (1, 10, 100) or self.counters.refused % 1000 == 0:
            log.warning("room: ignored an offer (%s), %d so far", why, self.counters.refused)

    # ------------------------------------------------------------------ signaling out
    async def _publish(self, payload: dict[str, Any]) -> bool:
        data: Any = payload if self._key is None else seal_payload(payload, self._key)
        return await self._signaling.publish(self.name, data)

    async def _announce(self) -> None:
        if await self._publish({"type": "announce", "from": self.peer_id}):
            self.counters.announces_sent += 1

    async def _send_signal(self, to: str, token: float, signal: dict[str, Any]) -> None:
        sent = await self._publish(
            {"to": to, "from": self.peer_id, "type": "signal", "token": token, "signal": signal}
        )
        if sent:
            self.counters.signals_sent += 1

    # ------------------------------------------------------------------ connections
    def _open_remote(self, remote_id: str, *, initiator: bool) -> RemotePeer:
        remote = RemotePeer(
            remote_id,
            initiator=initiator,
            config=self.config,
            send_signal=self._send_signal,
            serve_channel=self._serve_channel,
            local_state_vector=self._state_vector_source(),
        )
        if self._tg is None:
            raise RuntimeError("room is not running")
        self._remotes[remote_id] = remote
        self.budget.track(remote)
        self.counters.connections += 1
        self._tg.start_soon(self._run_remote, remote)
        self._notify()
        return remote

    async def _run_remote(self, remote: RemotePeer) -> None:
        """One remote's task: its failure, whatever it is, ends only this connection."""
        try:
            await remote.run()
        except Exception:  # the per-remote boundary (bugs included): logged, counted, closed
            self.counters.remote_failures += 1
            remote.close_reason = remote.close_reason or "crashed"
            log.exception("room: connection to a remote peer crashed; closed it")
        finally:
            self.budget.forget(remote)
            reason = remote.close_reason or "closed"
            self.counters.close_reasons[reason] = self.counters.close_reasons.get(reason, 0) + 1
            self.counters.glare_rejected += remote.glare_rejected
            if self._remotes.get(remote.remote_id) is remote:
                del self._remotes[remote.remote_id]
            self._notify()
            if not self._closing and reason != "room closed":
                # y-webrtc's announceSignalingInfo after a conn closes: lets the other side
                # (whose conn may be dead too) initiate again.
                self._enqueue(("announce-self", None))

    def _state_vector_source(self) -> Callable[[], bytes] | None:
        document = getattr(self.sync, "document", None)
        state_vector = getattr(document, "state_vector", None)
        if self.config.large_sync_threshold <= 0 or not callable(state_vector):
            return None

        def source() -> bytes:
            value = state_vector()
            if not isinstance(value, bytes):
                raise ProtocolError("bad-value", "sync.document.state_vector() is not bytes")
            return value

        return source

    async def _serve_channel(self, remote: RemotePeer, channel: DataChannel) -> None:
        self._notify()
        try:
            await self.sync.serve(channel, label=remote.remote_id)
        finally:
            self._notify()
