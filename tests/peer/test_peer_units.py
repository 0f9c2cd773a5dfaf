"""Unit-level tests of collab.peer: candidate parsing, config, large-document requests, the
signaling client's keepalive/reconnect, and the data-channel adapter over a real in-process
aiortc pair."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve

from collab.document import Document
from collab.errors import ProtocolError, TransportError
from collab.peer import DataChannel, IceServer, PeerConfig, SignalingClient
from collab.peer.large_sync import per_client_requests
from collab.peer.remote import parse_candidate, rtc_configuration
from collab.protocol import SyncStep1, decode_message, decode_state_vector
from tests.support.peers import channel_pair as aiortc_channel_pair

# ------------------------------------------------------------------ candidates

CHROME_HOST = (
    "candidate:2849340489 1 udp 2122260223 10.77.0.1 52712 typ host generation 0 "
    "ufrag Zq8v network-id 1"
)


def test_parse_browser_candidate() -> None:
    c = parse_candidate({"candidate": CHROME_HOST, "sdpMid": "0", "sdpMLineIndex": 0})
    assert c is not None
    assert (c.ip, c.port, c.protocol, c.type, c.priority) == (
        "10.77.0.1",
        52712,
        "udp",
        "host",
        2122260223,
    )
    assert (c.sdpMid, c.sdpMLineIndex) == ("0", 0)


def test_parse_mdns_and_srflx_candidates() -> None:
    mdns = parse_candidate(
        {
            "candidate": "candidate:1 1 udp 2122260223 4f1c3b2a-1e2d.local 5000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
    )
    assert mdns is not None and mdns.ip.endswith(".local")
    srflx = parse_candidate(
        {
            "candidate": "candidate:9 1 udp 1686052607 203.0.113.7 61000 typ srflx "
            "raddr 10.0.0.2 rport 61000",
            "sdpMid": None,
            "sdpMLineIndex": 0,
        }
    )
    assert srflx is not None and srflx.relatedAddress == "10.0.0.2" and srflx.relatedPort == 61000


def test_end_of_candidates() -> None:
    assert parse_candidate({"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "candidate:1 1 udp 1 1.2.3.4 5 typ host",
        {"candidate": 5},
        {"candidate": "candidate:1 1 udp"},
        {"candidate": "candidate:1 1 udp x 1.2.3.4 5 typ host"},
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 70000 typ host"},
        {"candidate": "candidate:1 1 sctp 1 1.2.3.4 5 typ host"},
        {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 type host"},
        {"candidate": CHROME_HOST, "sdpMLineIndex": -1},
        {"candidate": CHROME_HOST, "sdpMLineIndex": True},
        {"candidate": CHROME_HOST, "sdpMid": 3},
        {"candidate": "x" * 5000},
    ],
)
def test_bad_candidates_raise_protocol_error(value: Any) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_candidate(value)
    assert e.value.code == "bad-candidate"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
candidate_lines = st.lists(
    st.sampled_from(
        [
            "candidate:1",
            "1",
            "udp",
            "tcp",
            "2122260223",
            "10.0.0.1",
            "5000",
            "typ",
            "host",
            "raddr",
            "rport",
            "-1",
            "x",
            "",
            "99999999999999999999",
        ]
    ),
    max_size=12,
).map(" ".join)


@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"candidate": candidate_lines, "sdpMid": json_values, "sdpMLineIndex": json_values}
        ),
    )
)
def test_parse_candidate_never_raises_anything_else(value: Any) -> None:
    with contextlib.suppress(ProtocolError):
        parse_candidate(value)


# ------------------------------------------------------------------ config


def test_config_validation_and_rtc_configuration() -> None:
    with pytest.raises(ValueError, match="username"):
        IceServer("turn:turn.example.org:3478")
    with pytest.raises(ValueError, match="stun:/turn:"):
        IceServer("http://example.org")
    with pytest.raises(ValueError):
        PeerConfig(send_low_water=10, send_high_water=5)
    cfg = PeerConfig(
        ice_servers=[
            IceServer("stun:stun.example.org:3478"),
            IceServer("turn:turn.example.org:3478", username="u", credential="p"),
        ]
    )
    rtc = rtc_configuration(cfg)
    assert [s.urls for s in rtc.iceServers] == [
        "stun:stun.example.org:3478",
        "turn:turn.example.org:3478",
    ]
    assert rtc.iceServers[1].username == "u" and rtc.iceServers[1].credential == "p"
    assert rtc_configuration(PeerConfig()).iceServers == []  # never aiortc's Google STUN


# ------------------------------------------------------------------ large documents


def test_per_client_requests_pull_each_client_separately() -> None:
    remote = Document()
    for session in range(3):  # three editing sessions = three Yjs clients
        writer = Document()
        writer.apply_update(remote.get_update())
        writer.text().insert(len(str(writer.text())), f"[session {session}] " + "x" * 4000)
        remote.apply_update(writer.get_update(remote.state_vector()))
    local = Document()
    remote_sv = decode_state_vector(remote.state_vector())
    requests = per_client_requests(
        remote_sv, decode_state_vector(local.state_vector()), threshold=1000
    )
    assert len(requests) == 3
    sizes = []
    for request in requests:
        message = decode_message(request)
        assert isinstance(message, SyncStep1)
        answer = remote.get_update(message.state_vector)  # what a Yjs peer replies with
        sizes.append(len(answer))
        local.apply_update(answer)
    assert str(local.text()) == str(remote.text())
    assert max(sizes) < len(remote.get_update()) / 2  # each answer holds about one client
    # below the threshold, or a single client: nothing to gain
    assert per_client_requests(remote_sv, {}, threshold=10**9) == []
    assert per_client_requests({1: 10**6}, {}, threshold=1) == []
    assert per_client_requests(remote_sv, remote_sv, threshold=1) == []


# ------------------------------------------------------------------ signaling client


class FakeSignaling:
    """A real WebSocket server that records frames and answers (or not) as told."""

    def __init__(self, *, answer_pings: bool) -> None:
        self.answer_pings = answer_pings
        self.frames: list[dict[str, Any]] = []
        self.connections = 0
        self.pongs = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        await ws.send(json.dumps({"type": "ping"}))  # a server-side app-level ping
        async for raw in ws:
            frame = json.loads(raw)
            self.frames.append(frame)
            if frame.get("type") == "pong":
                self.pongs += 1
            if frame.get("type") == "ping" and self.answer_pings:
                await ws.send(json.dumps({"type": "pong"}))
            if not self.answer_pings:
                continue  # a silent (hung) server
            if frame.get("type") == "publish":  # echo like y-webrtc's server
                await ws.send(json.dumps({**frame, "clients": 1}))
            await ws.send("not json")  # garbage the client must ignore


@pytest.fixture
async def fake_signaling(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, FakeSignaling]]:
    fake = FakeSignaling(answer_pings=getattr(request, "param", True))
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", fake


@pytest.mark.anyio
async def test_signaling_pings_pongs_subscribes_and_ignores_garbage(
    fake_signaling: tuple[str, FakeSignaling],
) -> None:
    url, fake = fake_signaling
    cfg = PeerConfig(ping_interval=0.05, signaling_timeout=5)
    got: list[Any] = []
    connects = 0

    def on_connect() -> None:
        nonlocal connects
        connects += 1

    async with SignalingClient(url, cfg) as sig:
        await sig.subscribe("room-ä", on_message=got.append, on_connect=on_connect)
        with anyio.fail_after(10):
            await sig.wait_connected()
            await sig.wait_until(lambda: sig.counters.pongs_received >= 2)
            assert await sig.publish("room-ä", {"type": "announce", "from": "me"})
            await sig.wait_until(lambda: got != [] and sig.counters.bad_frames > 0)
            await sig.wait_until(lambda: fake.pongs >= 1)
    assert got == [{"type": "announce", "from": "me"}]
    assert {"type": "subscribe", "topics": ["room-ä"]} in fake.frames
    assert sig.counters.pings_answered >= 1 and connects == 1


@pytest.mark.anyio
@pytest.mark.parametrize("fake_signaling", [False], indirect=True)
async def test_signaling_silent_server_triggers_reconnect(
    fake_signaling: tuple[str, FakeSignaling],
) -> None:
    url, fake = fake_signaling
    cfg = PeerConfig(ping_interval=0.05, signaling_timeout=0.3, reconnect_min=0.01)
    async with SignalingClient(url, cfg) as sig:
        with anyio.fail_after(20):
            await sig.wait_until(lambda: sig.counters.connects >= 2)
    assert fake.connections >= 2 and sig.counters.disconnects >= 1


@pytest.mark.anyio
async def test_signaling_loss_is_reported_once_then_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A signaling server that is down: one error line at the first failure (not one per
    retry), then one recovery line when it answers again."""
    caplog.set_level(logging.INFO, logger="collab.peer.signaling_client")
    # bound but not listening: connections are refused, and the port stays ours for later
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as down:
        down.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{down.getsockname()[1]}"
        fake = FakeSignaling(answer_pings=True)
        config = PeerConfig(reconnect_min=0.01, reconnect_max=0.05)
        async with SignalingClient(url, config) as sig:
            with anyio.fail_after(10):
                await sig.wait_until(lambda: sig.outage.failures >= 5)
            assert not sig.outage.up
            down.listen()
            async with serve(fake.handler, sock=down):
                with anyio.fail_after(10):
                    await sig.wait_connected()
            assert sig.outage.up and sig.outage.outages == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("signaling is failing" in m for m in messages) == 1
    assert sum("signaling recovered after" in m for m in messages) == 1


