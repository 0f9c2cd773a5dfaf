"""signaling.websocket.SignalingWebSocket as uvicorn's WebSocket protocol, for any ASGI app:
handshake, messages (text, binary, fragmented), closes both ways, refusals, protocol errors,
keepalive and shutdown, on real uvicorn with the websockets client or raw sockets. The direct
path (the signaling service) is covered by the rest of tests/signaling, which run on it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from signaling.websocket import DIRECT, SignalingWebSocket, text_frame
from tests.support.rawws import (
    Raw,
    accepted,
    masked,
    raw_client,
    raw_socket,
    serve,
)

WAIT = 15.0


@dataclass
class EchoApp:
    """An ASGI app: accepts (with the first subprotocol offered), echoes every message, closes
    with ``4000 + n`` when told ``close n``, refuses paths starting with /refuse."""

    disconnects: list[int] = field(default_factory=list)
    direct_seen: list[bool] = field(default_factory=list)
    gone: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        self.direct_seen.append(DIRECT in scope.get("extensions", {}))
        if scope["path"].startswith("/refuse"):
            await send({"type": "websocket.close"})
            return
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if scope["subprotocols"]:
            accept["subprotocol"] = scope["subprotocols"][0]
        await send(accept)
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                self.disconnects.append(msg["code"])
                self.gone.set()
                return
            text = msg.get("text")
            if text is not None and text.startswith("close "):
                await send(
                    {"type": "websocket.close", "code": 4000 + int(text[6:]), "reason": "bye"}
                )
                continue
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": msg["bytes"]})


@pytest.mark.anyio
async def test_any_asgi_app_echoes_text_binary_and_fragmented_messages() -> None:
    app = EchoApp()
    async with serve(app) as srv:
        async with connect(srv.url + "/x", subprotocols=["y-proto"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "y-proto"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01\xff")
            assert await ws.recv() == b"\x00\x01\xff"
            await ws.send(["frag", "mented ", "é"])  # one message in three frames
            assert await ws.recv() == "fragmented é"
        with anyio.fail_after(WAIT):
            await app.gone.wait()
    assert app.direct_seen == [True]  # offered to every app; this one does not use it
    assert app.disconnects == [1000]


@pytest.mark.anyio
async def test_app_close_code_and_reason_reach_the_client() -> None:
    async with serve(EchoApp()) as srv, connect(srv.url + "/x") as ws:
        await ws.send("close 7")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4007, "bye")


@pytest.mark.anyio
async def test_a_close_before_accept_is_an_http_403() -> None:
    async with serve(EchoApp()) as srv:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(srv.url + "/refuse"):
                pass
    assert refused.value.response.status_code == 403


@pytest.mark.anyio
async def test_a_bad_upgrade_is_answered_400_and_never_reaches_the_app() -> None:
    app = EchoApp()
    async with serve(app) as srv, await anyio.connect_tcp("127.0.0.1", srv.port) as stream:
        await stream.send(  # no Sec-WebSocket-Key
            b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        raw = Raw(stream)
        status = await raw.read_until(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400"), status
    assert app.direct_seen == []


@pytest.mark.anyio
async def test_invalid_utf8_text_is_closed_1007() -> None:
    app = EchoApp()
    async with serve(app) as srv, raw_client(srv.port) as raw:
        await raw.stream.send(masked(Opcode.TEXT, b"ok \xff\xfe"))
        assert await raw.close_code() == 1007
        with anyio.fail_after(WAIT):
            await app.gone.wait()
    assert app.disconnects == [1007]


@pytest.mark.anyio
async def test_a_message_over_ws_max_size_is_closed_1009_even_in_fragments() -> None:
    async with serve(EchoApp(), ws_max_size=1000) as srv, raw_client(srv.port) as raw:
        await raw.stream.send(masked(Opcode.TEXT, b"a" * 600, fin=False))
        await raw.stream.send(masked(Opcode.CONT, b"a" * 600, fin=True))
        assert await raw.close_code() == 1009


@pytest.mark.anyio
async def test_keepalive_pings_and_closes_a_client_that_stops_answering() -> None:
    async with (
        serve(EchoApp(), ws_ping_interval=0.2, ws_ping_timeout=1.0) as srv,
        raw_client(srv.port) as raw,
    ):
        for _ in range(3):  # answered pings keep the socket open
            opcode, payload = await raw.frame()
            assert opcode == Opcode.PING.value
            await raw.stream.send(masked(Opcode.PONG, payload))
        await raw.stream.send(masked(Opcode.TEXT, b"still here"))
        assert await raw.frame() == (Opcode.TEXT.value, b"still here")
        # now silent: the next ping goes unanswered and the server gives up
        assert await raw.close_code() == 1011


@pytest.mark.anyio
async def test_server_shutdown_closes_open_sockets_with_1012() -> None:
    async with serve(EchoApp()) as srv, connect(srv.url + "/x") as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
        srv.server.should_exit = True
        with pytest.raises(ConnectionClosed) as closed:
            with anyio.fail_after(WAIT):
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frame_is_the_librarys_own_framing(size: int) -> None:
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    data = ("é" * size).encode()[:size]
    protocol.send_text(data)
    assert b"".join(protocol.data_to_send()) == text_frame(data)


@pytest.mark.anyio
async def test_a_read_full_of_tiny_frames_is_held_as_bytes_not_parsed_frames() -> None:
    """A throttled socket that sent ~200 KiB of 6-byte frames in one go: at most one parse
    slice of them waits as parsed frames (each ~30× its wire size), the rest of the read as
    raw bytes, the rest of the flood in the kernel (reading paused); a second socket still
    gets its answers at once."""
    from signaling.app import create_app
    from signaling.settings import SignalingSettings
    from signaling.websocket import PARSE_SLICE

    settings = SignalingSettings(rate_limit_per_second=5, rate_limit_burst=5)
    async with serve(create_app(settings)) as srv, raw_client(srv.port, "/signaling") as raw:
        flood = masked(Opcode.TEXT, b"") * 35_000  # 210 KB
        await raw.stream.send(flood)
        sockets = [
            c for c in srv.server.server_state.connections if isinstance(c, SignalingWebSocket)
        ]
        with anyio.fail_after(WAIT):  # until a read bigger than a slice has been throttled
            while not any(len(s.unread) > PARSE_SLICE for s in sockets):
                await anyio.sleep(0.05)
        flooder = next(s for s in sockets if s.unread)
        # without slicing, the whole read (> 1 slice) would wait as parsed frames
        assert flooder.held is not None and len(flooder.held) <= PARSE_SLICE // 6
        assert len(flooder.unread) <= 1024 * 1024  # one read at most: then TCP pushes back
        async with connect(srv.url + "/signaling") as other:  # the victim's view
            with anyio.fail_after(5):
                await other.send('{"type":"ping"}')
                assert await other.recv() == '{"type":"pong"}'


@pytest.mark.anyio
async def test_a_handler_bug_closes_that_socket_1011_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fault injection: the dispatch raises for one message. That socket is closed with 1011,
    the traceback is logged, the close is counted; another socket goes on as before."""
    from signaling.app import create_app
    from signaling.settings import SignalingSettings

    app = create_app(SignalingSettings())
    service = app.state.signaling
    handle = service.on_yjs_frame

    async def buggy(conn: Any, data: str | bytes) -> Any:
        if "boom" in str(data):
            raise RuntimeError("injected fault")
        return await handle(conn, data)

    service.on_yjs_frame = buggy
    async with (
        serve(app) as srv,
        connect(srv.url + "/signaling") as victim,
        connect(srv.url + "/signaling") as other,
    ):
        await victim.send('{"type":"boom"}')
        with pytest.raises(ConnectionClosed) as closed:
            with anyio.fail_after(WAIT):
                await victim.recv()
        await other.send('{"type":"ping"}')
        with anyio.fail_after(WAIT):
            assert await other.recv() == '{"type":"pong"}'
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert "injected fault" in caplog.text
    assert 'reason="internal_error"' in service.metrics.render().decode()


@pytest.mark.anyio
async def test_a_ping_flood_from_a_client_that_never_reads_leaves_our_buffer_bounded() -> None:
    """Pings are answered by the protocol (no rate limit applies to control frames): a client
    sending ~20 MB of them and reading nothing is no longer read once it stops taking our
    answers — not answered into an ever-growing write buffer; others are served meanwhile."""
    loop = asyncio.get_running_loop()
    async with serve(EchoApp()) as srv, raw_socket(srv.port, rcvbuf=4096, path="/x") as sock:
        with anyio.move_on_after(5):  # blocks once the server stops reading: expected
            await loop.sock_sendall(sock, masked(Opcode.PING, b"p" * 125) * 160_000)
        flooded = accepted(srv)
        assert len(flooded) == 1
        assert flooded[0].transport is not None
        assert flooded[0].transport.get_write_buffer_size() < 2 * 1024 * 1024
        async with connect(srv.url + "/y") as other:
            await other.send("still served")
            with anyio.fail_after(WAIT):
                assert await other.recv() == "still served"
