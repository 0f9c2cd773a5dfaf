"""The same y-webrtc protocol cases against our server and y-webrtc's own bin/server.js.

``Client.barrier()`` (ping → pong) proves a socket received nothing else in between: both
servers handle one socket's frames in order and fan out synchronously.
"""

from __future__ import annotations

import anyio
import pytest

from tests.signaling.sig_helpers import WAIT, Client, Server, client, clients

pytestmark = pytest.mark.anyio


async def subscribe(c: Client, *topics: str) -> None:
    await c.send({"type": "subscribe", "topics": list(topics)})
    assert await c.barrier() == []


async def test_ping_pong_exact(any_server: Server) -> None:
    async with client(any_server.url) as a:
        await a.send({"type": "ping"})
        assert await a.recv() == {"type": "pong"}


async def test_publish_fans_out_to_all_subscribers_including_sender(any_server: Server) -> None:
    async with clients(any_server.url, 3) as (a, b, outsider):
        await subscribe(a, "room-1")
        await subscribe(b, "room-1")
        msg = {"type": "publish", "topic": "room-1", "data": {"type": "announce", "from": "p-a"}}
        await a.send(msg)
        expected = {**msg, "clients": 2}
        assert await a.recv() == expected
        assert await b.recv() == expected
        assert await outsider.barrier() == []


async def test_publisher_need_not_be_subscribed(any_server: Server) -> None:
    async with clients(any_server.url, 2) as (a, outsider):
        await subscribe(a, "t")
        await outsider.send({"type": "publish", "topic": "t", "data": "x"})
        assert await a.recv() == {"type": "publish", "topic": "t", "data": "x", "clients": 1}
        assert await outsider.barrier() == []


async def test_whole_message_passes_through_with_extra_fields(any_server: Server) -> None:
    async with client(any_server.url) as a:
        await subscribe(a, "ü-room ✓")
        msg = {
            "type": "publish",
            "topic": "ü-room ✓",
            "data": {
                "to": "peer-b",
                "from": "peer-a",
                "type": "signal",
                "token": 1732368000123.4567,
                "signal": {"type": "candidate", "candidate": {"sdpMLineIndex": 0, "sdpMid": None}},
            },
            "extra": [1, "two", {"three": 3.5}, True, None],
        }
        await a.send(msg)
        assert await a.recv() == {**msg, "clients": 1}


async def test_existing_clients_field_is_overwritten(any_server: Server) -> None:
    async with client(any_server.url) as a:
        await subscribe(a, "t")
        await a.send({"type": "publish", "topic": "t", "clients": 99, "data": 1})
        got = await a.recv()
        assert got["clients"] == 1 and got["data"] == 1 and got["type"] == "publish"


async def test_unsubscribe_stops_delivery_and_count(any_server: Server) -> None:
    async with clients(any_server.url, 2) as (a, b):
        await subscribe(a, "t")
        await subscribe(b, "t")
        await b.send({"type": "unsubscribe", "topics": ["t"]})
        assert await b.barrier() == []
        await a.send({"type": "publish", "topic": "t", "data": 2})
        assert (await a.recv())["clients"] == 1
        assert await b.barrier() == []


async def test_multiple_topics_in_one_subscribe(any_server: Server) -> None:
    async with clients(any_server.url, 2) as (a, b):
        await subscribe(a, "x", "y")
        await subscribe(b, "y")
        await b.send({"type": "publish", "topic": "x", "data": "to-x"})
        assert await a.recv() == {"type": "publish", "topic": "x", "data": "to-x", "clients": 1}
        await b.send({"type": "publish", "topic": "y", "data": "to-y"})
        expected = {"type": "publish", "topic": "y", "data": "to-y", "clients": 2}
        assert await a.recv() == expected
        assert await b.recv() == expected
        assert await a.barrier() == []


async def test_duplicate_subscribe_counts_once(any_server: Server) -> None:
    async with client(any_server.url) as a:
        await subscribe(a, "t", "t")
        await subscribe(a, "t")
        await a.send({"type": "publish", "topic": "t"})
        assert await a.recv() == {"type": "publish", "topic": "t", "clients": 1}
        assert await a.barrier() == []


async def test_publish_to_topic_without_subscribers(any_server: Server) -> None:
    async with clients(any_server.url, 2) as (a, b):
        await subscribe(b, "other")
        await a.send({"type": "publish", "topic": "nobody-here", "data": 1})
        assert await a.barrier() == []
        assert await b.barrier() == []


async def test_closed_socket_leaves_its_topics(any_server: Server) -> None:
    async with clients(any_server.url, 1) as (a,):
        async with client(any_server.url) as b:
            await subscribe(b, "t")
        await subscribe(a, "t")
        # b's close is processed asynchronously: publish until the count reflects it.
        with anyio.fail_after(WAIT):
            while True:
                await a.send({"type": "publish", "topic": "t"})
                got = await a.recv()
                if got["clients"] == 1:
                    break
                assert got["clients"] == 2


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "subscribe"},  # missing topics → []
        {"type": "unsubscribe"},
        {"type": "unsubscribe", "topics": ["never-subscribed"]},
        {"type": "publish"},  # missing topic
        {"type": "publish", "topic": ""},
        {"topics": ["t"]},  # missing type
        {"type": "no-such-type"},
        {"type": "subscribe", "topics": [1, None, {"a": 1}, ["t"]]},  # non-string topics skipped
    ],
    ids=lambda f: str(f),
)
async def test_missing_or_odd_fields_are_ignored(any_server: Server, frame: object) -> None:
    async with clients(any_server.url, 2) as (a, b):
        await subscribe(b, "t")
        await a.send(frame)
        assert await a.barrier() == []
        await a.send({"type": "publish", "topic": "t", "data": 0})
        assert await b.recv() == {"type": "publish", "topic": "t", "data": 0, "clients": 1}
        assert await a.barrier() == []


async def test_binary_frames_holding_json_are_understood(any_server: Server) -> None:
    async with client(any_server.url) as a:
        await a.send_raw(b'{"type":"subscribe","topics":["bin"]}')
        await a.send_raw(b'{"type":"publish","topic":"bin","data":"b"}')
        assert await a.recv() == {"type": "publish", "topic": "bin", "data": "b", "clients": 1}
        await a.send_raw(b'{"type":"ping"}')
        assert await a.recv() == {"type": "pong"}


async def test_http_get_root_answers_okay(any_server: Server) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        r = await http.get(any_server.http + "/")
    assert r.status_code == 200 and r.text == "okay"


async def test_a_burst_from_one_socket_arrives_complete_and_in_order(any_server: Server) -> None:
    """250 publishes written back to back (no reads in between) reach every subscriber, sender
    included, complete and in order — whatever batching the server does on the way out."""
    n = 250
    async with clients(any_server.url, 2) as (a, b):
        await subscribe(a, "burst")
        await subscribe(b, "burst")
        for i in range(n):
            await a.send({"type": "publish", "topic": "burst", "data": i})
        for c in (a, b):
            got = [(await c.recv())["data"] for _ in range(n)]
            assert got == list(range(n))
            assert await c.barrier() == []
