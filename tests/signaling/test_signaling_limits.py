"""Bad input and limits against our server: the offender is ignored or closed with a specific
code, and every other socket keeps working."""

from __future__ import annotations

import secrets
import socket
import time

import anyio
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from signaling.close_codes import CloseCode
from signaling.hooks import SignalingHooks
from signaling.settings import SignalingSettings
from tests.signaling.sig_helpers import WAIT, Server, assert_serving, client, clients, run_ours

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "{",
        '{"type":"publish","topic":"t",}',
        "[]",
        "1",
        '"publish"',
        "null",
        '{"type":5}',
        '{"type":"subscribe","topics":"abc"}',
        '{"type":"subscribe","topics":{"a":1}}',
        '{"type":"unsubscribe","topics":7}',
        '{"type":"publish","topic":5,"data":1}',
        '{"type":"publish","topic":["t"]}',
        '{"type":"publish","topic":"t","data":"\\ud800"}',  # lone surrogate
        '{"type":"publish","topic":"t","n":1e400}',
        b"\xff\xfe\x00garbage",  # binary, not UTF-8
        b"",
        "",
    ],
    ids=repr,
)
async def test_malformed_frames_are_ignored_and_counted(ours: Server, frame: str | bytes) -> None:
    async with clients(ours.url, 2) as (bad, good):
        await good.send({"type": "subscribe", "topics": ["t"]})
        assert await good.barrier() == []
        await bad.send_raw(frame)
        assert await bad.barrier() == []  # still open, nothing relayed
        assert await good.barrier() == []
        await assert_serving(ours.url)
    assert ours.service is not None
    text = ours.service.metrics.render().decode()
    assert 'collab_signaling_messages_in_total{type="ignored"} 1.0' in text


async def test_frame_too_large_closes_1009_only_that_socket() -> None:
    async with (
        run_ours(SignalingSettings(max_frame_bytes=1024)) as server,
        clients(server.url, 2) as (big, other),
    ):
        await other.send({"type": "subscribe", "topics": ["t"]})
        assert await other.barrier() == []
        await big.send({"type": "publish", "topic": "t", "data": "x" * 2000})
        assert await big.closed() == (CloseCode.FRAME_TOO_LARGE, "frame too large")
        assert await other.barrier() == []  # the oversize publish was not relayed
        await assert_serving(server.url)


async def test_multibyte_text_is_measured_in_bytes() -> None:
    settings = SignalingSettings(max_frame_bytes=1024)
    async with run_ours(settings) as server, client(server.url) as c:
        await c.send({"type": "ping", "pad": "€" * 400})  # 400 chars, 1200 bytes
        assert (await c.closed())[0] == CloseCode.FRAME_TOO_LARGE


async def test_a_burst_over_the_rate_is_slowed_not_refused() -> None:
    """Over its rate a socket is read more slowly (backpressure): every frame is answered,
    in order, later than it would be, and the socket stays open."""
    settings = SignalingSettings(
        rate_limit_per_second=50.0, rate_limit_burst=10, rate_limit_close_after_seconds=30
    )
    async with run_ours(settings) as server, client(server.url) as busy:
        started = time.monotonic()
        for i in range(40):
            await busy.send({"type": "ping", "n": i})
        pongs = [await busy.recv() for _ in range(40)]
        elapsed = time.monotonic() - started
        assert pongs == [{"type": "pong"}] * 40
        assert elapsed >= (40 - 10) / 50 * 0.8  # shaped to ~50/s after the burst of 10
        assert await busy.barrier() == []  # still open
        assert server.service is not None
        assert "collab_signaling_throttled_total 1.0" in server.service.metrics.render().decode()


async def test_sustained_flood_is_closed_with_4429() -> None:
    settings = SignalingSettings(
        rate_limit_per_second=20.0, rate_limit_burst=20, rate_limit_close_after_seconds=1.0
    )
    async with run_ours(settings) as server, client(server.url) as flooder:
        started = time.monotonic()
        for _ in range(400):
            try:
                await flooder.send({"type": "ping"})
            except ConnectionClosed:
                break
        assert await flooder.closed() == (CloseCode.RATE_LIMITED, "rate limit exceeded")
        assert time.monotonic() - started >= 1.0  # shaped first, closed only when sustained
        await assert_serving(server.url)
        assert server.service is not None
        assert 'reason="rate_limit_exceeded"' in server.service.metrics.render().decode()


