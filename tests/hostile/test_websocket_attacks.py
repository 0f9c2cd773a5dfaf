"""Attacks on the WebSocket engine itself (``signaling.websocket.SignalingWebSocket`` and the
direct path of ``signaling.transport``), as an outsider with raw sockets: what a peer can do
with frames (not with signaling JSON) to the sockets, memory and loop others share.

Each test runs the signaling app on real uvicorn in-process (``serve`` of
tests/support/rawws.py), attacks it with raw TCP, and judges from the
victim's view: another client's ping is answered promptly, the attacker's socket (its fd, our
write buffer, its queued frames) is released, the attacker gets a coded close where it reads.
Figures are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Opcode

from signaling import websocket
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.support.rawws import accepted, masked, protocol_of, raw_client, raw_socket, serve

pytestmark = pytest.mark.anyio

WAIT = 15.0
VICTIM_MS = 2000.0
"""A victim's ping must be answered within this (generous: a loaded 2-core box)."""


async def ping_ms(ws: ClientConnection) -> float:
    """The victim's view: one signaling ping's round trip, in ms."""
    start = time.monotonic()
    await ws.send('{"type":"ping"}')
    with anyio.fail_after(WAIT):
        while json.loads(await ws.recv()).get("type") != "pong":
            pass
    return (time.monotonic() - start) * 1000


async def test_a_slow_consumer_closed_1013_releases_its_fd_and_buffers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscriber that never reads while its topic is flooded is closed 1013 (slow
    consumer); its connection must then END: fd closed, write buffer and queued frames freed.

    Before the fix ``transport.close()`` waited for the write buffer to drain — forever, as
    the client takes nothing: the socket stayed (fd, ~190 KB write buffer, 4 queued frames of
    200 KB) until the server stopped. Now it is aborted :data:`~signaling.websocket.
    CLOSE_TIMEOUT` after the close."""
    monkeypatch.setattr(websocket, "CLOSE_TIMEOUT", 1.0)
    settings = SignalingSettings(send_queue_size=4, rate_limit_burst=1000, max_frame_bytes=300_000)
    loop = asyncio.get_running_loop()
    app = create_app(settings)
    async with (
        serve(app) as srv,
        raw_socket(srv.port, rcvbuf=4096) as sock,
        connect(srv.url + "/signaling", max_size=None) as publisher,
    ):
        await loop.sock_sendall(sock, masked(Opcode.TEXT, b'{"type":"subscribe","topics":["t"]}'))
        await loop.sock_sendall(sock, masked(Opcode.TEXT, b'{"type":"ping"}'))
        with anyio.fail_after(WAIT):  # subscribed once the pong is here; then never read again
            assert b"pong" in await loop.sock_recv(sock, 1024)
        (attacker,) = [c for c in accepted(srv) if c.client == sock.getsockname()]
        publish = json.dumps(
            {"type": "publish", "topic": "t", "data": secrets.token_urlsafe(150_000)}
        )
        worst, buffered, published, start = 0.0, 0, 0, time.monotonic()
        with anyio.fail_after(WAIT):
            while attacker in srv.server.server_state.connections:
                if published < 40:
                    await publisher.send(publish)  # ~200 KB each
                    published += 1
                if attacker.transport is not None:
                    buffered = max(buffered, attacker.transport.get_write_buffer_size())
                worst = max(worst, await ping_ms(publisher))
        print(
            f"\n[slow consumer] released after {time.monotonic() - start:.1f} s, "
            f"{published} publishes; write buffer <= {buffered} B; victim ping <= {worst:.0f} ms"
        )
        assert attacker.lost and not attacker.outbox
        assert buffered < 2 * 1024 * 1024
        assert worst < VICTIM_MS
        metrics = app.state.signaling.metrics.render().decode()
        assert 'reason="slow_consumer"' in metrics


@pytest.mark.parametrize("piece", [b"", b"a"], ids=["empty", "one-byte"])
async def test_a_message_that_never_ends_in_tiny_fragments_is_closed_1009(piece: bytes) -> None:
    """A text message started and continued forever in tiny continuation frames: fragments
    are not messages, so the rate limit never saw them. Before the fix 6 MB of empty ones
    were a million list entries (8 MB) and stalled a victim's ping ~1.1 s; 1-byte ones cost
    ~40 B each up to ``ws_max_size`` (~11 MB per socket, 256 sockets per address). Now the
    message is closed 1009 at :data:`~signaling.websocket.MAX_FRAGMENTS` frames."""
    async with (
        serve(create_app(SignalingSettings())) as srv,
        raw_client(srv.port, "/signaling") as raw,
        connect(srv.url + "/signaling") as victim,
    ):
        attacker = protocol_of(srv, raw)
        flood = masked(Opcode.TEXT, piece, fin=False) + masked(Opcode.CONT, piece, fin=False) * 4096
        with anyio.move_on_after(5):  # may block once the server has closed: expected
            await raw.stream.send(flood)
        assert await raw.close_code() == 1009
        held = len(attacker.fragments)  # bytes (list entries before the fix)
        worst = await ping_ms(victim)
        print(f"\n[fragments {piece!r}] closed 1009; victim ping {worst:.0f} ms")
        assert held <= 1024
        assert worst < VICTIM_MS


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG])
async def test_a_control_frame_flood_is_shaped_to_its_rate(opcode: Opcode) -> None:
    """Pings and unsolicited pongs from a client that reads everything: not messages, so the
    rate limit never saw them. Before the fix one socket had ~60 % of the loop (600,000 empty
    pongs a second, a victim's ping 200-300 ms); now past ``CONTROL_BURST`` the socket is
    read at ``CONTROL_RATE`` frames a second (TCP pushes back on the rest)."""
    async with (
        serve(create_app(SignalingSettings())) as srv,
        raw_client(srv.port, "/signaling") as raw,
        connect(srv.url + "/signaling") as victim,
    ):
        attacker = protocol_of(srv, raw)
        with anyio.move_on_after(2):  # blocks once the server reads no more: expected
            await raw.stream.send(masked(opcode, b"") * 300_000)  # 1.8 MB
        with anyio.fail_after(WAIT):
            while attacker.control_timer is None:
                await anyio.sleep(0.05)
        worst = await ping_ms(victim)
        parsed = websocket.CONTROL_BURST + 2 * websocket.CONTROL_RATE * 3 + websocket.PARSE_SLICE
        print(f"\n[{opcode.name} flood] shaped; victim ping {worst:.0f} ms")
        assert worst < VICTIM_MS
        assert not attacker.reading and attacker.held is not None
        assert len(attacker.held) <= parsed
