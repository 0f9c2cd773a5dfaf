"""The named-peer dialect at /named/{room} (the seed tutorial's protocol, bugs fixed)."""

from __future__ import annotations

import pytest

from signaling.auth import mint_token
from signaling.close_codes import CloseCode
from signaling.settings import SignalingSettings
from tests.signaling.sig_helpers import Client, Server, assert_serving, client, run_ours

pytestmark = pytest.mark.anyio

SECRET = "named-secret-0123456789abcdef-0123456789abcdef"


async def login(c: Client, name: str) -> object:
    await c.send({"type": "login", "name": name})
    return (await c.recv())["success"]


async def test_login_offer_answer_candidate_leave(ours: Server) -> None:
    url = ours.url + "/named/app-1"
    async with client(url) as alice, client(url) as bob:
        assert await login(alice, "alice") is True
        assert await login(bob, "bob") is True
        offer = {"type": "offer", "sdp": "v=0 alice"}
        await alice.send({"type": "offer", "name": "bob", "offer": offer})
        assert await bob.recv() == {"type": "offer", "offer": offer, "name": "alice"}
        answer = {"type": "answer", "sdp": "v=0 bob"}
        await bob.send({"type": "answer", "name": "alice", "answer": answer})
        assert await alice.recv() == {"type": "answer", "answer": answer, "name": "bob"}
        cand = {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMLineIndex": 0}
        await alice.send({"type": "candidate", "name": "bob", "candidate": cand})
        assert await bob.recv() == {"type": "candidate", "candidate": cand, "name": "alice"}
        await alice.send({"type": "leave", "name": "bob"})
        assert await bob.recv() == {"type": "leave", "name": "alice"}


async def test_login_rules(ours: Server) -> None:
    url = ours.url + "/named/app-1"
    async with client(url) as a, client(url) as b, client(ours.url + "/named/app-2") as other:
        assert await login(a, "alice") is True
        assert await login(a, "alice2") is False  # one name per socket
        assert await login(b, "alice") is False  # taken
        for bad in ("", "x" * 65, "with space", "a/b", "<script>"):
            assert await login(b, bad) is False
        await b.send({"type": "login", "name": 42})
        assert (await b.recv())["success"] is False
        assert await login(other, "alice") is True  # rooms are separate namespaces
        assert await login(b, "bob") is True


async def test_errors_unknown_command_unknown_target_not_logged_in(ours: Server) -> None:
    url = ours.url + "/named/r"
    async with client(url) as a:
        await a.send({"type": "offer", "name": "x", "offer": {}})
        assert await a.recv() == {"type": "error", "message": "not logged in"}
        assert await login(a, "alice") is True
        await a.send({"type": "dance"})
        assert await a.recv() == {"type": "error", "message": "Command not found: dance"}
        await a.send({"type": "offer", "name": "ghost", "offer": {}})
        assert await a.recv() == {"type": "error", "message": "unknown peer: ghost"}
        await a.send({"type": "offer", "name": "alice", "offer": {}})
        assert await a.recv() == {"type": "error", "message": "unknown peer: alice"}
        await a.send_raw("{nope")
        assert await a.recv() == {"type": "error", "message": "invalid JSON"}
        await a.send_raw("[1]")
        assert (await a.recv())["type"] == "error"


async def test_closing_socket_sends_leave_and_frees_name(ours: Server) -> None:
    url = ours.url + "/named/r"
    async with client(url) as bob:
        assert await login(bob, "bob") is True
        async with client(url) as alice:
            assert await login(alice, "alice") is True
            await alice.send({"type": "offer", "name": "bob", "offer": {"sdp": "o"}})
            assert (await bob.recv())["type"] == "offer"
        assert await bob.recv() == {"type": "leave", "name": "alice"}
        # the departed target now gets an error reply
        await bob.send({"type": "answer", "name": "alice", "answer": {"sdp": "a"}})
        assert await bob.recv() == {"type": "error", "message": "unknown peer: alice"}
        async with client(url) as alice_again:
            assert await login(alice_again, "alice") is True


async def test_named_rooms_do_not_cross(ours: Server) -> None:
    async with (
        client(ours.url + "/named/one") as a,
        client(ours.url + "/named/two") as b,
    ):
        assert await login(a, "alice") is True
        assert await login(b, "bob") is True
        await a.send({"type": "offer", "name": "bob", "offer": {}})
        assert await a.recv() == {"type": "error", "message": "unknown peer: bob"}


async def test_named_token_scope_and_limits() -> None:
    settings = SignalingSettings(
        auth_required=True,
        token_secret=SECRET,
        rate_limit_per_second=5.0,
        rate_limit_burst=5,
        rate_limit_close_after_seconds=0.5,
    )
    async with run_ours(settings) as server:
        tok = mint_token(SECRET, ["allowed"])
        async with client(f"{server.url}/named/forbidden?token={tok}") as c:
            assert await c.closed() == (CloseCode.FORBIDDEN, "room not allowed by token")
        async with client(f"{server.url}/named/allowed?token={tok}") as c:
            assert await login(c, "me") is True
            for _ in range(40):  # sustained over the rate: shaped, then closed
                await c.send({"type": "nothing"})
            code, _reason = await c.closed()
            assert code == CloseCode.RATE_LIMITED
        async with client(f"{server.url}/named/allowed?token={tok}") as c:
            assert await login(c, "me") is True  # the rate-limited socket's name was freed
        await assert_serving(f"{server.url}/signaling?token={mint_token(SECRET, ['*'])}")
