"""The WebSocket protocol ``collab serve`` gives uvicorn: ASGI sockets with a direct frame path.

uvicorn takes the WebSocket protocol class as configuration (``uvicorn.Config(ws=...)``).
:class:`SignalingWebSocket` speaks the wire through the websockets library's sans-I/O
``ServerProtocol`` (handshake validation, framing, UTF-8 and size checks, close handshake) and
serves any ASGI app exactly as uvicorn's own implementations do: the upgrade request is an ASGI
``websocket`` scope, so every middleware (allowed hosts, proxy headers, the signaling front)
sees it, and ``websocket.accept``/``send``/``close``/``receive`` work as the spec says.

What it adds is the ``collab.direct`` scope extension. After ``websocket.accept`` an app may
take the socket's frames directly (:class:`DirectSocket`): each complete message is handed to
a synchronous callback from ``data_received`` (no queue, no task switch, no read pause per
message), frames are written straight to the transport (no coroutine per send), and the app
may hold the rest of the input (reading pauses, TCP pushes back on the sender) until it calls
:meth:`DirectSocket.resume`. The y-webrtc signaling transport uses it: a publish fanned out to
ten sockets is ten ``send_text`` calls in the publisher's callback. Frames are always built by
``ServerProtocol.send_text``: nothing is written behind the library's back.

Example:
    >>> import uvicorn
    >>> config = uvicorn.Config("signaling.server:app", ws=SignalingWebSocket)
    >>> config.ws is SignalingWebSocket
    True
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import weakref
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

from websockets.exceptions import InvalidState
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

Event = Request | Response | Frame

__all__ = ["DIRECT", "ClientDisconnected", "DirectSocket", "SignalingWebSocket", "text_frame"]

DIRECT = "collab.direct"
"""The scope extension's key: ``scope["extensions"][DIRECT]["socket"]`` is a
:class:`DirectSocket` (only on sockets this protocol serves)."""

CLOSE_TIMEOUT = 10.0
"""Seconds a closing socket waits for the client's side of the close handshake (and for a
client to take what we wrote before the close, see ``_close_transport``)."""
PARSE_SLICE = 8192
"""Input is parsed this many bytes at a time, so held input stays raw bytes (see ``_feed``)."""
CONTROL_BURST = 100
CONTROL_RATE = 10.0
"""Pings and pongs a client may send: a burst of :data:`CONTROL_BURST`, then
:data:`CONTROL_RATE` per second (past it, reading waits: shaped, not closed). Control frames
are not messages, so the rate limit never saw them: one socket streaming empty pongs had
~60 % of the event loop (600,000 in 1 s; a victim's ping waited 200-300 ms). Browsers send
none but their answers to our keepalive pings (one per ``ws_ping_interval``)."""
MAX_FRAGMENTS = 1024
"""Frames one message may come in (past it: 1009). Fragments are not messages: the rate
limit never sees them, so without a cap a client streams empty continuation frames at line
speed (a million of them held 8 MB of list and stalled others' pings ~1 s), or 1-byte ones
(~40 B of memory each, up to ``ws_max_size``: ~11 MB per socket). Browsers do not fragment;
a proxy that re-fragments a 256 KiB message stays far below (256 B per frame)."""

log = logging.getLogger("uvicorn.error")  # uvicorn's own logger: its handlers and filters apply
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class ClientDisconnected(OSError):
    """An ASGI ``send`` on a socket whose client is gone (the spec asks for an OSError)."""


class DirectSocket(Protocol):
    """The direct frame path of one accepted socket (the ``collab.direct`` extension)."""

    def start_direct(
        self, on_message: Callable[[str | bytes], bool], on_lost: Callable[[], None], outbox: int
    ) -> None:
        """From now on hand every complete message (text as str, binary as bytes) to
        ``on_message`` instead of ``receive()``; it returns False to hold the input (reading
        pauses until :meth:`resume`). ``on_lost`` is called once when the connection ends.
        ``outbox``: frames kept while the client reads slower than we write (past it,
        :meth:`send_text` returns False)."""

    def resume(self) -> None:
        """Deliver held messages and read again (after ``on_message`` returned False)."""

    def send_text(self, data: bytes, frame: bytes | None = None) -> bool:
        """Send one text frame (UTF-8 ``data``; ``frame``: the same already framed by
        :func:`text_frame`, shared by a fan-out), or queue it while the client is not reading;
        False when the outbox is full (the caller should close the socket). Frames sent in
        one event-loop turn are written together at its end."""


class SignalingWebSocket(asyncio.Protocol):
    """uvicorn WebSocket protocol: ASGI sockets on websockets' sans-I/O layer, plus
    :class:`DirectSocket` (see the module docstring). Pass the class as ``uvicorn.Config(ws=)``;
    ``ws_max_size``, ``ws_ping_interval``, ``ws_ping_timeout`` and ``ws_per_message_deflate``
    apply as with uvicorn's own implementations."""

    def __init__(
        self,
        config: Any,  # uvicorn.Config (typed loosely: uvicorn passes it by keyword)
        server_state: Any,  # uvicorn.server.ServerState: connections, tasks, default_headers
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        extensions: list[ServerExtensionFactory] = []
        if config.ws_per_message_deflate:
            extensions.append(
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5},
                )
            )
        self.ws = ServerProtocol(extensions=extensions, max_size=config.ws_max_size, logger=log)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}
        self.response: Response | None = None
        # ASGI side
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.accepted = False  # the 101 response went out (or an HTTP answer did)
        self.close_sent = False  # a close frame went out (or the client's was answered)
        self.lost = False  # the connection ended (or the app was told it did)
        self.writable = asyncio.Event()  # for ASGI sends (the direct path reads the flag)
        self.writable.set()
        self.write_paused = False
        self.reading = True
        self.queue_paused = False  # reading paused until the app takes the queued message
        # message assembly
        self.fragments = bytearray()  # the message so far (its size: websockets' max_size)
        self.fragment_count = 0
        self.control_tokens = float(CONTROL_BURST)
        self.control_time = self.loop.time()
        self.fragments_text = False
        # direct path
        self.on_message: Callable[[str | bytes], bool] | None = None
        self.on_lost: Callable[[], None] | None = None
        self.held: deque[Event] | None = None  # input held by the direct callback
        self.unread = b""  # input not parsed yet, behind held input
        self.outbox: deque[bytes] = deque()
        self.outbox_limit = 0
        self.out: list[bytes] = []  # framed output not yet written, in order
        self.shares_frames = False  # no extension negotiated: text_frame is our framing
        self.batch = _batch_for(self.loop)
        # timers
        self.close_timer: asyncio.TimerHandle | None = None
        self.abort_timer: asyncio.TimerHandle | None = None  # a close waiting on unsent output
        self.control_timer: asyncio.TimerHandle | None = None  # input held: control frame rate
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.ping_payload: bytes | None = None

    @property
    def sending(self) -> bool:
        """Data frames may go out: accepted, no close sent, not lost."""
        return self.accepted and not self.close_sent and not self.lost

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called by uvicorn's HTTP protocol, which then feeds the upgrade request."""
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        self.client = _address(transport.get_extra_info("peername"))
        self.server = _address(transport.get_extra_info("sockname"))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "wss"

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self._stop_keepalive()
        for timer in (self.close_timer, self.abort_timer, self.control_timer):
            if timer is not None:
                timer.cancel()
        self.close_timer = self.abort_timer = self.control_timer = None
        if not self.lost:
            self.lost = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self.writable.set()  # a send waiting for a paused transport raises now
        self.held, self.unread = None, b""
        self.outbox.clear()
        on_lost, self.on_lost = self.on_lost, None
        self.on_message = None
        if on_lost is not None:
            on_lost()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def pause_writing(self) -> None:
        """The client does not read what we write: stop reading what it writes (pings and
        closes would otherwise queue answers in our buffer without bound)."""
        self.write_paused = True
        self.writable.clear()
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.writable.set()
        outbox, ws = self.outbox, self.ws
        while outbox and not self.write_paused and self.sending:
            ws.send_text(outbox.popleft())
            self._flush()
        self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.held is not None or self.unread:  # (in flight when reading paused)
            self.unread += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse and handle ``data`` :data:`PARSE_SLICE` bytes at a time; once the input is
        held, the rest stays unparsed bytes (a read of tiny frames would otherwise become
        tens of thousands of parsed frames waiting in memory)."""
        ws = self.ws
        size, start = len(data), 0
        while start < size:
            ws.receive_data(data[start : start + PARSE_SLICE] if size > PARSE_SLICE else data)
            start += PARSE_SLICE
            self._process(deque(ws.events_received()))
            answer = ws.data_to_send()  # pongs, close replies, handshake responses
            if answer:
                self.out.extend(answer)
                self._flush()
            # else frames queued while reading wait for the turn's batch write (coalesced)
            if ws.parser_exc is not None or ws.close_expected():
                self._closing()
                return
            if self.held is not None:
                self.unread = data[start:]
                return

    def shutdown(self) -> None:
        """The server is stopping (uvicorn calls this for every open connection)."""
        self._stop_keepalive()
        transport = self.transport
        if transport is None:
            return
        if self.accepted and not self.close_sent and self.ws.state is State.OPEN:
            self._disconnect_event(1012, "")
            self.ws.send_close(1012)
            self.close_sent = True
            self._flush()
        elif not self.accepted:
            self._respond(HTTPStatus.INTERNAL_SERVER_ERROR)
        self._close_transport()

    # ------------------------------------------------------------------ input
    def _process(self, events: deque[Event]) -> None:
        while events:
            event = events.popleft()
            if isinstance(event, Request):
                self._handshake(event)
                continue
            if not isinstance(event, Frame):
                continue  # a Response: only clients receive those
            opcode = event.opcode
            if opcode in _DATA:
                if opcode is not Opcode.CONT:
                    self.fragments_text = opcode is Opcode.TEXT
                    self.fragments, self.fragment_count = bytearray(), 0
                if not event.fin:
                    self.fragment_count += 1
                    if self.fragment_count > MAX_FRAGMENTS:
                        self._fail(1009, "message in too many fragments")
                        return
                    self.fragments += event.data
                    continue
                if self.fragment_count:
                    self.fragments += event.data
                    message = bytes(self.fragments)
                    self.fragments, self.fragment_count = bytearray(), 0
                else:
                    message = bytes(event.data)
                text: str | None = None
                if self.fragments_text:
                    try:  # (websockets' sans-I/O layer leaves UTF-8 to its user)
                        text = message.decode()
                    except UnicodeDecodeError:
                        self._fail(1007, "invalid UTF-8 in a text message")
                        return
                if not self._deliver(message, text):
                    self.held = events
                    self._pause_reading()
                    return
            elif opcode is Opcode.CLOSE:
                self._close_received()
            else:  # PING (the protocol queued the pong, written by _flush) or PONG
                if opcode is Opcode.PONG:
                    self._pong(bytes(event.data))
                if self._control_over_rate():
                    self.held = events  # read on once the client is within its rate again
                    self._pause_reading()
                    return

    def _control_over_rate(self) -> bool:
        """Take a ping's or pong's token; past :data:`CONTROL_RATE`, the rest of the input
        waits (reading paused: TCP pushes back) until the client is within it again."""
        now = self.loop.time()
        tokens = min(self.control_tokens + (now - self.control_time) * CONTROL_RATE, CONTROL_BURST)
        self.control_time = now
        if tokens >= 1:
            self.control_tokens = tokens - 1
            return False
        self.control_tokens = tokens
        self.control_timer = self.loop.call_later(
            (1 - tokens) / CONTROL_RATE, self._control_wait_over
        )
        return True

    def _control_wait_over(self) -> None:
        self.control_timer = None
        if self.transport is not None and not self.lost:
            self.resume()

    def _deliver(self, message: bytes, text: str | None) -> bool:
        on_message = self.on_message
        if on_message is not None:
            return on_message(message if text is None else text)
        if self.close_sent:
            return True  # past websocket.close: read on until the client's close answer
        if text is not None:
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": message})
        if not self.queue_paused:  # one message at a time to the app: TCP holds the rest
            self.queue_paused = True
            self._pause_reading()
        return True

    def _pause_reading(self) -> None:
        if self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        """Read again, unless another reason to pause still holds (input held by the app,
        a message the app has not taken, output the client has not taken)."""
        if (
            self.reading
            or self.held is not None
            or self.unread
            or self.queue_paused
            or self.write_paused
            or self.transport is None
            or self.lost
        ):
            return
        self.reading = True
        self.transport.resume_reading()

    def _handshake(self, request: Request) -> None:
        response = self.ws.accept(request)
        if response.status_code != 101:  # not a valid WebSocket upgrade: websockets says why
            self.ws.send_response(response)
            self.accepted = self.close_sent = True
            self._flush()
            self._close_transport()
            return
        self.response = response
        raw_path, _, query = request.path.partition("?")
        raw = raw_path.encode("ascii", "surrogateescape")
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1", "surrogateescape"))
            for name, value in request.headers.raw_items()
        ]
        subprotocols: list[str] = []
        for header in request.headers.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend(token.strip() for token in header.split(","))
        root = self.config.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root,
            "path": root + unquote(raw.decode("latin-1")),
            "raw_path": root.encode("ascii") + raw,
            "query_string": query.encode("ascii", "surrogateescape"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {DIRECT: {"socket": self}},
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _close_received(self) -> None:
        if self.close_sent:
            return  # the client answered our close: _flush/_closing end the connection
        received = self.ws.close_rcvd
        code, reason = (received.code, received.reason) if received is not None else (1005, "")
        self._disconnect_event(code, reason)
        self.close_sent = True  # websockets queued the close reply

    # ------------------------------------------------------------------ output
    def _flush(self) -> None:
        """Write the output queued so far: frames in :attr:`out`, then the protocol's."""
        out = self.out
        out.extend(self.ws.data_to_send())
        if not out:
            return
        self.out = []
        transport = self.transport
        if transport is None:
            return
        if out[-1]:
            transport.write(b"".join(out))
        else:  # SEND_EOF (b""), after the close frame: the close handshake is done
            transport.write(b"".join(out))
            if transport.can_write_eof():
                transport.write_eof()

    def _closing(self) -> None:
        """The protocol expects the TCP connection to end: close it unless the client does
        within :data:`CLOSE_TIMEOUT` (after a protocol error at once)."""
        if self.ws.parser_exc is not None:
            sent = self.ws.close_sent
            code = sent.code if sent is not None else 1006
            self._disconnect_event(code, "")
            self._close_transport()
            return
        if self.close_timer is None and self.transport is not None:
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    def _close_transport(self) -> None:
        """End the TCP connection: once the output buffered so far is written, or after
        :data:`CLOSE_TIMEOUT` at the latest. ``transport.close()`` alone waits for the write
        buffer to drain, forever when the client takes nothing: its fd, our buffer and its
        queued frames would stay (a slow consumer closed 1013 kept ~1 MB and its fd)."""
        transport = self.transport
        if transport is None:
            return
        self.outbox.clear()  # frames behind a close: never sent
        transport.close()
        if self.abort_timer is None and transport.get_write_buffer_size():
            self.abort_timer = self.loop.call_later(CLOSE_TIMEOUT, transport.abort)

    def _respond(self, status: HTTPStatus) -> None:
        """Answer the upgrade request with an HTTP error (before any 101)."""
        self.ws.send_response(self.ws.reject(status, ""))
        self.accepted = self.close_sent = True
        self._flush()

    def _disconnect_event(self, code: int, reason: str) -> None:
        if not self.lost:
            self.lost = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    # ------------------------------------------------------------------ keepalive
    def _start_keepalive(self) -> None:
        interval = self.config.ws_ping_interval
        if interval is not None and interval > 0:
            self.ping_timer = self.loop.call_later(interval, self._ping)

    def _stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = None

    def _ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport is None or self.transport.is_closing():
            return
        self.ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ws.send_ping(self.ping_payload)
        self._flush()
        timeout = self.config.ws_ping_timeout
        if timeout is not None and timeout > 0:
            self.pong_timer = self.loop.call_later(timeout, self._ping_timeout)
        else:
            self._start_keepalive()

    def _pong(self, payload: bytes) -> None:
        if self.ping_payload is None or payload != self.ping_payload:
            return  # unsolicited or stale
        self.ping_payload = None
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
            self._start_keepalive()

    def _ping_timeout(self) -> None:
        self.pong_timer = None
        if not self.close_sent:
            self._fail(1011, "keepalive ping timeout")

    def _fail(self, code: int, reason: str) -> None:
        """Close with ``code`` at once (no closing handshake): a broken or silent client."""
        self.held, self.unread = None, b""
        self.fragments, self.fragment_count = bytearray(), 0
        self.on_message = None
        if self.transport is None or self.close_sent:
            return
        self.ws.fail(code, reason)
        self.close_sent = True
        self._disconnect_event(code, reason)
        self._flush()
        self._close_transport()

    # ------------------------------------------------------------------ ASGI
    async def _run_asgi(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except ClientDisconnected:
            pass
        except asyncio.CancelledError:  # the server is stopping: not the app's failure
            self._close_transport()
            raise
        except BaseException:
            log.exception("Exception in ASGI application\n")
            if not self.accepted and self.transport is not None:
                self._respond(HTTPStatus.INTERNAL_SERVER_ERROR)
            self._close_transport()
            raise
        else:
            if not self.accepted:
                log.error("ASGI callable returned without completing handshake.")
                self._respond(HTTPStatus.INTERNAL_SERVER_ERROR)
        if self.close_timer is None:
            self._close_transport()

    async def _receive(self) -> dict[str, Any]:
        message = await self.queue.get()
        if self.queue_paused and self.queue.empty():
            self.queue_paused = False
            self._resume_reading()
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        if not self.writable.is_set():
            await self.writable.wait()
        if self.lost and not self.close_sent:
            raise ClientDisconnected()
        kind = message["type"]
        if not self.accepted:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._disconnect_event(1006, "")
                log.info('%s - "WebSocket %s" 403', *self._request_line())
                self._respond(HTTPStatus.FORBIDDEN)
                self._close_transport()
            else:
                raise RuntimeError(
                    f"Expected 'websocket.accept' or 'websocket.close', but got {kind!r}."
                )
            return
        if self.close_sent:
            if self.lost:
                raise ClientDisconnected()
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after 'websocket.close'.")
        try:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is not None:
                    self.ws.send_binary(data)
                else:
                    self.ws.send_text(message.get("text", "").encode())
                self._flush()
            elif kind == "websocket.close":
                code, reason = message.get("code", 1000), message.get("reason") or ""
                self._disconnect_event(code, reason)
                self.ws.send_close(code, reason)
                self.close_sent = True
                self._flush()
                self.on_message = None  # read on (discarding) until the client's answer
                self.resume()  # (held input too: the answer may be in it)
                if self.close_timer is None and self.transport is not None:
                    self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)
            else:
                raise RuntimeError(
                    f"Expected 'websocket.send' or 'websocket.close', but got {kind!r}."
                )
        except InvalidState as exc:
            raise ClientDisconnected() from exc

    def _accept(self, message: dict[str, Any]) -> None:
        response = self.response
        transport = self.transport
        if response is None or transport is None or transport.is_closing():
            raise ClientDisconnected()
        extra = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in (*self.default_headers, *message.get("headers", ()))
        ]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            extra.append(("Sec-WebSocket-Protocol", subprotocol))
        for name, _ in extra:  # the app's (and uvicorn's) headers replace websockets' own
            if name in response.headers:
                del response.headers[name]
        for name, value in extra:
            response.headers[name] = value
        log.info('%s - "WebSocket %s" [accepted]', *self._request_line())
        self.accepted = True
        self.shares_frames = not self.ws.extensions
        self.ws.send_response(response)
        self._flush()
        self._start_keepalive()

    def _request_line(self) -> tuple[str, str]:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        path = self.scope.get("path", "")
        query = self.scope.get("query_string", b"")
        return client, f"{path}?{query.decode('latin-1')}" if query else path

    # ------------------------------------------------------------------ DirectSocket
    def start_direct(
        self, on_message: Callable[[str | bytes], bool], on_lost: Callable[[], None], outbox: int
    ) -> None:
        """See :class:`DirectSocket`."""
        if not self.accepted or self.close_sent:
            raise RuntimeError("start_direct needs an accepted, open socket")
        self.outbox_limit = outbox
        early: deque[str | bytes] = deque()
        lost = False
        while not self.queue.empty():  # messages that arrived before the switch, in order
            message = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                early.append(text if text is not None else message["bytes"])
            else:
                lost = True
        self.queue_paused = False
        self.on_message = on_message
        self.on_lost = on_lost
        if lost or self.lost:
            self.lost = True
            self.on_lost = None
            on_lost()
            return
        while early:
            if not on_message(early.popleft()):
                self.held = deque(_as_frame(m) for m in early)
                self._pause_reading()
                return
        self._resume_reading()

    def resume(self) -> None:
        """See :class:`DirectSocket`."""
        if self.control_timer is not None:
            return  # the input waits for the control-frame rate: its timer resumes it
        held, self.held = self.held, None
        if held is not None:
            self._process(held)
            self._flush()
        if self.held is None and self.unread:
            unread, self.unread = self.unread, b""
            self._feed(unread)
        self._resume_reading()

    def send_text(self, data: bytes, frame: bytes | None = None) -> bool:
        """See :class:`DirectSocket`."""
        if not self.sending:
            return True  # closing: frames are dropped, not queued
        if self.write_paused:
            if len(self.outbox) >= self.outbox_limit:
                return False
            self.outbox.append(data)
            return True
        out = self.out
        if not out:  # this socket's first frame in this loop turn: written at the turn's end
            batch = self.batch
            if not batch.sockets:
                batch.loop.call_soon(batch.write)
            batch.sockets.append(self)
        if frame is not None and self.shares_frames:
            out.append(frame)  # framed once for every receiver: what send_text would write
        else:
            self.ws.send_text(data)
            out.extend(self.ws.data_to_send())
        return True


