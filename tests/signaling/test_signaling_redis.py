"""Two real uvicorn instances sharing topics through a real redis-server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from signaling.settings import SignalingSettings
from tests.signaling.sig_helpers import (
    WAIT,
    Client,
    RedisProc,
    Server,
    client,
    run_ours,
    start_redis,
    stop_redis,
)

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@contextlib.asynccontextmanager
async def two_instances(redis: RedisProc) -> AsyncIterator[tuple[Server, Server]]:
    settings = SignalingSettings(redis_url=redis.url, redis_prefix="test")
    async with run_ours(settings) as one, run_ours(settings) as two:
        for s in (one, two):
            assert s.service is not None
            await s.service.start()
            assert s.service.bus is not None
            with anyio.fail_after(WAIT):
                await s.service.bus.wait_up()
        yield one, two


async def publish_until(
    sender: Client, receiver: Client, topic: str, clients: int, data: object
) -> dict[str, object]:
    """Publish until ``receiver`` sees ``data`` with the expected ``clients`` (subscriptions and
    counts propagate through Redis asynchronously)."""
    with anyio.fail_after(WAIT):
        while True:
            await sender.send({"type": "publish", "topic": topic, "data": data})
            with anyio.move_on_after(0.5):
                while True:
                    got = await receiver.recv()
                    if got.get("data") == data and got.get("clients") == clients:
                        return dict(got)


@pytest.fixture
def redis() -> object:
    r = start_redis()
    try:
        yield r
    finally:
        stop_redis(r)


async def test_publish_on_a_reaches_b_with_summed_clients(redis: RedisProc) -> None:
    async with (
        two_instances(redis) as (one, two),
        client(one.url) as a1,
        client(one.url) as a2,
        client(two.url) as b1,
    ):
        for c in (a1, a2, b1):
            await c.send({"type": "subscribe", "topics": ["shared"]})
            assert await c.barrier() == []
        got = await publish_until(a1, b1, "shared", 3, "hello")
        assert got == {"type": "publish", "topic": "shared", "data": "hello", "clients": 3}
        # every subscriber, on both instances, sees the same message and count
        await a1.send({"type": "publish", "topic": "shared", "data": "second"})
        expected = {"type": "publish", "topic": "shared", "data": "second", "clients": 3}
        for c in (a1, a2, b1):
            with anyio.fail_after(WAIT):
                while (msg := await c.recv()) != expected:
                    assert msg["data"] == "hello"
        # B → A as well, and an unsubscribe on B lowers the count seen on A
        await publish_until(b1, a2, "shared", 3, "from-b")
        await b1.send({"type": "unsubscribe", "topics": ["shared"]})
        await b1.barrier()  # drains b1's own echoes of "from-b"
        await publish_until(a1, a2, "shared", 2, "after-unsub")


async def test_redis_outage_is_reported_and_recovered(
    redis: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signaling")
    async with two_instances(redis) as (one, two):
        assert one.service is not None and one.service.bus is not None
        assert two.service is not None and two.service.bus is not None
        async with client(one.url) as a, client(two.url) as b:
            for c in (a, b):
                await c.send({"type": "subscribe", "topics": ["r"]})
                assert await c.barrier() == []
            await publish_until(a, b, "r", 2, "before")

            stop_redis(redis)
            with anyio.fail_after(WAIT):
                await one.service.bus.wait_down()
                await two.service.bus.wait_down()
            metrics = one.service.metrics.render().decode()
            assert "collab_signaling_redis_up 0.0" in metrics
            assert "collab_signaling_redis_errors_total 0.0" not in metrics
            # sockets stay open; local subscribers still get publishes (local count)
            await a.send({"type": "publish", "topic": "r", "data": "during"})
            msg = await a.recv()
            while msg.get("data") != "during":
                msg = await a.recv()
            assert msg["clients"] == 1

            restarted = start_redis(redis.port)
            try:
                with anyio.fail_after(WAIT * 2):
                    await one.service.bus.wait_up()
                    await two.service.bus.wait_up()
                assert "collab_signaling_redis_up 1.0" in one.service.metrics.render().decode()
                await publish_until(a, b, "r", 2, "after")
                await publish_until(b, a, "r", 2, "after-b")
                messages = [r.getMessage() for r in caplog.records if r.name.startswith("signal")]
            finally:
                stop_redis(restarted)
    # operators read: one line when it went down, a retry line at most once a minute, one
    # recovery line (per instance)
    assert messages.count("redis bus down; publishes reach local subscribers only") == 2
    assert messages.count("redis bus connect failed; retrying") <= 2
    assert messages.count("redis bus recovered") == 2


async def test_first_socket_on_an_instance_hears_the_answer_to_its_announce(
    redis: RedisProc,
) -> None:
    """y-webrtc announces right after subscribing, and never resends an offer: by the time the
    first socket of a topic on an instance gets its next frame handled, Redis must already
    deliver the topic's channel to that instance, so an answer from another instance is
    never lost (before: the SUBSCRIBE went out later, from a background flush)."""
    import redis.asyncio as aioredis

    observer = aioredis.from_url(redis.url)
    try:
        async with two_instances(redis) as (two, one), client(two.url) as b:
            topics = [f"fresh-{i}" for i in range(8)]
            await b.send({"type": "subscribe", "topics": topics})
            await b.barrier()
            assert two.service is not None and two.service.bus is not None
            with anyio.fail_after(WAIT):
                assert await two.service.bus.subscribed(topics)
            for topic in topics:
                async with client(one.url) as a:
                    await a.send({"type": "subscribe", "topics": [topic]})
                    await a.barrier()  # the pong comes once the subscribe frame is handled
                    [(_, subscribers)] = await observer.pubsub_numsub(f"test:t:{topic}")
                    assert subscribers == 2, f"{topic}: instance one not subscribed yet"
                    await a.send({"type": "publish", "topic": topic, "data": {"type": "announce"}})
                    with anyio.fail_after(WAIT):
                        while (await b.recv()).get("topic") != topic:
                            pass
                    await b.send({"type": "publish", "topic": topic, "data": {"type": "answer"}})
                    with anyio.fail_after(WAIT):
                        while (await a.recv()).get("data") != {"type": "answer"}:
                            pass
    finally:
        await observer.aclose()