async def test_a_join_into_a_room_of_35_with_turn_goes_through_untouched() -> None:
    """A y-webrtc browser joining 35 peers with TURN: an answer plus ~10 trickled candidates
    per peer, ~400 publish frames at once (the frames y-webrtc sends, replayed). With the
    default limits every frame reaches the room, in order, without delay or close."""
    async with (
        run_ours(SignalingSettings()) as server,
        client(server.url) as joiner,
        client(server.url) as peer,
    ):
        await peer.send({"type": "subscribe", "topics": ["big-room"]})
        await joiner.send({"type": "subscribe", "topics": ["big-room"]})
        assert await peer.barrier() == []
        frames = []
        for n in range(35):
            frames.append({"to": f"peer-{n}", "type": "signal", "signal": {"type": "answer"}})
            for c in range(10):
                candidate = {"candidate": f"candidate:{c} 1 udp {c} 10.0.0.{c} {c} typ relay"}
                frames.append({"to": f"peer-{n}", "type": "signal", "signal": candidate})
        started = time.monotonic()
        for i, data in enumerate(frames):
            await joiner.send({"type": "publish", "topic": "big-room", "data": {**data, "i": i}})
        got = [(await peer.recv())["data"]["i"] for _ in frames]
        assert got == list(range(len(frames)))
        assert time.monotonic() - started < 5
        # still connected: its own frames were echoed back to it (it is subscribed), in order
        echoed = await joiner.barrier()
        assert [m["data"]["i"] for m in echoed] == list(range(len(frames)))
        assert server.service is not None
        assert "collab_signaling_throttled_total 0.0" in server.service.metrics.render().decode()


async def test_too_many_topics_closes_4429() -> None:
    async with (
        run_ours(SignalingSettings(max_topics_per_socket=3)) as server,
        client(server.url) as c,
    ):
        await c.send({"type": "subscribe", "topics": ["a", "b", "c"]})
        assert await c.barrier() == []
        await c.send({"type": "subscribe", "topics": ["a", "d"]})
        assert await c.closed() == (CloseCode.RATE_LIMITED, "too many topics")
        await assert_serving(server.url)


async def test_unsubscribe_frees_topic_slots() -> None:
    async with (
        run_ours(SignalingSettings(max_topics_per_socket=2)) as server,
        client(server.url) as c,
    ):
        for i in range(10):
            await c.send({"type": "subscribe", "topics": [f"t{i}"]})
            await c.send({"type": "unsubscribe", "topics": [f"t{i}"]})
        assert await c.barrier() == []


async def test_too_many_subscribers_on_topic_closes_4413() -> None:
    async with (
        run_ours(SignalingSettings(max_subscribers_per_topic=2)) as server,
        clients(server.url, 3) as (a, b, c),
    ):
        for x in (a, b):
            await x.send({"type": "subscribe", "topics": ["full"]})
            assert await x.barrier() == []
        await c.send({"type": "subscribe", "topics": ["full"]})
        assert await c.closed() == (CloseCode.TOPIC_FULL, "too many subscribers on topic")
        await a.send({"type": "publish", "topic": "full"})
        assert (await b.recv())["clients"] == 2


async def test_too_many_sockets_per_address_closes_4429() -> None:
    async with run_ours(SignalingSettings(max_sockets_per_address=2)) as server:
        async with clients(server.url, 2) as (a, _b):
            async with client(server.url) as third:
                assert await third.closed() == (
                    CloseCode.RATE_LIMITED,
                    "too many sockets from this address",
                )
            assert await a.barrier() == []
        # Slots are released when sockets close: wait until a new socket is admitted again.
        with anyio.fail_after(WAIT):
            while True:
                async with client(server.url) as again:
                    try:
                        await again.send({"type": "ping"})
                        if await again.recv() == {"type": "pong"}:
                            break
                    except ConnectionClosed:
                        continue


async def test_idle_socket_closes_4408_active_one_stays() -> None:
    async with (
        run_ours(SignalingSettings(idle_timeout_seconds=0.5)) as server,
        clients(server.url, 1) as (idle,),
    ):
        assert await idle.closed() == (CloseCode.IDLE_TIMEOUT, "idle timeout")
        assert server.service is not None
        assert 'reason="idle_timeout"' in server.service.metrics.render().decode()


async def test_health_and_metrics_endpoints(ours: Server) -> None:
    await assert_serving(ours.url)
    async with httpx.AsyncClient() as http:
        health = await http.get(ours.http + "/healthz")
        metrics = await http.get(ours.http + "/metrics")
    assert health.status_code == 200 and health.text == "okay"
    assert metrics.status_code == 200
    for name in (
        "collab_signaling_sockets",
        "collab_signaling_topics",
        "collab_signaling_messages_in_total",
        "collab_signaling_messages_out_total",
        "collab_signaling_bytes_in_total",
        "collab_signaling_bytes_out_total",
        "collab_signaling_refusals_total",
        "collab_signaling_fanout_seconds_bucket",
    ):
        assert name in metrics.text
    assert 'collab_signaling_messages_in_total{type="publish"} 1.0' in metrics.text


