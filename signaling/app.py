"""The signaling service: y-webrtc's protocol on a WebSocket, plus the named-peer dialect.

Endpoints (see README.md):

* ``WS /signaling`` — y-webrtc signaling (``subscribe``/``unsubscribe``/``publish``/``ping``).
* ``WS /named/{room}`` — the named-peer dialect (``signaling.named``).
* ``GET /healthz`` — ``200 okay`` (the reference server's health answer).
* ``GET /metrics`` — Prometheus text format (per-app registry).
* Standalone only (``create_app``): ``GET /`` answers ``okay`` and ``WS /`` is y-webrtc
  signaling too, so ``ws://host:port`` works as a drop-in for ``bin/server.js``.

Example:
    >>> app = create_app(SignalingSettings())
    >>> # uvicorn.run(app, port=4444); then WebrtcProvider(room, doc, {signaling: ['ws://localhost:4444']})
    >>> from fastapi import FastAPI
    >>> service = install_signaling(FastAPI(), SignalingSettings())
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Set
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio import CancelScope
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from signaling.auth import TokenClaims, TokenError, verify_token
from signaling.close_codes import CloseCode
from signaling.hooks import HookRunner, SignalingHooks, SubscriberInfo
from signaling.limits import TokenBucket
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

log = logging.getLogger("signaling")

INTERNAL_CLAIMS = TokenClaims(("*",), "rw", "collab-internal", float("inf"))
"""Claims of a co-located service's socket (``SignalingSettings.internal_key``): any room."""
INTERNAL_HEADER = "x-collab-internal"
"""Request header carrying the internal key (never a URL: URLs end up in access logs)."""
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

_ids = itertools.count(1)
Violation = tuple[int, str]
MAX_ROOM_NAME = 256
_SEND_ERRORS = (WebSocketDisconnect, OSError, RuntimeError)


class FrameHandler(Protocol):
    def __call__(self, conn: _Conn, data: str | bytes, /) -> Awaitable[Violation | None]: ...


def encode_text_frame(text: str) -> bytes:
    """One unmasked, uncompressed WebSocket text frame (server → client), encoded once per fan-out.

    Example:
        >>> encode_text_frame("hi")
        b'\\x81\\x02hi'
    """
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class _Conn:
    """One accepted socket, transport-neutral: identity, limits, outbox."""

    __slots__ = (
        "bucket",
        "claims",
        "close_request",
        "endpoint",
        "id",
        "info",
        "service",
        "throttled_since",
        "topic_count",
    )

    def __init__(
        self,
        service: SignalingService,
        endpoint: str,
        address: str,
        claims: TokenClaims | None,
    ) -> None:
        s = service.settings
        self.id = next(_ids)
        self.service = service
        self.endpoint = endpoint
        self.claims = claims
        self.info = SubscriberInfo(self.id, address, claims, endpoint)
        self.bucket = TokenBucket(s.rate_limit_per_second, s.rate_limit_burst, time.monotonic())
        self.close_request: Violation | None = None
        self.topic_count = 0
        self.throttled_since: float | None = None

    def enqueue(self, text: str, frame: bytes | None = None) -> None:
        """Queue a text frame (``frame`` = the same text pre-encoded, if available)."""
        raise NotImplementedError

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code``."""
        raise NotImplementedError


class _AsgiConn(_Conn):
    """A socket served through ASGI (FastAPI/Starlette): a bounded outbox drained by a writer."""

    __slots__ = ("recv_stream", "send_stream", "ws")

    def __init__(
        self,
        service: SignalingService,
        ws: WebSocket,
        endpoint: str,
        address: str,
        claims: TokenClaims | None,
    ) -> None:
        super().__init__(service, endpoint, address, claims)
        self.ws = ws
        self.send_stream: MemoryObjectSendStream[str]
        self.recv_stream: MemoryObjectReceiveStream[str]
        self.send_stream, self.recv_stream = anyio.create_memory_object_stream[str](
            service.settings.send_queue_size
        )

    def enqueue(self, text: str, frame: bytes | None = None) -> None:
        """Queue a text frame; a full queue closes this socket (1013), never blocks others."""
        try:
            self.send_stream.send_nowait(text)
        except anyio.WouldBlock:
            self.service.metrics.refusals.labels(reason="slow_consumer").inc()
            self.request_close(CloseCode.SLOW_CONSUMER, "send queue full")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.service.metrics.refusals.labels(reason="send_after_close").inc()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code`` (its writer stops, the reader is cancelled)."""
        if self.close_request is None:
            self.close_request = (code, reason)
            self.send_stream.close()


