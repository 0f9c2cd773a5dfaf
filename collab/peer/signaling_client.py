"""A client for y-webrtc's signaling protocol (JSON text frames over a WebSocket).

Speaks exactly what lib0's ``WebsocketClient`` + y-webrtc send: ``subscribe``, ``unsubscribe``,
``publish`` and ``ping`` (answered by ``pong``). One :class:`SignalingClient` serves any number
of rooms (topics) on one URL; it reconnects with exponential backoff, re-subscribes every
topic and calls each topic's ``on_connect`` so rooms re-announce after signaling loss.
Payload encryption is the room's business (see :mod:`collab.peer.room`).

Example:
    >>> async with SignalingClient("ws://127.0.0.1:8000/signaling") as sig:  # doctest: +SKIP
    ...     sig.subscribe("room", on_message=print, on_connect=lambda: None)
    ...     await sig.wait_connected()
    ...     await sig.publish("room", {"type": "announce", "from": "me"})
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from collab.errors import TransportError
from collab.peer._runner import TaskRunner
from collab.peer.config import PeerConfig

__all__ = ["SignalingClient", "SignalingCounters"]

log = logging.getLogger(__name__)

_STABLE_SECONDS = 5.0
"""A connection that lasted this long resets the reconnect backoff."""


def _redacted(url: str) -> str:
    """The URL without its query (tokens and keys travel there) for log lines."""
    return url.split("?", 1)[0] + ("?…" if "?" in url else "")


@dataclass(slots=True)
class SignalingCounters:
    """Counters of one signaling connection (for stats and tests)."""

    connects: int = 0
    disconnects: int = 0
    frames_in: int = 0
    frames_out: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    pings_answered: int = 0
    bad_frames: int = 0


@dataclass(slots=True)
class _Topic:
    on_message: Callable[[Any], None]
    on_connect: Callable[[], None]


class SignalingClient:
    """One WebSocket to a y-webrtc-compatible signaling server, shared by many rooms.

    Args:
        url: ``ws://host:port/signaling`` (ours) or any y-webrtc server (``bin/server.js``).
        config: timers and limits (``ping_interval``, ``signaling_timeout``, backoff).

    Use as ``async with`` (or ``await start()`` … ``await close()``); each ``start`` needs one
    ``close`` (rooms sharing a client each start and close it once).
    """

    def __init__(self, url: str, config: PeerConfig | None = None) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"signaling URL must start with ws:// or wss:// — got {url!r}")
        self.url = url
        self.config = config or PeerConfig()
        self.counters = SignalingCounters()
        self._topics: dict[str, _Topic] = {}
        self._ws: ClientConnection | None = None
        self._state_changed = anyio.Event()
        self._activity = anyio.Event()
        self._send_lock = anyio.Lock()
        self._runner = TaskRunner(f"signaling {url}")
        self._last_received = 0.0
        self._users = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start connecting (returns at once; see :meth:`wait_connected`)."""
        self._users += 1
        if self._runner.running:
            return
        await self._runner.start()
        self._runner.spawn(self._run)

    async def close(self) -> None:
        """Stop (idempotent). Shared clients stop when the last :meth:`start` is matched."""
        self._users = max(0, self._users - 1)
        if self._users:
            return
        ws = self._ws
        if ws is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await ws.close(code=1000, reason="client closing")
        await self._runner.stop()
        self._ws = None

    async def __aenter__(self) -> SignalingClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ public API
    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._ws is not None

    async def wait_connected(self) -> None:
        """Wait until the WebSocket is (re)connected."""
        while self._ws is None:
            await self._state_changed.wait()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checked after every frame and (dis)connect.

        Example:
            >>> await sig.wait_until(lambda: sig.counters.pongs_received > 0)  # doctest: +SKIP
        """
        while not predicate():
            await self._activity.wait()

    def _poke(self) -> None:
        self._activity.set()
        self._activity = anyio.Event()

    def subscribe(
        self, topic: str, *, on_message: Callable[[Any], None], on_connect: Callable[[], None]
    ) -> None:
        """Register a topic; ``on_message(data)`` gets each publish's ``data`` (unchecked).

        ``on_connect()`` is called now if connected and after every reconnect (after the
        ``subscribe`` frame went out), so the room can announce itself.

        Raises:
            ValueError: the topic is already subscribed on this client.
        """
        if topic in self._topics:
            raise ValueError(f"topic {topic!r} already subscribed on {self.url}")
        self._topics[topic] = _Topic(on_message, on_connect)
        if self._ws is not None and self._runner.running:
            self._runner.spawn(self._subscribe_now, topic)

    async def _subscribe_now(self, topic: str) -> None:
        try:
            await self._send({"type": "subscribe", "topics": [topic]})
        except TransportError:
            return  # the reconnect path re-subscribes
        entry = self._topics.get(topic)
        if entry is not None:
            entry.on_connect()

    async def unsubscribe(self, topic: str) -> None:
        """Forget a topic and tell the server (best effort)."""
        if self._topics.pop(topic, None) is None:
            return
        try:
            await self._send({"type": "unsubscribe", "topics": [topic]})
        except TransportError as e:
            log.debug("unsubscribe %r not sent: %s", topic, e)

    async def publish(self, topic: str, data: Any) -> bool:
        """Publish ``data`` to ``topic``; returns False (and drops it) while disconnected."""
        try:
            await self._send({"type": "publish", "topic": topic, "data": data})
        except TransportError:
            return False
        return True

    # ------------------------------------------------------------------ internals
    async def _send(self, message: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            raise TransportError("disconnected", "signaling socket is not connected")
        frame = json.dumps(message, separators=(",", ":"))
        async with self._send_lock:
            try:
                await ws.send(frame)
            except WebSocketException as e:
                raise TransportError("disconnected", str(e)) from None
        self.counters.frames_out += 1

    def _set_ws(self, ws: ClientConnection | None) -> None:
        self._ws = ws
        self._state_changed.set()
        self._state_changed = anyio.Event()
        self._poke()

    async def _run(self) -> None:
        cfg = self.config
        delay = cfg.reconnect_min
        shown = _redacted(self.url)
        while True:
            connected_at: float | None = None
            try:
                async with connect(
                    self.url,
                    max_size=cfg.max_signaling_message,
                    open_timeout=10,
                    ping_interval=None,  # lib0 uses app-level pings; servers ping at WS level
                ) as ws:
                    self.counters.connects += 1
                    self._last_received = time.monotonic()
                    self._set_ws(ws)
                    connected_at = time.monotonic()
                    log.info("signaling connected: %s", shown)
                    if self._topics:
                        await self._send({"type": "subscribe", "topics": list(self._topics)})
                    for entry in list(self._topics.values()):
                        entry.on_connect()
                    try:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(self._keepalive, ws)
                            await self._receive(ws)
                            tg.cancel_scope.cancel()
                    finally:
                        ws.transport.abort()  # never leave the socket behind on cancellation
            except (OSError, TimeoutError, WebSocketException, TransportError) as e:
                log.info("signaling %s lost: %s", shown, e)
            finally:
                if self._ws is not None:
                    self.counters.disconnects += 1
                    self._set_ws(None)
            if connected_at is not None and time.monotonic() - connected_at >= _STABLE_SECONDS:
                delay = cfg.reconnect_min  # it was a working connection: reconnect quickly
            # a server that closes right after accepting (a limit, a bad token) gets backoff
            await anyio.sleep(delay)
            delay = min(max(delay * 2, cfg.reconnect_min), cfg.reconnect_max)

    async def _keepalive(self, ws: ClientConnection) -> None:
        try:
            await self._keepalive_loop(ws)
        except (WebSocketException, TransportError) as e:
            log.info("signaling %s: keepalive ended: %s", _redacted(self.url), e)
            ws.transport.abort()

    async def _keepalive_loop(self, ws: ClientConnection) -> None:
        cfg = self.config
        tick = min(cfg.ping_interval, cfg.signaling_timeout / 2)
        next_ping = time.monotonic() + cfg.ping_interval
        while True:
            await anyio.sleep(tick)
            now = time.monotonic()
            if now - self._last_received > cfg.signaling_timeout:
                log.info(
                    "signaling %s silent for %.0f s, reconnecting",
                    _redacted(self.url),
                    cfg.signaling_timeout,
                )
                await ws.close(code=1000, reason="keepalive timeout")
                return
            if now >= next_ping:
                next_ping = now + cfg.ping_interval
                self.counters.pings_sent += 1
                await self._send({"type": "ping"})

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            await self._receive_frames(ws)
        except (WebSocketException, TransportError) as e:
            log.info("signaling %s: connection ended: %s", _redacted(self.url), e)

    async def _receive_frames(self, ws: ClientConnection) -> None:
        async for frame in ws:
            self._last_received = time.monotonic()
            self.counters.frames_in += 1
            try:
                text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
                message = json.loads(text)
            except (UnicodeDecodeError, ValueError):
                self.counters.bad_frames += 1
                log.warning("signaling %s: ignored a non-JSON frame", _redacted(self.url))
                self._poke()
                continue
            if not isinstance(message, dict):
                self.counters.bad_frames += 1
                self._poke()
                continue
            kind = message.get("type")
            if kind == "publish":
                topic = message.get("topic")
                entry = self._topics.get(topic) if isinstance(topic, str) else None
                if entry is not None:
                    entry.on_message(message.get("data"))
            elif kind == "pong":
                self.counters.pongs_received += 1
            elif kind == "ping":
                self.counters.pings_answered += 1
                await self._send({"type": "pong"})
            else:
                log.debug("signaling %s: ignored frame type %r", _redacted(self.url), kind)
            self._poke()