async def test_signaling_path_works_like_root(ours: Server) -> None:
    async with client(ours.url + "/signaling") as a, client(ours.url + "/") as b:
        await a.send({"type": "subscribe", "topics": ["p"]})
        assert await a.barrier() == []
        await b.send({"type": "publish", "topic": "p", "data": 1})
        assert await a.recv() == {"type": "publish", "topic": "p", "data": 1, "clients": 1}


def small_rcvbuf_socket(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # also disables autotuning
    sock.connect(("127.0.0.1", port))
    return sock


async def test_a_stalled_reader_gets_every_frame_in_order_when_it_reads_again() -> None:
    """A reader that stops reading pauses its transport: frames for it wait in its outbox
    (within ``send_queue_size``) while the publisher and another reader go on; once it reads
    again it gets every frame, in order, then the pong."""
    n = 40
    # 40 x 160 KB: more than the kernel buffers on the way (the server's send buffer grows to
    # a few MB), so the server's transport pauses and frames wait in the outbox
    blob = secrets.token_urlsafe(120_000)
    async with (
        run_ours(SignalingSettings(rate_limit_burst=1000)) as server,
        client(server.url, max_queue=1, sock=small_rcvbuf_socket(server.url)) as stalled,
        client(server.url) as reader,
        client(server.url) as publisher,
    ):
        for c in (stalled, reader):
            await c.send({"type": "subscribe", "topics": ["t"]})
            assert await c.barrier() == []
        for i in range(n):
            await publisher.send({"type": "publish", "topic": "t", "data": [i, blob]})
            assert (await reader.recv())["data"][0] == i  # never held up by the stalled one
        assert await publisher.barrier() == []
        got = [(await stalled.recv())["data"][0] for _ in range(n)]
        assert got == list(range(n))
        assert await stalled.barrier() == []


async def test_slow_reader_is_closed_1013_others_unaffected() -> None:
    settings = SignalingSettings(send_queue_size=4, rate_limit_burst=1000, max_frame_bytes=300_000)
    async with (
        run_ours(settings) as server,
        # stops reading after one frame; a tiny receive buffer keeps the kernel from absorbing MBs
        client(server.url, max_queue=1, sock=small_rcvbuf_socket(server.url)) as slow,
        client(server.url) as publisher,
    ):
        await slow.send({"type": "subscribe", "topics": ["big"]})
        assert await slow.barrier() == []
        blob = secrets.token_urlsafe(150_000)  # ~200 KB, incompressible (permessage-deflate)
        with anyio.fail_after(WAIT):
            # keep publishing until the server gives up on the slow reader
            while server.service is not None and (
                'reason="slow_consumer"' not in server.service.metrics.render().decode()
            ):
                await publisher.send({"type": "publish", "topic": "big", "data": blob})
                assert await publisher.barrier() == []
        code, _reason = await slow.closed()
        assert code == CloseCode.SLOW_CONSUMER
        await assert_serving(server.url)


async def test_dead_socket_is_evicted_by_websocket_keepalive() -> None:
    """A peer that completes the upgrade and then never answers WebSocket pings is dropped."""
    settings = SignalingSettings(
        ws_ping_interval_seconds=0.2, ws_ping_timeout_seconds=0.2, idle_timeout_seconds=3600
    )
    left = anyio.Event()
    hooks = SignalingHooks(on_subscriber_left=lambda topic, info: left.set())
    subscribe = b'{"type":"subscribe","topics":["dead"]}'
    masked_frame = bytes((0x81, 0x80 | len(subscribe))) + b"\0\0\0\0" + subscribe  # zero mask
    async with run_ours(settings, hooks) as server:
        port = int(server.url.rsplit(":", 1)[1])
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            await stream.send(
                b"GET /signaling HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            received = b""
            with anyio.fail_after(WAIT):
                while b"\r\n\r\n" not in received:
                    received += await stream.receive()
            await stream.send(masked_frame)
            with anyio.fail_after(WAIT):
                try:
                    while True:  # read (and ignore) pings until the server hangs up
                        received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                    pass
        assert received.startswith(b"HTTP/1.1 101")
        assert b"\x89" in received[received.index(b"\r\n\r\n") :]  # at least one ping frame
        with anyio.fail_after(WAIT):  # the service cleaned up the evicted socket
            await left.wait()
        assert server.service is not None
        metrics = server.service.metrics.render().decode()
        assert 'collab_signaling_sockets{endpoint="yjs"} 0.0' in metrics
        await assert_serving(server.url)
