"""Protocol dispatch: the y-webrtc topics (subscribe/unsubscribe/publish/ping), fan-out, the
named-peer dialect's callbacks, and the service's lifecycle (Redis bus, hook worker).

Transport-neutral: a transport (``signaling.transport``) accepts a socket, asks
:attr:`SignalingService.admission`, wraps it in a :class:`~signaling.conn.Conn` and hands each
frame to :meth:`SignalingService.on_yjs_frame` (or the named dialect's handler).

Example:
    >>> service = SignalingService()
    >>> service.topics.count("room")
    0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Set
from typing import TYPE_CHECKING

from signaling.admission import INTERNAL_CLAIMS, Admission
from signaling.close_codes import CloseCode
from signaling.conn import Conn, FrameHandler, Shared, Violation
from signaling.hooks import HookRunner, SignalingHooks
from signaling.messages import (
    PONG,
    Ping,
    Publish,
    Subscribe,
    Unsubscribe,
    parse_frame,
    with_clients,
)
from signaling.metrics import SignalingMetrics
from signaling.named import NamedPeer, NamedRegistry
from signaling.settings import SignalingSettings
from signaling.topics import TopicRegistry

if TYPE_CHECKING:  # imported when a Redis URL is set: redis is the optional 'redis' extra
    from signaling.redis_bus import RedisBus

MAX_ROOM_NAME = 256


class SignalingService:
    """State and logic of one signaling instance (topics, named rooms, limits, hooks, Redis).

    Use ``install_signaling`` or ``create_app`` to get one bound to routes. In a combined app,
    call ``await service.start()`` / ``await service.stop()`` from the lifespan (otherwise it
    starts lazily on the first socket).

    Attributes:
        settings: the limits and options.
        metrics: Prometheus metrics on a per-service registry.
        admission: Origin/token/per-address checks and per-frame shaping.
        topics: the y-webrtc topic registry.
        named: the named-dialect registry.
        bus: the Redis bus when ``settings.redis_url`` is set.
    """

    def __init__(
        self,
        settings: SignalingSettings | None = None,
        hooks: SignalingHooks | None = None,
        metrics: SignalingMetrics | None = None,
    ) -> None:
        self.settings = settings if settings is not None else SignalingSettings()
        self.metrics = metrics if metrics is not None else SignalingMetrics()
        self.admission = Admission(self.settings, self.metrics)
        self.topics: TopicRegistry[Conn] = TopicRegistry()
        self.named = NamedRegistry(self.settings.named_max_name_length)
        self.hooks = HookRunner(hooks, self.metrics)
        self.bus: RedisBus | None = None
        self.started = False
        self._m_in = self.metrics.tally.messages_in
        # the admission checks, under the names the transports call
        self.admit = self.admission.admit
        self.refused = self.admission.refused
        self.opened = self.admission.opened
        self.closed = self.admission.closed
        self.check_frame = self.admission.check_frame

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start the Redis bus (if configured). Idempotent."""
        if self.started:
            return
        self.started = True
        if self.settings.redis_url:
            from signaling.redis_bus import RedisBus

            self.bus = RedisBus(
                self.settings.redis_url,
                self.settings.redis_prefix,
                self._deliver_remote,
                self.topics.count,
                self.metrics,
            )
            self.bus.set_topics_source(self.topics.topics)
            await self.bus.start()

    async def stop(self) -> None:
        """Stop the Redis bus and the hook worker."""
        if self.bus is not None:
            await self.bus.stop()
            self.bus = None
        await self.hooks.aclose()
        self.started = False

    async def __aenter__(self) -> SignalingService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- y-webrtc protocol
    async def on_yjs_frame(self, conn: Conn, data: str | bytes) -> Violation | None:
        """Handle one (admitted, size- and rate-checked) y-webrtc frame from ``conn``."""
        msg = parse_frame(data)
        if isinstance(msg, Publish):
            self._m_in["publish"] += 1
            return await self._publish(conn, msg)
        if isinstance(msg, Ping):
            self._m_in["ping"] += 1
            conn.enqueue(PONG)
            return None
        if isinstance(msg, Subscribe):
            self._m_in["subscribe"] += 1
            violation = self._subscribe(conn, msg.topics)
            if violation is None and self.bus is not None:
                # this socket's next frame (its announce) waits until other instances can
                # answer it: until Redis has confirmed the topic's subscription (bounded)
                await self.bus.subscribed(topic for topic in msg.topics if topic)
            return violation
        if isinstance(msg, Unsubscribe):
            self._m_in["unsubscribe"] += 1
            for topic in msg.topics:
                self._unsubscribe(conn, topic)
            return None
        # the only remaining case of the closed union: Ignored
        self._m_in["ignored"] += 1
        self.metrics.refusals.labels(reason=msg.reason).inc()
        return None

    def on_yjs_close(self, conn: Conn) -> None:
        """Unsubscribe a closed y-webrtc socket from all its topics."""
        for topic in list(self.topics.topics_of(conn)):
            self._unsubscribe(conn, topic)

    def _subscribe(self, conn: Conn, topics: list[str]) -> Violation | None:
        s = self.settings
        reg = self.topics
        for topic in topics:
            if not topic or reg.is_subscribed(conn, topic):
                continue
            if conn.claims is not None and not conn.claims.allows(topic):
                return (CloseCode.FORBIDDEN, "topic not allowed by token")
            if conn.topic_count >= s.max_topics_per_socket and conn.claims is not INTERNAL_CLAIMS:
                return (CloseCode.RATE_LIMITED, "too many topics")
            if (
                reg.count(topic) >= s.max_subscribers_per_topic
                and conn.claims is not INTERNAL_CLAIMS  # a full topic never refuses the replica
            ):
                return (CloseCode.TOPIC_FULL, "too many subscribers on topic")
            opened = reg.subscribe(conn, topic)
            conn.topic_count += 1
            if opened:
                self.metrics.topics.inc()
                self.hooks.topic_opened(topic)
            self.hooks.subscriber_joined(topic, conn.info)
            if self.bus is not None:
                self.bus.topic_changed(topic)
        return None

    def _unsubscribe(self, conn: Conn, topic: str) -> None:
        reg = self.topics
        if not reg.is_subscribed(conn, topic):
            return
        closed = reg.unsubscribe(conn, topic)
        conn.topic_count -= 1
        self.hooks.subscriber_left(topic, conn.info)
        if closed:
            self.metrics.topics.dec()
            self.hooks.topic_closed(topic)
        if self.bus is not None:
            self.bus.topic_changed(topic)

    async def _publish(self, conn: Conn, msg: Publish) -> Violation | None:
        topic = msg.topic
        if conn.claims is not None and not conn.claims.allows(topic):
            return (CloseCode.FORBIDDEN, "topic not allowed by token")
        t0 = time.perf_counter()
        clients: int | None = None
        if self.bus is not None:
            clients = await self.bus.publish(topic, msg.raw, self.topics.count(topic))
        receivers = self.topics.subscribers(topic)
        if receivers:
            self._fan_out(
                receivers, with_clients(msg.raw, len(receivers) if clients is None else clients)
            )
        self.metrics.tally.observe_fanout(time.perf_counter() - t0)
        return None

    def _deliver_remote(self, topic: str, clients: int, raw: str) -> None:
        receivers = self.topics.subscribers(topic)
        if receivers:
            self._fan_out(receivers, with_clients(raw, clients))

    def _fan_out(self, receivers: Set[Conn], text: str) -> None:
        # the frame is built once (``with_clients``), encoded and framed once (``Shared``)
        shared = Shared(text)
        for receiver in list(receivers):
            receiver.send_shared(shared)

    # ----------------------------------------------------------------- named dialect
    def named_callbacks(
        self, room: str
    ) -> tuple[FrameHandler, Callable[[Conn], None], Callable[[Conn], None]]:
        """``(on_frame, on_close, on_open)`` for one named-dialect socket in ``room``."""
        peers: dict[int, NamedPeer] = {}

        def on_open(conn: Conn) -> None:
            peers[conn.id] = NamedPeer(conn.enqueue)

        async def on_frame(conn: Conn, data: str | bytes) -> Violation | None:
            self._m_in["named"] += 1
            self.named.handle(room, peers[conn.id], data)
            return None

        def on_close(conn: Conn) -> None:
            peer = peers.pop(conn.id, None)
            if peer is not None:
                self.named.disconnect(room, peer)

        return on_frame, on_close, on_open


def valid_room(room: str) -> bool:
    """Whether a named-dialect room (path segment) is acceptable."""
    return 0 < len(room) <= MAX_ROOM_NAME
