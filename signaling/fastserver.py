"""The fast standalone engine: the signaling service on the ``websockets`` asyncio server.

``collab signaling --engine fast`` serves the same protocol, limits, tokens, hooks, Redis bus and
metrics as the FastAPI app, without the ASGI layers: a fan-out frame is encoded once and the same
bytes are written to every subscriber's transport (no per-receiver task or re-encoding). A reader
whose transport buffer exceeds ``send_buffer_bytes`` is closed with 1013. Use the FastAPI app
(``create_app``/``install_signaling``) when signaling must share a port with other routes.

Paths: ``/`` and ``/signaling`` (y-webrtc), ``/named/{room}``; any plain HTTP GET answers
``okay`` like bin/server.js, except ``/metrics`` (Prometheus text).

Example:
    >>> # asyncio.run(run_fast(SignalingSettings(), "127.0.0.1", 4444))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from signaling.auth import TokenClaims
from signaling.close_codes import CloseCode
from signaling.conn import Conn as _Conn
from signaling.conn import FrameHandler, Violation
from signaling.hooks import SignalingHooks
from signaling.protocol import SignalingService, encode_text_frame, valid_room
from signaling.server import banner
from signaling.settings import SignalingSettings

log = logging.getLogger("signaling.fast")


class _Flusher:
    """Coalesces writes: frames queued during one event-loop iteration go out in one write per
    socket (fewer syscalls under load), and metrics are updated once per flush."""

    def __init__(self, service: SignalingService) -> None:
        self.service = service
        self.dirty: list[_FastConn] = []
        self.scheduled = False

    def mark(self, conn: _FastConn) -> None:
        self.dirty.append(conn)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        dirty, self.dirty = self.dirty, []
        frames = 0
        size = 0
        for conn in dirty:
            pending, conn.pending = conn.pending, []
            if conn.close_request is not None or conn.connection.state is not State.OPEN:
                continue
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            conn.connection.transport.write(data)
            frames += len(pending)
            size += len(data)
        if frames:
            metrics = self.service.metrics
            metrics.messages_out.inc(frames)
            metrics.bytes_out.inc(size)


class _FastConn(_Conn):
    """A socket on the websockets server: fan-out writes pre-encoded frames to its transport."""

    __slots__ = ("closer", "connection", "flusher", "pending")

    def __init__(
        self,
        service: SignalingService,
        connection: ServerConnection,
        endpoint: str,
        address: str,
        claims: TokenClaims | None,
        flusher: _Flusher,
    ) -> None:
        super().__init__(service, endpoint, address, claims)
        self.connection = connection
        self.closer: asyncio.Task[None] | None = None
        self.flusher = flusher
        self.pending: list[bytes] = []

    def enqueue(self, text: str, frame: bytes | None = None) -> None:
        """Queue a text frame for this iteration's flush; an over-full transport buffer closes
        this socket (1013) instead of growing without bound."""
        if self.close_request is not None:
            return
        transport = self.connection.transport
        if transport.get_write_buffer_size() > self.service.settings.send_buffer_bytes:
            self.service.metrics.refusals.labels(reason="slow_consumer").inc()
            self.request_close(CloseCode.SLOW_CONSUMER, "send buffer full")
            return
        if not self.pending:
            self.flusher.mark(self)
        self.pending.append(encode_text_frame(text) if frame is None else frame)

    def request_close(self, code: int, reason: str) -> None:
        """Close with ``code``; the socket's reader then sees the close and cleans up."""
        if self.close_request is None:
            self.close_request = (code, reason)
            self.closer = asyncio.get_running_loop().create_task(
                self.connection.close(code, reason)
            )


def _http(
    service: SignalingService, connection: ServerConnection, request: Request
) -> Response | None:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return None
    if urlsplit(request.path).path == "/metrics":
        response = connection.respond(HTTPStatus.OK, service.metrics.render().decode())
        response.headers["Content-Type"] = "text/plain; version=0.0.4"
        return response
    return connection.respond(HTTPStatus.OK, "okay")