class _Batch:
    """The sockets that framed output during one event-loop turn: each is written once, when
    the turn's I/O callbacks are done (``call_soon``), so a socket sent several frames in one
    turn — as under load, when one turn reads many publishes — costs one ``send()`` syscall,
    not one per frame. At light load a turn holds one publish: nothing waits longer."""

    __slots__ = ("loop", "sockets")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: list[SignalingWebSocket] = []  # non-empty: a write is scheduled

    def write(self) -> None:
        sockets, self.sockets = self.sockets, []
        for sock in sockets:
            out = sock.out
            if out:  # (empty when something wrote it earlier in the turn)
                sock.out = []
                if sock.sending:
                    sock.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()


def _batch_for(loop: asyncio.AbstractEventLoop) -> _Batch:
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = _Batch(loop)
    return batch


def text_frame(data: bytes) -> bytes:
    """The server-side (unmasked) WebSocket text frame carrying ``data``, built by the
    websockets library's own framing — what ``ServerProtocol.send_text`` writes when no
    extension is negotiated (with one, :meth:`SignalingWebSocket.send_text` frames per socket).

    Example:
        >>> text_frame(b"hi")
        b'\\x81\\x02hi'
    """
    return Frame(Opcode.TEXT, data).serialize(mask=False)


def _as_frame(message: str | bytes) -> Frame:
    if isinstance(message, str):
        return Frame(Opcode.TEXT, message.encode())
    return Frame(Opcode.BINARY, message)


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None
