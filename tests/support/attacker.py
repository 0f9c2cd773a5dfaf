"""The attacker's toolkit: raw y-webrtc signaling, hand-made SDP offers and a real aiortc data
channel to the archival replica, built only on ``websockets``, ``aiortc`` and byte encoders.

Deliberately independent of ``collab.peer`` (the runtime under test is rewritten under these
tests): nothing here follows y-webrtc's rules unless an attack needs it to.

* :class:`RawSignaling` — one signaling WebSocket: subscribe, publish any payload with any
  ``from``, read everything the server fans out;
* :func:`replica_peer_id` — learn the replica's signaling peer id in a fresh room (the
  replica joins every room opened on its server and announces itself);
* :func:`offer_sdp` / :func:`strip_candidates` — a real aiortc offer's SDP text to send as
  is, mutate, or strip of candidates (ICE can then never complete);
* :class:`ReplicaChannel` — our own offer, the replica's answer, an open data channel over
  which arbitrary bytes go, with back-pressure;
* :class:`Hammer` — a persistent sender: reconnects when the replica cuts it off, and can
  wait until the replica has handled everything it sent.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Json = dict[str, Any]

SEND_HIGH_WATER = 1 << 20
"""Stop queueing data-channel bytes above this ``bufferedAmount`` (aiortc buffers in memory)."""

_tokens = itertools.count(1)


def new_peer_id() -> str:
    """A y-webrtc style peer id (UUIDv4)."""
    return str(uuid.uuid4())


def small_token() -> float:
    """A glare token far below a browser's ``Date.now() + Math.random()``."""
    return float(next(_tokens)) + 0.5


class RawSignaling:
    """A raw signaling WebSocket. Use as ``async with RawSignaling(url) as sig``.

    Every frame received is parsed and kept in :attr:`messages` (non-JSON frames are kept as
    ``{"raw": text}``); :meth:`wait_for` waits on arrivals, never on time.

    With ``tolerant=True`` sends on a socket the server closed are dropped silently (and
    counted in :attr:`dropped`): being cut off is a defense, not a failure of the attack.
    """

    def __init__(self, url: str, *, tolerant: bool = False) -> None:
        self.url = url
        self.tolerant = tolerant
        self.dropped = 0
        self.messages: list[Json] = []
        self.closed = anyio.Event()
        self.close_code: int | None = None
        self._ws: ClientConnection | None = None
        self._arrived = anyio.Event()

    async def __aenter__(self) -> RawSignaling:
        self._ws = await connect(self.url, max_size=None, compression=None, ping_interval=None)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._read)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        if self._ws is not None:
            with anyio.move_on_after(5, shield=True):
                await self._ws.close()
            # a server may not answer in time (it stops reading a client that stopped reading
            # it, as this one did above): never leave the socket behind
            self._ws.transport.abort()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                text = frame if isinstance(frame, str) else frame.decode(errors="replace")
                try:
                    msg = json.loads(text)
                except ValueError:
                    msg = {"raw": text}
                if not isinstance(msg, dict):
                    msg = {"raw": msg}
                self.messages.append(msg)
                self._wake()
        except ConnectionClosed:
            pass  # recorded below
        finally:
            self.close_code = self._ws.close_code
            self.closed.set()
            self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = anyio.Event()

    # ------------------------------------------------------------------ sending
    async def send(self, message: Json | str) -> None:
        """Send one frame (a dict is JSON-encoded)."""
        assert self._ws is not None
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        try:
            await self._ws.send(text)
        except ConnectionClosed:
            if not self.tolerant:
                raise
            self.dropped += 1

    async def subscribe(self, *topics: str) -> None:
        await self.send({"type": "subscribe", "topics": list(topics)})

    async def unsubscribe(self, *topics: str) -> None:
        await self.send({"type": "unsubscribe", "topics": list(topics)})

    async def publish(self, topic: str, data: Any) -> None:
        await self.send({"type": "publish", "topic": topic, "data": data})

    async def announce(self, topic: str, from_id: str) -> None:
        await self.publish(topic, {"type": "announce", "from": from_id})

    async def signal(
        self, topic: str, from_id: str, to: str, signal: Any, token: Any = None
    ) -> None:
        """Publish a y-webrtc ``signal`` (any ``signal`` object, any ``from``)."""
        payload: Json = {"to": to, "from": from_id, "type": "signal", "signal": signal}
        payload["token"] = small_token() if token is None else token
        await self.publish(topic, payload)

    # ------------------------------------------------------------------ receiving
    async def wait_for(self, predicate: Callable[[Json], bool], start: int = 0) -> Json:
        """The first message from index ``start`` on satisfying ``predicate`` (waits for
        arrivals; wrap in ``anyio.fail_after``). Raises ``ConnectionError`` once closed."""
        seen = start
        while True:
            for msg in self.messages[seen:]:
                if predicate(msg):
                    return msg
            seen = len(self.messages)
            if self.closed.is_set():
                raise ConnectionError(f"signaling closed (code {self.close_code})")
            await self._arrived.wait()