async def _handle(
    service: SignalingService, connection: ServerConnection, flusher: _Flusher
) -> None:
    request = connection.request
    if request is None:  # the handshake always sets it; be defensive anyway
        return
    parts = urlsplit(request.path)
    token = parse_qs(parts.query).get("token", [None])[0]
    on_open = None
    room: str | None = None
    on_frame: FrameHandler
    on_close: Callable[[_Conn], None]
    if parts.path in ("/", "/signaling"):
        endpoint, on_frame, on_close = "yjs", service.on_yjs_frame, service.on_yjs_close
    elif parts.path.startswith("/named/"):
        room = unquote(parts.path[len("/named/") :])
        if not valid_room(room) or "/" in room:
            service.metrics.refusals.labels(reason="bad_room").inc()
            await connection.close(CloseCode.BAD_MESSAGE, "invalid room name")
            return
        endpoint = "named"
        on_frame, on_close, on_open = service.named_callbacks(room)
    else:
        service.metrics.refusals.labels(reason="not_found").inc()
        await connection.close(CloseCode.NOT_FOUND, "no such endpoint")
        return
    remote = connection.remote_address
    address = str(remote[0]) if remote else "unknown"
    claims, refusal = service.admit(request.headers.get, token, address, room)
    if refusal is not None:
        service.refused(endpoint, address, *refusal)
        await connection.close(*refusal)
        return
    conn = _FastConn(service, connection, endpoint, address, claims, flusher)
    service.opened(conn)
    idle = service.settings.idle_timeout_seconds
    try:
        if on_open is not None:
            on_open(conn)
        while conn.close_request is None:
            try:
                async with asyncio.timeout(idle):
                    data = await connection.recv()
            except TimeoutError:
                conn.close_request = (CloseCode.IDLE_TIMEOUT, "idle timeout")
                break
            except ConnectionClosed:
                break
            violation: Violation | None = await service.check_frame(conn, data)
            if violation is None:
                violation = await on_frame(conn, data)
            if violation is not None:
                conn.close_request = violation
                break
    finally:
        on_close(conn)
        service.closed(conn)
        if conn.close_request is not None:
            if conn.closer is not None:
                await conn.closer
            else:
                await connection.close(*conn.close_request)


def serve_signaling(
    service: SignalingService,
    host: str | None = None,
    port: int | None = None,
    **kwargs: Any,
) -> AbstractAsyncContextManager[Server]:
    """The websockets server for ``service`` (an async context manager yielding ``Server``).

    Args:
        service: the signaling service (its ``raw_frames`` is switched on).
        host: interface to bind.
        port: TCP port.
        **kwargs: passed to ``websockets.asyncio.server.serve`` (e.g. ``sock=``).

    Example:
        >>> # async with serve_signaling(SignalingService(), "127.0.0.1", 4444) as server:
        >>> #     await server.serve_forever()
    """
    service.raw_frames = True
    s = service.settings
    flusher = _Flusher(service)

    async def handler(connection: ServerConnection) -> None:
        await _handle(service, connection, flusher)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        return _http(service, connection, request)

    return serve(
        handler,
        host,
        port,
        process_request=process_request,
        compression=None,
        max_size=s.max_frame_bytes * 2,
        ping_interval=s.ws_ping_interval_seconds,
        ping_timeout=s.ws_ping_timeout_seconds,
        server_header=None,
        logger=log,
        **kwargs,
    )


async def run_fast(
    settings: SignalingSettings,
    host: str,
    port: int,
    hooks: SignalingHooks | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until cancelled (Ctrl-C) on ``host:port``, or on an already bound ``sock``."""
    async with SignalingService(settings, hooks) as service:
        server: Server
        where: dict[str, Any] = {"sock": sock} if sock is not None else {}
        bind = (None, None) if sock is not None else (host, port)
        async with serve_signaling(service, *bind, **where) as server:
            log.info("signaling (fast engine) listening", extra={"host": host, "port": port})
            print(banner(host, port, sock), flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await server.serve_forever()
