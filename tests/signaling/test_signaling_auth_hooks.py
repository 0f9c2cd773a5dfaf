"""Tokens, Origin allow-list, hooks, and mounting into a combined app."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus

from collabd.cli import app as cli_app
from signaling.app import install_signaling
from signaling.auth import TokenError, mint_token, verify_token
from signaling.close_codes import CloseCode
from signaling.hooks import SignalingHooks, SubscriberInfo
from signaling.settings import SignalingSettings, production_settings
from tests.signaling.sig_helpers import WAIT, assert_serving, client, run_ours
from tests.support.ports import bound_socket

pytestmark = pytest.mark.anyio

SECRET = "test-secret-0123456789abcdef-0123456789abcdef"


class RefuseMarked:
    """An app's own middleware (like collab serve's Host check): refuses marked sockets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and (b"x-refuse", b"1") in scope["headers"]:
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


def auth_settings(**kw: Any) -> SignalingSettings:
    return SignalingSettings(auth_required=True, token_secret=SECRET, **kw)


def test_verify_token_roundtrip_and_failures() -> None:
    tok = mint_token(SECRET, ["a", "b"], access="ro", ttl_seconds=60, subject="u1")
    claims = verify_token(tok, SECRET, room="b")
    assert claims.rooms == ("a", "b") and claims.read_only and claims.subject == "u1"
    with pytest.raises(TokenError) as out_of_scope:
        verify_token(tok, SECRET, room="c")
    assert out_of_scope.value.code == CloseCode.FORBIDDEN
    expired = mint_token(SECRET, ["a"], ttl_seconds=10, now=time.time() - 100)
    for bad in (None, "", "garbage", expired, mint_token(SECRET + "x", ["a"])):
        with pytest.raises(TokenError) as err:
            verify_token(bad, SECRET)
        assert err.value.code == CloseCode.UNAUTHORIZED


def test_auth_required_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="token_secret"):
        SignalingSettings(auth_required=True)


def test_cli_token_mints_a_verifiable_token() -> None:
    result = CliRunner().invoke(
        cli_app, ["token", "--room", "r1", "--room", "r2", "--read-only", "--secret", SECRET]
    )
    assert result.exit_code == 0, result.output
    claims = verify_token(result.output.strip(), SECRET)
    assert claims.rooms == ("r1", "r2") and claims.access == "ro"


@pytest.mark.parametrize(
    ("query", "code", "reason"),
    [
        ("", CloseCode.UNAUTHORIZED, "token required"),
        ("?token=nope", CloseCode.UNAUTHORIZED, "invalid token"),
        (
            "?token=" + mint_token(SECRET, ["r"], ttl_seconds=10, now=time.time() - 100),
            CloseCode.UNAUTHORIZED,
            "token expired",
        ),
    ],
    ids=["missing", "invalid", "expired"],
)
async def test_bad_tokens_close_4401(query: str, code: int, reason: str) -> None:
    async with run_ours(auth_settings()) as server:
        async with client(server.url + "/signaling" + query) as c:
            assert await c.closed() == (code, reason)
        await_ok = mint_token(SECRET, ["health-check"])
        async with client(f"{server.url}/signaling?token={await_ok}") as ok:
            await ok.send({"type": "ping"})
            assert await ok.recv() == {"type": "pong"}


async def test_token_scope_limits_topics_and_claims_reach_hooks() -> None:
    joined: list[tuple[str, SubscriberInfo]] = []
    seen = anyio.Event()

    def on_joined(topic: str, info: SubscriberInfo) -> None:
        joined.append((topic, info))
        seen.set()

    settings = auth_settings()
    async with run_ours(settings, SignalingHooks(on_subscriber_joined=on_joined)) as server:
        ro = mint_token(SECRET, ["a", "b"], access="ro")
        async with client(f"{server.url}/signaling?token={ro}") as c:
            await c.send({"type": "subscribe", "topics": ["a", "b"]})
            await c.send({"type": "publish", "topic": "a", "data": 1})  # read-only may publish
            assert (await c.recv())["data"] == 1
            with anyio.fail_after(WAIT):
                await seen.wait()
            assert joined[0][0] == "a"
            info = joined[0][1]
            assert info.read_only and info.claims is not None and info.claims.rooms == ("a", "b")
            await c.send({"type": "publish", "topic": "c", "data": 1})
            assert await c.closed() == (CloseCode.FORBIDDEN, "topic not allowed by token")
        rw = mint_token(SECRET, ["a"])
        async with client(
            f"{server.url}/signaling", additional_headers={"Authorization": f"Bearer {rw}"}
        ) as c:
            await c.send({"type": "subscribe", "topics": ["a", "zzz"]})
            assert await c.closed() == (CloseCode.FORBIDDEN, "topic not allowed by token")