def payload_of(msg: Json, topic: str) -> Json | None:
    """The ``data`` object of a ``publish`` on ``topic`` (None for anything else)."""
    if msg.get("type") != "publish" or msg.get("topic") != topic:
        return None
    data = msg.get("data")
    return data if isinstance(data, dict) else None


async def replica_peer_id(sig: RawSignaling, room: str, me: str) -> str:
    """Subscribe to a fresh ``room`` and return the replica's peer id.

    The room must be new (nobody else in it): opening it makes the replica join and announce
    itself; we also announce, so a replica that joined first offers to us instead. Either
    way the first foreign ``from`` is the replica's.
    """
    start = len(sig.messages)
    await sig.subscribe(room)
    await sig.announce(room, me)

    def from_replica(msg: Json) -> bool:
        data = payload_of(msg, room)
        if data is None or data.get("from") in (None, me):
            return False
        return data.get("type") == "announce" or data.get("to") == me

    msg = await sig.wait_for(from_replica, start)
    data = payload_of(msg, room)
    assert data is not None
    return str(data["from"])


async def wait_answer(sig: RawSignaling, room: str, me: str, start: int = 0) -> str:
    """The SDP of the next ``answer`` addressed to ``me`` in ``room``."""

    def is_answer(msg: Json) -> bool:
        data = payload_of(msg, room)
        if data is None or data.get("to") != me or data.get("type") != "signal":
            return False
        signal = data.get("signal")
        return isinstance(signal, dict) and signal.get("type") == "answer"

    data = payload_of(await sig.wait_for(is_answer, start), room)
    assert data is not None
    return str(data["signal"]["sdp"])


# --------------------------------------------------------------------------- SDP