class SignalingService:
    """State and logic of one signaling instance (topics, named rooms, limits, hooks, Redis).

    Use ``install_signaling`` or ``create_app`` to get one bound to routes. In a combined app,
    call ``await service.start()`` / ``await service.stop()`` from the lifespan (otherwise it
    starts lazily on the first socket).

    Attributes:
        settings: the limits and options.
        metrics: Prometheus metrics on a per-service registry.
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
        self.topics: TopicRegistry[_Conn] = TopicRegistry()
        self.named = NamedRegistry(self.settings.named_max_name_length)
        self.hooks = HookRunner(hooks, self.metrics)
        self.bus: RedisBus | None = None
        self._per_address: dict[str, int] = {}
        self._started = False
        self.raw_frames = False
        """Set by the fast standalone server: fan-out frames are encoded once, shared."""
        self._secret = (
            self.settings.token_secret.get_secret_value()
            if self.settings.token_secret is not None
            else None
        )
        m = self.metrics
        self._m_in = {
            t: m.messages_in.labels(type=t)
            for t in ("subscribe", "unsubscribe", "publish", "ping", "ignored", "named")
        }

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start the Redis bus (if configured). Idempotent."""
        if self._started:
            return
        self._started = True
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
        self._started = False

    async def __aenter__(self) -> SignalingService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- admission
    def admit(
        self,
        header: Callable[[str], str | None],
        query_token: str | None,
        address: str,
        room: str | None,
    ) -> tuple[TokenClaims | None, Violation | None]:
        """Check Origin, token and the per-address limit for a new socket (any transport).

        A loopback socket presenting the internal key in the ``X-Collab-Internal`` header
        (``SignalingSettings.internal_key``) gets :data:`INTERNAL_CLAIMS`: no Origin/token
        check, no per-socket limits (one replica socket carries every room).

        Args:
            header: returns a request header value by (case-insensitive) name, or None.
            query_token: the ``token`` query parameter, if any.
            address: the client address.
            room: the room the socket is scoped to (named dialect), if any.

        Returns:
            ``(claims, None)`` to accept, or ``(claims, (code, reason))`` to refuse.
        """
        s = self.settings
        internal = header(INTERNAL_HEADER)
        if internal is not None and s.internal_key is not None:
            key = s.internal_key.get_secret_value().encode()
            given = internal.encode("utf-8", "surrogateescape")
            if key and address in _LOOPBACK and hmac.compare_digest(given, key):
                return INTERNAL_CLAIMS, None
            return None, (CloseCode.UNAUTHORIZED, "bad internal key")
        if s.allowed_origins:
            origin = header("origin")
            if origin is None:
                if not s.allow_missing_origin:
                    return None, (CloseCode.FORBIDDEN, "origin required")
            elif origin not in s.allowed_origins:
                return None, (CloseCode.FORBIDDEN, "origin not allowed")
        token = query_token
        if token is None:
            auth = header("authorization") or ""
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        claims: TokenClaims | None = None
        if (token or s.auth_required) and self._secret is not None:
            try:
                claims = verify_token(token, self._secret, room=room, leeway=s.token_leeway_seconds)
            except TokenError as exc:
                return None, (exc.code, exc.reason)
        if self._per_address.get(_quota_key(address, claims), 0) >= s.max_sockets_per_address:
            return claims, (CloseCode.RATE_LIMITED, "too many sockets from this address")
        return claims, None

    def refused(self, endpoint: str, address: str, code: int, reason: str) -> None:
        """Count and log a refused socket."""
        self.metrics.refusals.labels(reason=_reason_label(code, reason)).inc()
        log.info(
            "socket refused",
            extra={"endpoint": endpoint, "addr": address, "code": code, "reason": reason},
        )

    def opened(self, conn: _Conn) -> None:
        """Account a newly accepted socket."""
        key = _quota_key(conn.info.address, conn.claims)
        self._per_address[key] = self._per_address.get(key, 0) + 1
        self.metrics.sockets.labels(endpoint=conn.endpoint).inc()

    def closed(self, conn: _Conn) -> None:
        """Account a finished socket (after its endpoint-specific cleanup)."""
        address = conn.info.address
        key = _quota_key(address, conn.claims)
        self.metrics.sockets.labels(endpoint=conn.endpoint).dec()
        left = self._per_address.get(key, 1) - 1
        if left <= 0:
            self._per_address.pop(key, None)
        else:
            self._per_address[key] = left
        if conn.close_request is not None:
            code, reason = conn.close_request
            self.metrics.refusals.labels(reason=_reason_label(code, reason)).inc()
            log.info(
                "socket closed by server",
                extra={
                    "endpoint": conn.endpoint,
                    "addr": address,
                    "socket": conn.id,
                    "code": code,
                    "reason": reason,
                },
            )

    async def check_frame(self, conn: _Conn, data: str | bytes) -> Violation | None:
        """Apply the frame-size limit and shape the rate of one incoming frame.

        Over its rate, a socket waits here before its frame is handled — and its next frame
        is not read meanwhile, so TCP pushes back on the sender. Only a socket kept over its
        rate for ``rate_limit_close_after_seconds`` in a row is refused (4429).
        """
        size = len(data)
        if isinstance(data, str) and size * 4 > self.settings.max_frame_bytes:
            size = len(data.encode("utf-8", "surrogatepass"))
        self.metrics.bytes_in.inc(size)
        if size > self.settings.max_frame_bytes:
            return (CloseCode.FRAME_TOO_LARGE, "frame too large")
        if conn.claims is INTERNAL_CLAIMS:
            return None
        now = time.monotonic()
        wait = conn.bucket.wait_time(now)
        if wait <= 0:
            conn.throttled_since = None
        else:
            if conn.throttled_since is None:
                conn.throttled_since = now
                self.metrics.throttled.inc()
            elif now - conn.throttled_since >= self.settings.rate_limit_close_after_seconds:
                return (CloseCode.RATE_LIMITED, "rate limit exceeded")
            await anyio.sleep(wait)
        conn.bucket.take(time.monotonic())
        return None

    async def _serve(
        self,
        ws: WebSocket,
        endpoint: str,
        room: str | None,
        on_frame: FrameHandler,
        on_close: Callable[[_Conn], None],
        on_open: Callable[[_Conn], None] | None = None,
    ) -> None:
        if not self._started:
            await self.start()
        address = ws.client.host if ws.client is not None else "unknown"
        query = ws.query_params
        claims, refusal = self.admit(ws.headers.get, query.get("token"), address, room)
        await ws.accept()
        if refusal is not None:
            self.refused(endpoint, address, *refusal)
            await _close_quietly(ws, *refusal)
            return
        conn = _AsgiConn(self, ws, endpoint, address, claims)
        self.opened(conn)
        try:
            if on_open is not None:
                on_open(conn)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer, conn, tg.cancel_scope)
                violation = await self._reader(conn, on_frame)
                if violation is not None:
                    conn.request_close(*violation)
                tg.cancel_scope.cancel()
        finally:
            on_close(conn)
            conn.send_stream.close()
            self.closed(conn)
            if conn.close_request is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await _close_quietly(ws, *conn.close_request)

    async def _writer(self, conn: _AsgiConn, scope: CancelScope) -> None:
        ws_send = conn.ws.send
        m_out, b_out = self.metrics.messages_out, self.metrics.bytes_out
        recv = conn.recv_stream
        try:
            async with recv:
                while conn.close_request is None:
                    # drain without a checkpoint per item; only wait when the outbox is empty
                    try:
                        text = recv.receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            text = await recv.receive()
                        except anyio.EndOfStream:
                            break
                    except anyio.EndOfStream:
                        break
                    if conn.close_request is not None:
                        break
                    await ws_send({"type": "websocket.send", "text": text})
                    m_out.inc()
                    b_out.inc(len(text))
        except _SEND_ERRORS as exc:
            log.debug("send failed", extra={"socket": conn.id, "error": repr(exc)})
        scope.cancel()

    async def _reader(self, conn: _AsgiConn, on_frame: FrameHandler) -> Violation | None:
        receive = conn.ws.receive
        idle = self.settings.idle_timeout_seconds
        while True:
            with anyio.move_on_after(idle) as scope:
                try:
                    msg = await receive()
                except _SEND_ERRORS:
                    return None
            if scope.cancelled_caught:
                return (CloseCode.IDLE_TIMEOUT, "idle timeout")
            if msg["type"] != "websocket.receive":
                return None
            data: str | bytes | None = msg.get("text")
            if data is None:
                data = msg.get("bytes")
                if data is None:
                    continue
            violation = await self.check_frame(conn, data)
            if violation is None:
                violation = await on_frame(conn, data)
            if violation is not None:
                return violation

    # ----------------------------------------------------------------- y-webrtc protocol
    async def handle_yjs(self, ws: WebSocket) -> None:
        """Serve one y-webrtc signaling socket until it closes."""
        await self._serve(ws, "yjs", None, self._on_yjs_frame, self._on_yjs_close)

    async def _on_yjs_frame(self, conn: _Conn, data: str | bytes) -> Violation | None:
        msg = parse_frame(data)
        if isinstance(msg, Publish):
            self._m_in["publish"].inc()
            return await self._publish(conn, msg)
        if isinstance(msg, Ping):
            self._m_in["ping"].inc()
            conn.enqueue(PONG)
            return None
        if isinstance(msg, Subscribe):
            self._m_in["subscribe"].inc()
            violation = self._subscribe(conn, msg.topics)
            if violation is None and self.bus is not None:
                # this socket's next frame (its announce) waits until other instances can
                # answer it: until Redis has confirmed the topic's subscription (bounded)
                await self.bus.subscribed(topic for topic in msg.topics if topic)
            return violation
        if isinstance(msg, Unsubscribe):
            self._m_in["unsubscribe"].inc()
            for topic in msg.topics:
                self._unsubscribe(conn, topic)
            return None
        # the only remaining case of the closed union: Ignored
        self._m_in["ignored"].inc()
        self.metrics.refusals.labels(reason=msg.reason).inc()
        return None

    def _subscribe(self, conn: _Conn, topics: list[str]) -> Violation | None:
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

    def _unsubscribe(self, conn: _Conn, topic: str) -> None:
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

    def _on_yjs_close(self, conn: _Conn) -> None:
        for topic in list(self.topics.topics_of(conn)):
            self._unsubscribe(conn, topic)

    async def _publish(self, conn: _Conn, msg: Publish) -> Violation | None:
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
        self.metrics.fanout_seconds.observe(time.perf_counter() - t0)
        return None

    def _deliver_remote(self, topic: str, clients: int, raw: str) -> None:
        receivers = self.topics.subscribers(topic)
        if receivers:
            self._fan_out(receivers, with_clients(raw, clients))

    def _fan_out(self, receivers: Set[_Conn], text: str) -> None:
        frame = encode_text_frame(text) if self.raw_frames else None
        for receiver in list(receivers):
            receiver.enqueue(text, frame)

    # ----------------------------------------------------------------- named dialect
    def named_callbacks(
        self, room: str
    ) -> tuple[FrameHandler, Callable[[_Conn], None], Callable[[_Conn], None]]:
        """``(on_frame, on_close, on_open)`` for one named-dialect socket in ``room``."""
        peers: dict[int, NamedPeer] = {}

        def on_open(conn: _Conn) -> None:
            peers[conn.id] = NamedPeer(conn.enqueue)

        async def on_frame(conn: _Conn, data: str | bytes) -> Violation | None:
            self._m_in["named"].inc()
            self.named.handle(room, peers[conn.id], data)
            return None

        def on_close(conn: _Conn) -> None:
            peer = peers.pop(conn.id, None)
            if peer is not None:
                self.named.disconnect(room, peer)

        return on_frame, on_close, on_open

    async def handle_named(self, ws: WebSocket, room: str) -> None:
        """Serve one named-dialect socket in ``room`` until it closes."""
        if not valid_room(room):
            await ws.accept()
            self.metrics.refusals.labels(reason="bad_room").inc()
            await _close_quietly(ws, CloseCode.BAD_MESSAGE, "invalid room name")
            return
        on_frame, on_close, on_open = self.named_callbacks(room)
        await self._serve(ws, "named", room, on_frame, on_close, on_open)


