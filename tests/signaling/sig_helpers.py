"""Helpers of the signaling tests: our server in-process (real uvicorn) on a
socket bound before it serves, y-webrtc's reference server, redis-server, a small JSON ws
client."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from signaling.app import SignalingService, create_app
from signaling.hooks import SignalingHooks
from signaling.server import WS_IMPL
from signaling.settings import SignalingSettings
from tests.support.ports import PortTaken, bound_socket, on_free_port
from tests.support.processes import Process
from tests.support.servers import YWebrtcServer

WAIT = 15.0  # generous upper bound for any single wait on this shared 2-core box


@dataclass
class Server:
    """A running signaling server under test."""

    url: str  # ws://127.0.0.1:PORT (root path)
    http: str  # http://127.0.0.1:PORT
    service: SignalingService | None = None  # ours only

    def ws(self, path: str = "") -> str:
        return self.url + path


@contextlib.asynccontextmanager
async def run_ours(
    settings: SignalingSettings | None = None,
    hooks: SignalingHooks | None = None,
) -> AsyncIterator[Server]:
    """Serve our signaling on a free port inside the test's event loop: create_app on real
    uvicorn, with the WebSocket implementation ``collab signaling`` and ``collab serve`` use."""
    app = create_app(settings or SignalingSettings(), hooks)
    sock = bound_socket()  # listening already: clients may connect before serve() runs
    port = sock.getsockname()[1]
    s = settings or SignalingSettings()
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        ws=WS_IMPL,
        ws_ping_interval=s.ws_ping_interval_seconds,
        ws_ping_timeout=s.ws_ping_timeout_seconds,
    )
    server = uvicorn.Server(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield Server(
                    f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", app.state.signaling
                )
            finally:
                server.should_exit = True
    finally:
        sock.close()


@contextlib.contextmanager
def run_reference(log_path: Path | None = None) -> Iterator[Server]:
    """y-webrtc's own bin/server.js, ended by PID at the end."""
    server = YWebrtcServer(log_path)
    server.start()
    try:
        yield Server(server.url, server.url.replace("ws://", "http://", 1))
    finally:
        server.kill()


class Client:
    """A JSON-over-WebSocket test client."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    async def send(self, msg: Any) -> None:
        await self.conn.send(orjson.dumps(msg).decode())

    async def send_raw(self, frame: str | bytes) -> None:
        await self.conn.send(frame)

    async def recv(self) -> Any:
        with anyio.fail_after(WAIT):
            frame = await self.conn.recv()
        assert isinstance(frame, str), "servers must answer with text frames"
        return orjson.loads(frame)

    async def barrier(self) -> list[Any]:
        """Ping and collect everything received before the pong (server answers in order)."""
        await self.send({"type": "ping"})
        before: list[Any] = []
        while True:
            msg = await self.recv()
            if msg == {"type": "pong"}:
                return before
            before.append(msg)

    async def closed(self) -> tuple[int | None, str | None]:
        """Wait until the server closes us; returns (code, reason)."""
        with anyio.fail_after(WAIT):
            try:
                while True:
                    await self.conn.recv()
            except ConnectionClosed:
                pass
        rcvd = self.conn.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)

    async def close(self) -> None:
        await self.conn.close()


@contextlib.asynccontextmanager
async def client(url: str, **kwargs: Any) -> AsyncIterator[Client]:
    with anyio.fail_after(WAIT):
        conn = await connect(url, open_timeout=WAIT, ping_interval=None, **kwargs)
    try:
        yield Client(conn)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def clients(url: str, n: int) -> AsyncIterator[list[Client]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(client(url)) for _ in range(n)]


async def assert_serving(url: str) -> None:
    """Another pair of sockets can still subscribe/publish/receive on this server."""
    async with clients(url, 2) as (a, b):
        await a.send({"type": "subscribe", "topics": ["health-check"]})
        await a.barrier()
        await b.send({"type": "publish", "topic": "health-check", "data": {"ok": 1}})
        msg = await a.recv()
        assert msg["data"] == {"ok": 1} and msg["clients"] == 1


@dataclass
class RedisProc:
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(port: int | None = None) -> RedisProc:
    """redis-server without persistence, ready once it logs 'Ready to accept'. On ``port``
    (a restart), else on a free one: redis-server cannot take a socket or report a port it
    picked, so a port taken meanwhile means starting again on another one."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed")

    def start(port: int) -> RedisProc:
        args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = Process(args)
        process.start()
        try:
            process.wait_ready("Ready to accept connections", 30)
        except RuntimeError:
            if "Address already in use" in process.output():
                raise PortTaken(port) from None
            raise
        return RedisProc(port, process)

    return start(port) if port is not None else on_free_port(start)


def stop_redis(r: RedisProc) -> None:
    r.process.kill()