async def test_origin_allow_list() -> None:
    settings = production_settings(SECRET, ["https://app.example"])
    tok = mint_token(SECRET, ["*"])
    async with run_ours(settings) as server:
        url = f"{server.url}/signaling?token={tok}"
        async with client(url, origin="https://evil.example") as evil:  # type: ignore[arg-type]
            assert await evil.closed() == (CloseCode.FORBIDDEN, "origin not allowed")
        async with client(url) as no_origin:
            assert await no_origin.closed() == (CloseCode.FORBIDDEN, "origin required")
        async with client(url, origin="https://app.example") as good:  # type: ignore[arg-type]
            await good.send({"type": "ping"})
            assert await good.recv() == {"type": "pong"}
        assert server.service is not None
        assert 'reason="forbidden"} 2.0' in server.service.metrics.render().decode()


async def test_hooks_sync_async_order_and_failures_do_not_break_signaling() -> None:
    events: list[tuple[str, str]] = []
    done = anyio.Event()

    def opened(topic: str) -> None:
        events.append(("opened", topic))
        raise RuntimeError("hook bug")  # must be logged and counted, never break signaling

    async def joined(topic: str, info: SubscriberInfo) -> None:
        await anyio.lowlevel.checkpoint()
        events.append(("joined", topic))

    def left(topic: str, info: SubscriberInfo) -> None:
        events.append(("left", topic))

    async def closed(topic: str) -> None:
        events.append(("closed", topic))
        if sum(e[0] == "closed" for e in events) == 2:
            done.set()

    hooks = SignalingHooks(opened, closed, joined, left)
    async with run_ours(hooks=hooks) as server:
        async with client(server.url) as a, client(server.url) as b:
            await a.send({"type": "subscribe", "topics": ["t1"]})
            await a.barrier()
            await b.send({"type": "subscribe", "topics": ["t1", "t2"]})
            await b.barrier()
            await a.send({"type": "publish", "topic": "t1", "data": 1})
            assert (await b.recv())["clients"] == 2
            await a.send({"type": "unsubscribe", "topics": ["t1"]})
            await a.barrier()
        with anyio.fail_after(WAIT):
            await done.wait()
        assert server.service is not None
        await server.service.hooks.drain()
        assert events[:5] == [
            ("opened", "t1"),
            ("joined", "t1"),
            ("joined", "t1"),
            ("opened", "t2"),
            ("joined", "t2"),
        ]
        tail = events[5:]
        assert sorted(tail) == sorted(
            [("left", "t1"), ("left", "t1"), ("left", "t2"), ("closed", "t1"), ("closed", "t2")]
        )
        for topic in ("t1", "t2"):  # a topic closes after its last subscriber left
            last_left = max(i for i, e in enumerate(tail) if e == ("left", topic))
            assert tail.index(("closed", topic)) > last_left
        assert "collab_signaling_hook_errors_total 2.0" in server.service.metrics.render().decode()
        await assert_serving(server.url)


async def test_install_into_app_with_page_at_root() -> None:
    import uvicorn

    app = FastAPI()

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse("<h1>editor</h1>")

    service = install_signaling(app, SignalingSettings(), metrics_path="/signaling-metrics")
    app.add_middleware(RefuseMarked)  # added later: it still sees the signaling sockets first
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                async with httpx.AsyncClient() as http:
                    assert (await http.get(f"http://127.0.0.1:{port}/")).text == "<h1>editor</h1>"
                    health = await http.get(f"http://127.0.0.1:{port}/healthz")
                    assert health.text == "okay"
                await assert_serving(f"ws://127.0.0.1:{port}/signaling")
                with pytest.raises(InvalidStatus):
                    async with client(
                        f"ws://127.0.0.1:{port}/signaling", additional_headers={"x-refuse": "1"}
                    ):
                        pass
                metrics = service.metrics.render().decode()
                assert 'collab_signaling_messages_in_total{type="publish"} 1.0' in metrics
            finally:
                server.should_exit = True
        await service.stop()
    finally:
        sock.close()
