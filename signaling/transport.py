"""Transport: y-webrtc and named-dialect sockets on raw ASGI (uvicorn), lean per message.

Two ways a socket is served, chosen per socket by what the server offers:

* **Direct** (:class:`DirectConn`), on :class:`~signaling.websocket.SignalingWebSocket` — the
  protocol ``collab serve`` and ``collab signaling`` give uvicorn. After the ASGI handshake
  (so every middleware saw the upgrade), each message is handled in the protocol's
  ``data_received``: admission, dispatch and the fan-out run there, with no queue or task
  switch per message; a fan-out's frame is encoded and framed once (:class:`~signaling.conn.
  Shared`) and each receiver's copy is queued on its socket, written once per socket at the
  end of the event-loop turn. A message that must wait (over its rate: traffic shaping; a
  Redis round trip) is held with everything after it — reading pauses, TCP pushes back on the
  sender — and the socket's task handles it. A client that reads slower than we write gets
  ``send_queue_size`` frames queued, then a 1013 close.
* **ASGI** (:class:`AsgiConn`), on any other server: one reader (the ASGI task: size cap, rate
  shaping, dispatch) and one writer task that is idle almost always. A fan-out hands each
  receiver its frame *in the publisher's task*: the ASGI ``send`` of an idle, writable socket
  completes without suspending, so a publish to ten receivers costs ten calls, not ten task
  switches. A send that would wait (a paused transport) is handed to that socket's writer,
  later frames queue behind it (bounded by ``send_queue_size``: past it, 1013).

Frames are only ever built by the websockets library (the direct path through
``ServerProtocol``/``text_frame``, the ASGI path through the server's ``send``).

:class:`SignalingFront` (ASGI middleware) routes signaling sockets here before any framework
layer; everything else goes on to the app.

Example:
    >>> # app.add_middleware(SignalingFront, service=service, paths=("/signaling",))
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from signaling.auth import TokenClaims
from signaling.close_codes import CloseCode
from signaling.conn import Conn, FrameHandler, Shared, Violation
from signaling.protocol import SignalingService, valid_room
from signaling.websocket import DIRECT, DirectSocket, text_frame

log = logging.getLogger("signaling")


_SEND_ERRORS = (OSError, RuntimeError)  # uvicorn: ClientDisconnected is an OSError
CLOSE_WAIT_SECONDS = 2.0
"""How long a close may wait for a paused transport before the socket is dropped."""


class _Resume:
    """Await the rest of a send that suspended outside any task (in a publisher's fan-out).

    The suspended awaitable yielded what it waits on (a future); awaiting this object passes
    that up to the awaiting task and drives the send on from there, as ``await`` would have
    (any ``__await__`` iterator works: coroutines, and servers' own awaitables); the result
    is the awaitable's.
    """

    __slots__ = ("_it", "_pending")

    def __init__(self, it: Generator[Any, Any, Any], pending: Any) -> None:
        self._it = it
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        it, pending = self._it, self._pending
        while True:
            try:
                value = yield pending
            except BaseException as exc:
                throw = getattr(it, "throw", None)
                if throw is None:
                    raise
                try:
                    pending = throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = next(it) if value is None else it.send(value)
                except StopIteration as stop:
                    return stop.value


class AsgiConn(Conn):
    """A socket served through ASGI: frames go out at once when the socket is writable, else
    through a bounded outbox drained by this socket's writer."""

    __slots__ = (
        "_asgi_send",
        "_busy",
        "_sending",
        "_stalled",
        "_wake",
        "gone",
        "last_frame",
        "outbox",
    )

    def __init__(
        self,
        service: SignalingService,
        send: Send,
        endpoint: str,
        address: str,
        claims: TokenClaims | None,
    ) -> None:
        super().__init__(service, endpoint, address, claims)
        self._asgi_send = send
        self.outbox: deque[str] = deque()
        self._busy = False  # the writer owns sending: frames queue behind it, in order
        self._stalled: _Resume | None = None  # a send that suspended, for the writer to finish
        self._wake = anyio.Event()
        self._sending: anyio.CancelScope | None = None  # the writer's sends, while under way
        self.gone = False
        "The client disconnected (or a send failed): nothing more is sent."
        self.last_frame = time.monotonic()

    def enqueue(self, text: str) -> None:
        """Send a text frame now if the socket is writable, else queue it (never blocks; a
        full outbox closes this socket with 1013)."""
        if self.close_request is not None or self.gone:
            return
        if self._busy:
            if len(self.outbox) >= self.service.settings.send_queue_size:
                self.request_close(CloseCode.SLOW_CONSUMER, "send queue full")
                return
            self.outbox.append(text)
            return
        send = self._asgi_send({"type": "websocket.send", "text": text}).__await__()
        # the send runs right here, in the publisher's task: done unless it has to wait
        tally = self.service.metrics.tally
        tally.messages_out += 1
        tally.bytes_out += len(text)
        try:
            pending = next(send)
        except StopIteration:
            return
        except _SEND_ERRORS as exc:
            log.debug("send failed", extra={"socket": self.id, "error": repr(exc)})
            self.disconnected()
            return
        self._busy = True
        self._stalled = _Resume(send, pending)
        self._wake.set()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code`` (its writer sends the close)."""
        if self.close_decided(code, reason):
            self._stop_sending()

    def disconnected(self) -> None:
        """The client is gone: stop sending, let the writer end."""
        self.gone = True
        self._stop_sending()

    def _stop_sending(self) -> None:
        self._wake.set()
        if self._sending is not None:  # a send waiting on a paused transport: give it up
            self._sending.cancel()

    async def writer(self) -> None:
        """Finish stalled sends, drain the outbox, close an idle socket; when asked to close,
        send the close and return (also when the client is gone)."""
        send = self._asgi_send
        tally = self.service.metrics.tally
        try:
            while self.close_request is None and not self.gone:
                await _woken(self)
                stalled, self._stalled = self._stalled, None
                with anyio.CancelScope() as self._sending:
                    if stalled is not None:
                        await stalled
                    while self.outbox and self.close_request is None and not self.gone:
                        text = self.outbox.popleft()
                        tally.messages_out += 1
                        tally.bytes_out += len(text)
                        await send({"type": "websocket.send", "text": text})
                self._sending = None
                self._busy = False
        except _SEND_ERRORS as exc:
            log.debug("send failed", extra={"socket": self.id, "error": repr(exc)})
            self.gone = True
        if self.close_request is not None and not self.gone:
            # a paused transport takes no close either: bounded, then the socket is dropped
            with anyio.move_on_after(CLOSE_WAIT_SECONDS):
                await _close_quietly(send, *self.close_request)


class DirectConn(Conn):
    """A socket on :class:`~signaling.websocket.SignalingWebSocket`'s direct path: frames are
    handled in ``data_received`` and written straight to the transport.

    A frame that must wait (over its rate, or a Redis round trip) is held with everything read
    after it — reading pauses, so TCP pushes back on the sender — and this socket's task
    (:meth:`run`) handles it, then resumes reading. A client reading slower than we write
    gets ``send_queue_size`` frames queued, then a 1013 close.
    """

    __slots__ = (
        "_asgi_send",
        "_held",
        "_stalled",
        "_wake",
        "gone",
        "last_frame",
        "on_frame",
        "sock",
        "tally",
    )

    def __init__(
        self,
        service: SignalingService,
        sock: DirectSocket,
        send: Send,
        endpoint: str,
        address: str,
        claims: TokenClaims | None,
        on_frame: FrameHandler,
    ) -> None:
        super().__init__(service, endpoint, address, claims)
        self.sock = sock
        self.tally = service.metrics.tally
        self._asgi_send = send
        self.on_frame = on_frame
        self._held: tuple[str | bytes, float] | None = None  # a frame for the task, and its wait
        self._stalled: _Resume | None = None  # a handler that suspended, for the task to end
        self._wake = anyio.Event()
        self.gone = False
        self.last_frame = time.monotonic()

    def enqueue(self, text: str) -> None:
        """Write a text frame now (queued inside the protocol while the client is slow)."""
        self.send_shared(Shared(text))

    def send_shared(self, shared: Shared) -> None:
        """Write a fan-out's frame, framed once for all its receivers (a full outbox: 1013)."""
        if self.close_request is not None or self.gone:
            return
        frame = shared.frame
        if frame is None:
            frame = shared.frame = text_frame(shared.data)
        tally = self.tally
        tally.messages_out += 1
        tally.bytes_out += len(shared.text)
        if not self.sock.send_text(shared.data, frame):
            self.request_close(CloseCode.SLOW_CONSUMER, "send queue full")

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code`` (its task sends the close)."""
        if self.close_decided(code, reason):
            self._wake.set()

    def disconnected(self) -> None:
        """The client is gone (the protocol's ``on_lost``)."""
        self.gone = True
        self._wake.set()

    def on_message(self, data: str | bytes) -> bool:
        """One complete message, in ``data_received``: handle it now when nothing has to
        wait, else hold it (the protocol holds the rest of the input) for :meth:`run`."""
        self.last_frame = time.monotonic()
        if self.close_request is not None or self.gone:
            return True  # closing: the rest is discarded
        service = self.service
        verdict = service.admission.frame_verdict(self, data)
        if isinstance(verdict, tuple):
            self.request_close(*verdict)
            return True
        if verdict is None and service.bus is None:
            # without a Redis bus nothing in dispatch waits: the handler ends on its first
            # step, driven right here (no task switch); should it wait anyway, run() ends it
            step = self.on_frame(self, data).__await__()
            try:
                pending = next(step)
            except StopIteration as done:
                if done.value is not None:
                    self.request_close(*done.value)
                return True
            except Exception:  # a bug, not the peer's doing: this socket only (counted on close)
                log.exception("signaling frame handler failed", extra={"socket": self.id})
                self.request_close(CloseCode.INTERNAL_ERROR, "internal error")
                return True
            self._stalled = _Resume(step, pending)
        else:  # over its rate (wait first), or a Redis round trip: the task handles it
            self._held = (data, 0.0 if verdict is None else verdict)
        self._wake.set()
        return False

    async def run(self) -> None:
        """Handle held frames and resume reading; close an idle socket; when asked to close,
        send the close and return (also when the client is gone)."""
        while self.close_request is None and not self.gone:
            await _woken(self)
            if self.close_request is not None:
                break
            stalled, self._stalled = self._stalled, None
            held, self._held = self._held, None
            violation: Violation | None = None
            if stalled is not None:
                violation = await stalled
            elif held is not None:
                data, wait = held
                if wait > 0:  # traffic shaping: this socket is read no faster than its rate
                    await anyio.sleep(wait)
                    self.bucket.take(time.monotonic())
                violation = await self.on_frame(self, data)
            if violation is not None:
                self.request_close(*violation)
            elif self.close_request is None and not self.gone:
                self.sock.resume()  # may hand this task the next held frame at once
        if self.close_request is not None and not self.gone:
            with anyio.move_on_after(CLOSE_WAIT_SECONDS):
                await _close_quietly(self._asgi_send, *self.close_request)


async def _woken(conn: AsgiConn | DirectConn) -> None:
    """Wait for a socket's wake-up (work, a close, a disconnect); a socket that has sent
    nothing for ``idle_timeout_seconds`` is asked to close instead."""
    idle = conn.service.settings.idle_timeout_seconds
    with anyio.move_on_after(conn.last_frame + idle - time.monotonic()):
        await conn._wake.wait()
    conn._wake = anyio.Event()
    if time.monotonic() - conn.last_frame >= idle:
        conn.request_close(CloseCode.IDLE_TIMEOUT, "idle timeout")


async def _close_quietly(send: Send, code: int, reason: str) -> None:
    try:
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except _SEND_ERRORS as exc:
        log.debug("close failed", extra={"code": code, "error": repr(exc)})


def _header_getter(scope: Scope) -> Callable[[str], str | None]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers.get


async def serve_socket(
    service: SignalingService,
    scope: Scope,
    receive: Receive,
    send: Send,
    room: str | None = None,
) -> None:
    """Serve one signaling socket (an ASGI ``websocket`` scope) until it closes: y-webrtc, or
    the named dialect in ``room``."""
    if not service.started:
        await service.start()
    if (await receive())["type"] != "websocket.connect":
        return
    endpoint = "yjs" if room is None else "named"
    if room is not None and not valid_room(room):
        await send({"type": "websocket.accept"})
        service.metrics.refusals.labels(reason="bad_room").inc()
        await _close_quietly(send, CloseCode.BAD_MESSAGE, "invalid room name")
        return
    client = scope.get("client")
    address = str(client[0]) if client else "unknown"
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token = query["token"][0] if "token" in query else None
    claims, refusal = service.admission.admit(_header_getter(scope), token, address, room)
    # refusals come after the upgrade, so browsers see the code (a refused upgrade is 1006)
    await send({"type": "websocket.accept"})
    if refusal is not None:
        service.admission.refused(endpoint, address, *refusal)
        await _close_quietly(send, *refusal)
        return
    on_open: Callable[[Conn], None] | None = None
    if room is None:
        on_frame: FrameHandler = service.on_yjs_frame
        on_close: Callable[[Conn], None] = service.on_yjs_close
    else:
        on_frame, on_close, on_open = service.named_callbacks(room)
    direct = (scope.get("extensions") or {}).get(DIRECT)
    conn: AsgiConn | DirectConn
    if direct is not None:  # SignalingWebSocket: frames handled as they are read
        conn = DirectConn(service, direct["socket"], send, endpoint, address, claims, on_frame)
    else:
        conn = AsgiConn(service, send, endpoint, address, claims)
    service.admission.opened(conn)
    try:
        if on_open is not None:
            on_open(conn)
        if isinstance(conn, DirectConn):
            conn.sock.start_direct(
                conn.on_message, conn.disconnected, service.settings.send_queue_size
            )
            await conn.run()
            return
        async with anyio.create_task_group() as tg:
            reader_done = anyio.Event()
            tg.start_soon(_reader, conn, receive, on_frame, reader_done)
            await conn.writer()
            # after a close: the reader ends on the client's answer (or its disconnect)
            with anyio.move_on_after(CLOSE_WAIT_SECONDS):
                await reader_done.wait()
            tg.cancel_scope.cancel()
    finally:
        on_close(conn)
        service.admission.closed(conn)


async def _reader(
    conn: AsgiConn, receive: Receive, on_frame: FrameHandler, done: anyio.Event
) -> None:
    """Read, check and dispatch frames until the socket closes or breaks a limit (the idle
    timeout is the writer's: a timer per frame would cost more than the frame)."""
    check_frame = conn.service.admission.check_frame
    monotonic = time.monotonic
    try:
        while True:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                break
            conn.last_frame = monotonic()
            data: str | bytes | None = msg.get("text")
            if data is None:
                data = msg.get("bytes")
                if data is None:
                    continue
            violation = await check_frame(conn, data)
            if violation is None:
                violation = await on_frame(conn, data)
            if violation is not None:
                conn.request_close(*violation)
                return
    except _SEND_ERRORS:
        pass
    finally:
        done.set()
    conn.disconnected()


class SignalingFront:
    """ASGI middleware: signaling sockets go straight to :func:`serve_socket` (no framework
    layer between a frame and the protocol), everything else on to ``app``.

    Args:
        app: the wrapped app (e.g. the FastAPI app with the page and the HTTP API).
        service: the signaling service.
        paths: WebSocket paths of y-webrtc signaling.
        named_prefix: the named dialect's path prefix (``/named/`` + room), or None.
    """

    def __init__(
        self,
        app: ASGIApp,
        service: SignalingService,
        paths: tuple[str, ...] = ("/signaling",),
        named_prefix: str | None = "/named/",
    ) -> None:
        self.app = app
        self.service = service
        self.paths = frozenset(paths)
        self.named_prefix = named_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            if path in self.paths:
                await serve_socket(self.service, scope, receive, send)
                return
            prefix = self.named_prefix
            if prefix is not None and path.startswith(prefix):
                room = path[len(prefix) :]
                if "/" not in room:
                    await serve_socket(self.service, scope, receive, send, room)
                    return
        await self.app(scope, receive, send)