def _quota_key(address: str, claims: TokenClaims | None) -> str:
    """Sockets are counted per token subject when the socket has one (an office behind one NAT
    shares an address, not a user), else per address."""
    if claims is not None and claims.subject:
        return "sub\x00" + claims.subject
    return address


def valid_room(room: str) -> bool:
    """Whether a named-dialect room (path segment) is acceptable."""
    return 0 < len(room) <= MAX_ROOM_NAME


def _reason_label(code: int, reason: str) -> str:
    labels: dict[int, str] = {
        CloseCode.FRAME_TOO_LARGE: "frame_too_large",
        CloseCode.SLOW_CONSUMER: "slow_consumer",
        CloseCode.UNAUTHORIZED: "unauthorized",
        CloseCode.FORBIDDEN: "forbidden",
        CloseCode.IDLE_TIMEOUT: "idle_timeout",
        CloseCode.TOPIC_FULL: "topic_full",
    }
    return labels.get(code, reason.replace(" ", "_")[:40])


async def _close_quietly(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state == WebSocketState.DISCONNECTED:
        return
    try:
        await ws.close(code, reason)
    except _SEND_ERRORS as exc:
        log.debug("close failed", extra={"code": code, "error": repr(exc)})


def install_signaling(
    app: FastAPI,
    settings: SignalingSettings | None = None,
    hooks: SignalingHooks | None = None,
    *,
    path: str = "/signaling",
    named_path: str | None = "/named/{room}",
    health_path: str | None = "/healthz",
    metrics_path: str | None = "/metrics",
    root: bool = False,
) -> SignalingService:
    """Mount the signaling routes on an existing FastAPI app.

    Args:
        app: the app to extend (e.g. collabd's combined app serving the web page at ``/``).
        settings: limits and options (default: ``SignalingSettings()`` from the environment).
        hooks: composition hooks.
        path: the y-webrtc WebSocket path.
        named_path: the named-dialect path (must contain ``{room}``), or None to skip.
        health_path: plain-text ``okay`` health answer, or None to skip.
        metrics_path: Prometheus endpoint, or None to skip.
        root: also answer ``GET /`` with ``okay`` and accept y-webrtc sockets at ``/``.

    Returns:
        The service; start/stop it from the app's lifespan (or let it start lazily).

    Example:
        >>> from fastapi import FastAPI
        >>> svc = install_signaling(FastAPI(), SignalingSettings(), metrics_path=None)
        >>> svc.settings.max_frame_bytes
        262144
    """
    service = SignalingService(settings, hooks)

    async def yjs_endpoint(websocket: WebSocket) -> None:
        await service.handle_yjs(websocket)

    app.add_api_websocket_route(path, yjs_endpoint, name="signaling")
    if named_path is not None:

        async def named_endpoint(websocket: WebSocket, room: str) -> None:
            await service.handle_named(websocket, room)

        app.add_api_websocket_route(named_path, named_endpoint, name="signaling_named")

    async def okay() -> PlainTextResponse:
        return PlainTextResponse("okay")

    if health_path is not None:
        app.add_api_route(health_path, okay, methods=["GET"], include_in_schema=False)
    if root:
        app.add_api_route("/", okay, methods=["GET"], include_in_schema=False)
        app.add_api_websocket_route("/", yjs_endpoint, name="signaling_root")
    if metrics_path is not None:

        async def metrics() -> Response:
            return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

        app.add_api_route(metrics_path, metrics, methods=["GET"], include_in_schema=False)
    return service


def create_app(
    settings: SignalingSettings | None = None, hooks: SignalingHooks | None = None
) -> FastAPI:
    """A standalone signaling app (drop-in for y-webrtc's ``bin/server.js``).

    Serves everything ``install_signaling`` does plus ``GET /`` → ``okay`` and y-webrtc sockets
    at ``/``. The service is at ``app.state.signaling``.

    Example:
        >>> app = create_app()
        >>> isinstance(app.state.signaling, SignalingService)
        True
    """
    holder: dict[str, SignalingService] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with holder["service"]:
            yield

    app = FastAPI(title="collab signaling", lifespan=lifespan, docs_url=None, redoc_url=None)
    service = install_signaling(app, settings, hooks, root=True)
    holder["service"] = service
    app.state.signaling = service
    return app


__all__ = ["SignalingService", "create_app", "install_signaling"]