@pytest.mark.anyio
async def test_signaling_client_not_connected_drops_publishes() -> None:
    sig = SignalingClient("ws://127.0.0.1:9/none", PeerConfig(reconnect_min=0.01))
    async with sig:
        assert not sig.connected
        assert await sig.publish("r", {"type": "announce"}) is False
    with pytest.raises(ValueError):
        SignalingClient("http://example.org")


# ------------------------------------------------------------------ data channel adapter


@pytest.fixture
async def channel_pair() -> AsyncIterator[tuple[DataChannel, DataChannel, Any]]:
    """Two real aiortc peer connections in this process, one data channel between them."""
    async with aiortc_channel_pair(high_water=128 * 1024, low_water=32 * 1024) as pair:
        left, right, raw, _pc1, _pc2 = pair
        yield left, right, raw


@pytest.mark.anyio
async def test_data_channel_adapter(channel_pair: tuple[DataChannel, DataChannel, Any]) -> None:
    left, right, raw = channel_pair
    assert left.max_message_size == right.max_message_size == 262_144
    # too large: refused before aiortc, channel stays usable
    with pytest.raises(ProtocolError) as e:
        await left.send(b"\x00" * 262_145)
    assert e.value.code == "too-large" and left.is_open
    # a text frame (y-webrtc never sends one) is dropped and counted
    raw.send("hello")
    # back-pressure: many large messages, all arrive in order
    rng = random.Random(1)
    payloads = [bytes([i]) + rng.randbytes(60_000) for i in range(40)]
    received: list[bytes] = []

    async def reader() -> None:
        async for message in right:
            received.append(message)
            if len(received) == len(payloads) + 1:
                return

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            for p in payloads:
                await left.send(p)
            await left.send(b"end")
    assert received == [*payloads, b"end"]
    assert right.counters.dropped_in == 1  # the text frame
    assert left.counters.send_waits > 0  # the high-water mark was hit and waited out
    assert left.counters.messages_out == 41 and right.counters.messages_in == 41
    # closing: the remote side's iteration ends, sends raise TransportError
    await left.close("done")
    with anyio.fail_after(20):
        await right.wait_closed()
    with pytest.raises(TransportError):
        await right.send(b"x")
    with pytest.raises(TransportError):
        await right.recv()


