"""Transport: y-webrtc and named-dialect sockets served through ASGI (uvicorn).

One task reads (size cap, rate shaping, dispatch); a writer drains the socket's bounded outbox,
so a slow reader only ever fills its own queue (then it is closed with 1013).

Example:
    >>> # async def endpoint(websocket): await serve_yjs(service, websocket)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from anyio import CancelScope
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from signaling.auth import TokenClaims
from signaling.close_codes import CloseCode
from signaling.conn import Conn, FrameHandler, Violation
from signaling.protocol import SignalingService, valid_room

log = logging.getLogger("signaling")

_SEND_ERRORS = (WebSocketDisconnect, OSError, RuntimeError)


class AsgiConn(Conn):
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


async def serve_yjs(service: SignalingService, ws: WebSocket) -> None:
    """Serve one y-webrtc signaling socket until it closes."""
    await _serve(service, ws, "yjs", None, service.on_yjs_frame, service.on_yjs_close)


async def serve_named(service: SignalingService, ws: WebSocket, room: str) -> None:
    """Serve one named-dialect socket in ``room`` until it closes."""
    if not valid_room(room):
        await ws.accept()
        service.metrics.refusals.labels(reason="bad_room").inc()
        await _close_quietly(ws, CloseCode.BAD_MESSAGE, "invalid room name")
        return
    on_frame, on_close, on_open = service.named_callbacks(room)
    await _serve(service, ws, "named", room, on_frame, on_close, on_open)


async def _serve(
    service: SignalingService,
    ws: WebSocket,
    endpoint: str,
    room: str | None,
    on_frame: FrameHandler,
    on_close: Callable[[Conn], None],
    on_open: Callable[[Conn], None] | None = None,
) -> None:
    if not service.started:
        await service.start()
    address = ws.client.host if ws.client is not None else "unknown"
    query = ws.query_params
    claims, refusal = service.admission.admit(ws.headers.get, query.get("token"), address, room)
    await ws.accept()
    if refusal is not None:
        service.admission.refused(endpoint, address, *refusal)
        await _close_quietly(ws, *refusal)
        return
    conn = AsgiConn(service, ws, endpoint, address, claims)
    service.admission.opened(conn)
    try:
        if on_open is not None:
            on_open(conn)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_writer, conn, tg.cancel_scope)
            violation = await _reader(conn, on_frame)
            if violation is not None:
                conn.request_close(*violation)
            tg.cancel_scope.cancel()
    finally:
        on_close(conn)
        conn.send_stream.close()
        service.admission.closed(conn)
        if conn.close_request is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await _close_quietly(ws, *conn.close_request)


async def _writer(conn: AsgiConn, scope: CancelScope) -> None:
    ws_send = conn.ws.send
    metrics = conn.service.metrics
    m_out, b_out = metrics.messages_out, metrics.bytes_out
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


async def _reader(conn: AsgiConn, on_frame: FrameHandler) -> Violation | None:
    receive = conn.ws.receive
    check_frame = conn.service.admission.check_frame
    idle = conn.service.settings.idle_timeout_seconds
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
        violation = await check_frame(conn, data)
        if violation is None:
            violation = await on_frame(conn, data)
        if violation is not None:
            return violation


async def _close_quietly(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state == WebSocketState.DISCONNECTED:
        return
    try:
        await ws.close(code, reason)
    except _SEND_ERRORS as exc:
        log.debug("close failed", extra={"code": code, "error": repr(exc)})
