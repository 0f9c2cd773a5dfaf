"""A client for y-webrtc's signaling protocol (JSON text frames over a WebSocket).

Speaks exactly what lib0's ``WebsocketClient`` + y-webrtc send: ``subscribe``, ``unsubscribe``,
``publish`` and ``ping`` (answered by ``pong``). One :class:`SignalingClient` serves any number
of rooms (topics) on one URL; it reconnects with exponential backoff, re-subscribes every
topic and calls each topic's ``on_connect`` so rooms re-announce after signaling loss.
Payload encryption is the room's business (see :mod:`collab.peer.room`).

It is a :class:`collab.service.Service`: run it with ``async with`` or, when it is shared by
rooms of one owner, ``await tg.start(client.run)`` in the owner's task group.

Re-subscribing after a reconnect sends the topics in several ``subscribe`` frames of at most
:attr:`PeerConfig.max_subscribe_frame` bytes each (UTF-8, not ``\\uXXXX``-escaped), so a process
following thousands of rooms — or rooms with long non-ASCII names — never sends a frame the
server refuses as too large.

Example:
    >>> async with SignalingClient("ws://127.0.0.1:8000/signaling") as sig:  # doctest: +SKIP
    ...     await sig.subscribe("room", on_message=print, on_connect=lambda: None)
    ...     await sig.wait_connected()
    ...     await sig.publish("room", {"type": "announce", "from": "me"})
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from collab.errors import TransportError
from collab.outage import Outage
from collab.peer.config import PeerConfig
from collab.service import Service

__all__ = ["SignalingClient", "SignalingCounters", "redacted_url", "subscribe_frames"]

log = logging.getLogger(__name__)

_STABLE_SECONDS = 5.0
"""A connection that lasted this long resets the reconnect backoff."""


def redacted_url(url: str) -> str:
    """The URL without its query (tokens and keys travel there) for log lines.

    Example:
        >>> redacted_url("ws://h/signaling?token=secret")
        'ws://h/signaling?…'
    """
    return url.split("?", 1)[0] + ("?…" if "?" in url else "")


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def subscribe_frames(topics: list[str], max_bytes: int) -> Iterator[str]:
    """``subscribe`` frames carrying ``topics``, each at most ``max_bytes`` UTF-8 bytes.

    A single topic longer than the limit still goes out alone (the server decides).

    Example:
        >>> list(subscribe_frames(["a", "b", "c"], 42))
        ['{"type":"subscribe","topics":["a","b"]}', '{"type":"subscribe","topics":["c"]}']
    """
    batch: list[str] = []
    size = len(_dumps({"type": "subscribe", "topics": []}).encode())
    base = size
    for topic in topics:
        cost = len(json.dumps(topic, ensure_ascii=False).encode()) + 1
        if batch and size + cost > max_bytes:
            yield _dumps({"type": "subscribe", "topics": batch})
            batch, size = [], base
        batch.append(topic)
        size += cost
    if batch:
        yield _dumps({"type": "subscribe", "topics": batch})


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
    callback_errors: int = 0
    """Topic callbacks that raised (logged with their traceback; the socket stays up)."""


@dataclass(slots=True)
class _Topic:
    on_message: Callable[[Any], None]
    on_connect: Callable[[], None]


class SignalingClient(Service):
    """One WebSocket to a y-webrtc-compatible signaling server, shared by many rooms.

    Args:
        url: ``ws://host:port/signaling`` (ours) or any y-webrtc server (``bin/server.js``).
        config: timers and limits (``ping_interval``, ``signaling_timeout``, backoff).
        headers: extra HTTP headers of the WebSocket upgrade (credentials belong here, never
            in the URL: URLs end up in access logs). Never logged.
    """

    def __init__(
        self,
        url: str,
        config: PeerConfig | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"signaling URL must start with ws:// or wss:// — got {url!r}")
        self.url = url
        self.config = config or PeerConfig()
        self.counters = SignalingCounters()
        self._shown = redacted_url(url)
        self._headers = dict(headers or {})
        self.outage = Outage("signaling", log)
        "Connection failures as operators read them (first, reminders, recovery)."
        self._topics: dict[str, _Topic] = {}
        self._ws: ClientConnection | None = None
        self._state_changed = anyio.Event()
        self._activity = anyio.Event()
        self._send_lock = anyio.Lock()
        self._last_received = 0.0
        self._active = False

    # ------------------------------------------------------------------ public API
    @property
    def active(self) -> bool:
        """True while :meth:`run` runs (however it was started)."""
        return self._active

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._ws is not None

    @property
    def topics(self) -> list[str]:
        """The topics currently subscribed."""
        return list(self._topics)

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

    async def subscribe(
        self, topic: str, *, on_message: Callable[[Any], None], on_connect: Callable[[], None]
    ) -> None:
        """Register a topic; ``on_message(data)`` gets each publish's ``data`` (unchecked).

        ``on_connect()`` is called now if connected (after the ``subscribe`` frame went out)
        and after every reconnect, so the room can announce itself. Both callbacks must be
        quick and must not raise (they enqueue); an exception is logged and counted.

        Raises:
            ValueError: the topic is already subscribed on this client.
        """
        if topic in self._topics:
            raise ValueError(f"topic {topic!r} already subscribed on {self._shown}")
        entry = self._topics[topic] = _Topic(on_message, on_connect)
        if self._ws is None:
            return  # the reconnect path subscribes and calls on_connect
        try:
            await self._send({"type": "subscribe", "topics": [topic]})
        except TransportError:
            return
        if self._topics.get(topic) is entry:
            self._call(entry.on_connect)

    async def unsubscribe(self, topic: str) -> None:
        """Forget a topic and tell the server (best effort)."""
        if self._topics.pop(topic, None) is None:
            return
        try:
            await self._send({"type": "unsubscribe", "topics": [topic]})
        except TransportError as e:
            log.debug("unsubscribe not sent: %s", e)

    async def publish(self, topic: str, data: Any) -> bool:
        """Publish ``data`` to ``topic``; returns False (and drops it) while disconnected."""
        try:
            await self._send({"type": "publish", "topic": topic, "data": data})
        except TransportError:
            return False
        return True

    # ------------------------------------------------------------------ internals
    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a room's bug must not take the shared socket down: logged, counted
            self.counters.callback_errors += 1
            log.exception("signaling %s: topic callback %r failed", self._shown, callback)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._send_frame(_dumps(message))

    async def _send_frame(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            raise TransportError("disconnected", "signaling socket is not connected")
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

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, and reconnect with backoff, until cancelled (ready at once: publishes
        while disconnected return False)."""
        if self._active:
            raise RuntimeError(f"signaling client for {self._shown} is already running")
        self._active = True
        try:
            await self._connect_loop(task_status)
        finally:
            self._active = False

    async def _connect_loop(self, task_status: TaskStatus[None]) -> None:
        cfg = self.config
        delay = cfg.reconnect_min
        task_status.started()
        while True:
            connected_at: float | None = None
            try:
                async with connect(
                    self.url,
                    additional_headers=self._headers or None,
                    max_size=cfg.max_signaling_message,
                    open_timeout=10,
                    ping_interval=None,  # lib0 uses app-level pings; servers ping at WS level
                ) as ws:
                    try:
                        connected_at = time.monotonic()
                        await self._serve_connection(ws)
                    finally:
                        ws.transport.abort()  # never leave the socket behind on cancellation
            except (OSError, TimeoutError, WebSocketException, TransportError) as e:
                self.outage.fail(f"{self._shown}: {e}")
                self._poke()
            finally:
                if self._ws is not None:
                    self.counters.disconnects += 1
                    self._set_ws(None)
            if connected_at is not None and time.monotonic() - connected_at >= _STABLE_SECONDS:
                delay = cfg.reconnect_min  # it was a working connection: reconnect quickly
            # a server that closes right after accepting (a limit, a bad token) gets backoff
            await anyio.sleep(delay)
            delay = min(max(delay * 2, cfg.reconnect_min), cfg.reconnect_max)

    async def _serve_connection(self, ws: ClientConnection) -> None:
        self.counters.connects += 1
        self._last_received = time.monotonic()
        self._set_ws(ws)
        log.info("signaling connected: %s", self._shown)
        self.outage.ok()
        for frame in subscribe_frames(list(self._topics), self.config.max_subscribe_frame):
            await self._send_frame(frame)
        for entry in list(self._topics.values()):
            self._call(entry.on_connect)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keepalive, ws)
            await self._receive(ws)
            tg.cancel_scope.cancel()

    async def _keepalive(self, ws: ClientConnection) -> None:
        try:
            await self._keepalive_loop(ws)
        except (WebSocketException, TransportError) as e:
            log.info("signaling %s: keepalive ended: %s", self._shown, e)
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
                    self._shown,
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
            log.info("signaling %s: connection ended: %s", self._shown, e)

    async def _receive_frames(self, ws: ClientConnection) -> None:
        async for frame in ws:
            self._last_received = time.monotonic()
            self.counters.frames_in += 1
            try:
                text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
                message = json.loads(text)
            except (UnicodeDecodeError, ValueError, RecursionError):
                self.counters.bad_frames += 1
                log.warning("signaling %s: ignored a non-JSON frame", self._shown)
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
                    self._call(entry.on_message, message.get("data"))
            elif kind == "pong":
                self.counters.pongs_received += 1
            elif kind == "ping":
                self.counters.pings_answered += 1
                await self._send({"type": "pong"})
            else:
                log.debug("signaling %s: ignored a frame of another type", self._shown)
            self._poke()
