"""Raw WebSocket tools for tests of ``signaling.websocket.SignalingWebSocket``: a uvicorn
server in-process on it, clients that write frames byte for byte (masked as a client must),
and a look at the server's protocol objects (their buffers and held input).

Example:
    >>> masked(Opcode.PING, b"")[:1]
    b'\\x89'
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import uvicorn
from websockets.frames import Frame, Opcode

from signaling.websocket import SignalingWebSocket
from tests.support.ports import bound_socket

WAIT = 15.0


@dataclass
class Running:
    port: int
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve(app: Any, **config: Any) -> AsyncIterator[Running]:
    sock = bound_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, ws=SignalingWebSocket, log_level="warning", lifespan="off", **config)
    )
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield Running(sock.getsockname()[1], server)
            finally:
                server.should_exit = True
    finally:
        sock.close()


# --------------------------------------------------------------------------- raw client
HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Raw:
    """A raw TCP client: writes bytes as given, reads the server's frames (unmasked)."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def read_until(self, marker: bytes) -> bytes:
        with anyio.fail_after(WAIT):
            while marker not in self.buf:
                self.buf += await self.stream.receive()
        head, _, self.buf = self.buf.partition(marker)
        return head

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload); (-1, b"") at end of stream."""
        with anyio.fail_after(WAIT):
            while True:
                if len(self.buf) >= 2:
                    size = self.buf[1] & 0x7F
                    start = 2
                    if size == 126:
                        size, start = struct.unpack("!H", self.buf[2:4])[0], 4
                    if len(self.buf) >= start + size:
                        opcode, payload = self.buf[0] & 0x0F, self.buf[start : start + size]
                        self.buf = self.buf[start + size :]
                        return opcode, payload
                try:
                    self.buf += await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return -1, b""

    async def close_code(self) -> int:
        """Read frames until the server's close frame; its code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == Opcode.CLOSE.value:
                return int(struct.unpack("!H", payload[:2])[0])
            assert opcode != -1, "the stream ended without a close frame"


@contextlib.asynccontextmanager
async def raw_client(port: int, path: str = "/raw") -> AsyncIterator[Raw]:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        raw = Raw(stream)
        await stream.send(HANDSHAKE.format(path=path).encode())
        status = await raw.read_until(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status
        yield raw


def masked(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=True)


# --------------------------------------------------------------------------- tests


@contextlib.asynccontextmanager
async def raw_socket(
    port: int, rcvbuf: int | None = None, path: str = "/signaling"
) -> AsyncIterator[socket.socket]:
    """An upgraded socket (at ``path``) as a plain non-blocking socket (``rcvbuf``: a receive
    buffer so small that a client which stops reading takes (almost) nothing)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, HANDSHAKE.format(path=path).encode())
        reply = b""
        with anyio.fail_after(WAIT):
            while b"\r\n\r\n" not in reply:
                reply += await loop.sock_recv(sock, 1024)
        assert reply.startswith(b"HTTP/1.1 101"), reply
        yield sock
    finally:
        sock.close()


def accepted(srv: Running) -> list[SignalingWebSocket]:
    return [
        c
        for c in srv.server.server_state.connections
        if isinstance(c, SignalingWebSocket) and c.accepted
    ]


def protocol_of(srv: Running, raw: Raw) -> SignalingWebSocket:
    """The server's protocol object serving the raw client ``raw``."""
    local = raw.stream.extra(anyio.abc.SocketAttribute.local_address)
    (found,) = [c for c in accepted(srv) if c.client == local]
    return found