@pytest.mark.anyio
async def test_burst_is_merged_while_a_message_is_in_flight(
    channel_pair: tuple[DataChannel, DataChannel, Any],
) -> None:
    """Nagle for updates: while A's previous message is unacknowledged, what A types is
    queued and merged into the next message (fewer SCTP messages than event-loop turns);
    the receiver still gets every keystroke."""
    import anyio.lowlevel

    from collab.sync import SyncRoom

    left, right, _raw = channel_pair
    a, b = SyncRoom(), SyncRoom()
    turns, per_turn = 200, 16
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.serve, left, "a->b")
        tg.start_soon(b.serve, right, "b->a")
        with anyio.fail_after(20):
            await a.wait_connected_synced()
            await b.wait_connected_synced()
        (conn,) = a.connections
        sent_before = conn.stats.messages_out
        changed = [anyio.Event()]
        b.document.observe(lambda update, origin: changed[0].set())
        text = a.document.text()
        for turn in range(turns):
            for i in range(per_turn):
                with a.document.transaction():
                    text.insert(turn * per_turn + i, "x")
            await anyio.lowlevel.checkpoint()  # the sender gets one turn per 16 keystrokes
        with anyio.fail_after(30):
            while str(b.document.text()) != "x" * (turns * per_turn):
                await changed[0].wait()
                changed[0] = anyio.Event()
        tg.cancel_scope.cancel()
    assert left.counters.writable_waits > 0
    assert conn.stats.messages_out - sent_before < turns  # fewer messages than turns