async def offer_sdp() -> str:
    """A real aiortc data-channel offer (all host candidates inside); the connection behind
    it is closed, so nobody ever answers its ICE checks."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("attack")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def strip_candidates(sdp: str) -> str:
    """The SDP without ``a=candidate`` / ``a=end-of-candidates`` lines: ICE cannot complete,
    the answerer holds its sockets until its connect timeout."""
    lines = [
        line
        for line in sdp.split("\r\n")
        if not line.startswith(("a=candidate", "a=end-of-candidates"))
    ]
    return "\r\n".join(lines)


def replace_line(sdp: str, prefix: str, new: str | None) -> str:
    """Replace (or with ``new=None`` drop) every line starting with ``prefix``."""
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith(prefix):
            if new is not None:
                out.append(new)
        else:
            out.append(line)
    return "\r\n".join(out)


# --------------------------------------------------------------------------- data channel


class ReplicaChannel:
    """An open aiortc data channel to the replica (our offer, its answer).

    Use :func:`open_replica_channel`. Incoming messages are kept in :attr:`received`.
    """

    def __init__(self, pc: RTCPeerConnection, channel: RTCDataChannel, peer_id: str) -> None:
        self.pc = pc
        self.channel = channel
        self.peer_id = peer_id
        self.received: list[bytes] = []
        self.send_error: str | None = None
        "Why aiortc refused a send (the channel then counts as closed)."
        self.opened = anyio.Event()
        self.closed = anyio.Event()
        self._drained = anyio.Event()
        self._arrived = anyio.Event()
        channel.bufferedAmountLowThreshold = SEND_HIGH_WATER // 4
        channel.on("open", self.opened.set)
        channel.on("close", self.closed.set)
        channel.on("message", self._on_message)
        channel.on("bufferedamountlow", self._on_low)

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self.closed.set()
                self._drained.set()
                self._arrived.set()

    def _on_message(self, message: Any) -> None:
        self.received.append(message if isinstance(message, bytes) else message.encode())
        self._arrived.set()
        self._arrived = anyio.Event()

    def _on_low(self) -> None:
        self._drained.set()

    @property
    def is_open(self) -> bool:
        return self.channel.readyState == "open" and not self.closed.is_set()

    async def send(self, message: bytes) -> bool:
        """Queue one message, waiting while aiortc buffers more than ``SEND_HIGH_WATER``.

        Returns False (without raising) once the replica closed the channel: being cut off is
        a legitimate defense, not a test failure.
        """
        while self.is_open and self.channel.bufferedAmount > SEND_HIGH_WATER:
            self._drained = anyio.Event()
            with anyio.move_on_after(1):  # re-check the channel state at least every second
                await self._drained.wait()
        if not self.is_open:
            return False
        try:
            self.channel.send(message)
        except Exception as e:  # aiortc raises various errors once the transport is gone
            self.send_error = repr(e)[:200]
            self.closed.set()
            return False
        return True

    async def drain(self) -> None:
        """Wait until aiortc has handed every queued byte to SCTP (or the channel closed)."""
        while self.is_open and self.channel.bufferedAmount > 0:
            self._drained = anyio.Event()
            self.channel.bufferedAmountLowThreshold = 0
            with anyio.move_on_after(0.5):
                await self._drained.wait()
        self.channel.bufferedAmountLowThreshold = SEND_HIGH_WATER // 4

    async def wait_message(self, predicate: Callable[[bytes], bool], start: int = 0) -> bytes:
        """The first received message from ``start`` on satisfying ``predicate``."""
        seen = start
        while True:
            for msg in self.received[seen:]:
                if predicate(msg):
                    return msg
            seen = len(self.received)
            if self.closed.is_set():
                raise ConnectionError("channel closed")
            await self._arrived.wait()

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.pc.close()


@asynccontextmanager
async def open_replica_channel(
    sig: RawSignaling, room: str, replica: str, me: str | None = None
) -> AsyncIterator[ReplicaChannel]:
    """Offer a data channel to ``replica`` in ``room`` (we are the initiator, as y-webrtc's
    offerer is) and yield it once open. Wrap in ``anyio.fail_after``."""
    me = me or new_peer_id()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = ReplicaChannel(pc, pc.createDataChannel(uuid.uuid4().hex), me)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        start = len(sig.messages)
        await sig.signal(room, me, replica, {"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await wait_answer(sig, room, me, start)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await channel.opened.wait()
        yield channel
    finally:
        await channel.close()


async def try_open_channel(
    stack: AsyncExitStack, sig: RawSignaling, room: str, replica: str, timeout: float = 10.0
) -> ReplicaChannel | None:
    """:func:`open_replica_channel` entered on ``stack``; None if the replica does not open
    one within ``timeout`` (it may refuse a peer it cut off: a defense, not a failure)."""
    with anyio.move_on_after(timeout):
        return await stack.enter_async_context(open_replica_channel(sig, room, replica))
    return None


SYNC_STEP1_EMPTY = b"\x00\x00\x01\x00"
"""``[0, 0, sv]`` with an empty state vector: every peer answers it with a step 2."""


class Hammer:
    """Sends messages to the replica over data channels; when the replica closes one, opens
    the next (a persistent attacker), up to ``max_channels`` in all.

    :meth:`settle` then waits until the replica has handled everything sent on the last
    channel: it answers a sync step 1 only after the messages before it (one ordered
    channel, processed in order), or it closes the channel.
    """

    def __init__(
        self,
        stack: AsyncExitStack,
        sig: RawSignaling,
        room: str,
        replica: str,
        *,
        max_channels: int = 5,
    ) -> None:
        self.stack = stack
        self.sig = sig
        self.room = room
        self.replica = replica
        self.max_channels = max_channels
        self.opened = 0
        self.sent = 0
        self.sent_bytes = 0
        self.refused = False
        "The replica would not open another channel to us."
        self.channel: ReplicaChannel | None = None
        self.endings: list[str] = []
        "How each channel ended: aiortc's send error, or closed by the replica."

    @property
    def exhausted(self) -> bool:
        return self.refused or (
            self.opened >= self.max_channels and (self.channel is None or not self.channel.is_open)
        )

    async def send(self, message: bytes) -> bool:
        """Send one message (reconnecting if needed); False once no channel can be had."""
        while not self.exhausted:
            if self.channel is None or not self.channel.is_open:
                if self.channel is not None:
                    self.endings.append(self.channel.send_error or "closed by the replica")
                self.opened += 1
                self.channel = await try_open_channel(self.stack, self.sig, self.room, self.replica)
                if self.channel is None:
                    self.refused = True
                    return False
            if await self.channel.send(message):
                self.sent += 1
                self.sent_bytes += len(message)
                return True
        return False

    async def probe(self, message: bytes) -> bool | None:
        """Send one message and wait until the replica handled it (:meth:`settle`): True if
        the channel survived it, False if the replica closed it, None once no channel can be
        had. One message per round trip: a fuzzer's every input is really processed."""
        if not await self.send(message):
            return None
        await self.settle()
        return self.channel is not None and self.channel.is_open

    async def settle(self) -> None:
        """Wait until the replica answered a step 1 sent after everything else, or closed
        the channel (wrap in ``anyio.fail_after``)."""
        channel = self.channel
        if channel is None or not channel.is_open:
            return
        mark = len(channel.received)
        if not await channel.send(SYNC_STEP1_EMPTY):
            return
        try:
            await channel.wait_message(lambda m: m.startswith(b"\x00\x01"), mark)
        except ConnectionError:
            return  # cut off
