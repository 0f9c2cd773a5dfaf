"""Python WebRTC peers (aiortc) for tests, and waits on what a peer sees: its document, and
the durable state vector the archival replica advertises in awareness."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from aiortc import RTCDataChannel, RTCPeerConnection

from collab.peer import DataChannel, PeerConfig, WebrtcPeer
from collab.peer.remote import rtc_configuration
from collab.protocol import decode_state_vector


@asynccontextmanager
async def peer(room: str, url: str, **kwargs: Any) -> AsyncIterator[WebrtcPeer]:
    """A Python WebRTC peer in ``room`` (no STUN: host candidates only)."""
    async with WebrtcPeer(room, url, config=PeerConfig(ice_servers=[]), **kwargs) as p:
        yield p


NO_INITIATE = PeerConfig(ice_servers=[], max_conns=0)
"""A peer that never initiates (like a y-webrtc browser at its ``maxConns`` limit)."""


@asynccontextmanager
async def peers_through_replica(
    url: str, room: str
) -> AsyncIterator[tuple[WebrtcPeer, WebrtcPeer]]:
    """Two peers of ``room`` linked only through the archival replica: an opener makes the
    replica follow the room first, then two :data:`NO_INITIATE` peers join — the replica,
    already there, initiates to both; they never connect to each other."""
    async with peer(room, url) as opener:
        with anyio.fail_after(30):
            await opener.wait_for_peers(1)  # the replica follows the room
    async with (
        WebrtcPeer(room, url, config=NO_INITIATE) as a,
        WebrtcPeer(room, url, config=NO_INITIATE) as b,
    ):
        yield a, b


def replica_svs(p: WebrtcPeer) -> list[dict[int, int]]:
    """The durable state vectors every replica in the peer's awareness advertises (after a
    restart or takeover the dead replica's state lingers until it times out)."""
    out = []
    for state in p.awareness.states.values():
        if isinstance(state, dict):
            collab = state.get("collab")
            if isinstance(collab, dict) and collab.get("role") == "replica":
                out.append(decode_state_vector(base64.b64decode(collab["sv"])))
    return out


def is_saved(p: WebrtcPeer) -> bool:
    """True when a replica has durably stored everything this peer's document holds."""
    mine = decode_state_vector(p.document.state_vector())
    return any(
        all(sv.get(client, 0) >= clock for client, clock in mine.items()) for sv in replica_svs(p)
    )


async def wait_saved(p: WebrtcPeer, timeout: float = 30.0) -> None:
    """Wait (on awareness changes) until the replica reports this peer's state as stored."""
    changed = anyio.Event()

    def on_change(_event: object) -> None:
        changed.set()

    handle = p.awareness.observe(on_change)
    try:
        with anyio.fail_after(timeout):
            while not is_saved(p):
                await changed.wait()
                changed = anyio.Event()
    finally:
        p.awareness.unobserve(handle)


async def wait_doc(p: WebrtcPeer, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait (on document updates) until ``predicate()`` holds."""
    changed = anyio.Event()

    def on_update(_update: bytes, _origin: object) -> None:
        changed.set()

    handle = p.document.observe(on_update)
    try:
        with anyio.fail_after(timeout):
            while not predicate():
                await changed.wait()
                changed = anyio.Event()
    finally:
        p.document.unobserve(handle)


async def wait_text(p: WebrtcPeer, expected: str, timeout: float = 30.0) -> None:
    """Wait until the peer's shared text equals ``expected``."""
    await wait_doc(p, lambda: str(p.document.text()) == expected, timeout)


@asynccontextmanager
async def channel_pair(
    **left: Any,
) -> AsyncIterator[tuple[DataChannel, DataChannel, RTCDataChannel, Any, Any]]:
    """Two real aiortc peer connections in this process and one data channel between them:
    ``(left, right, left's raw RTCDataChannel, pc1, pc2)``; ``left`` takes the
    :class:`DataChannel` options given (``high_water=...``)."""
    cfg = rtc_configuration(PeerConfig())
    pc1, pc2 = RTCPeerConnection(cfg), RTCPeerConnection(cfg)
    try:
        raw = pc1.createDataChannel("test")
        channel = DataChannel(raw, label="left", **left)
        right: list[DataChannel] = []
        got_right = anyio.Event()

        @pc2.on("datachannel")
        def on_datachannel(rtc_channel: RTCDataChannel) -> None:
            right.append(DataChannel(rtc_channel, label="right"))
            got_right.set()

        await pc1.setLocalDescription(await pc1.createOffer())
        await pc2.setRemoteDescription(pc1.localDescription)
        await pc2.setLocalDescription(await pc2.createAnswer())
        await pc1.setRemoteDescription(pc2.localDescription)
        with anyio.fail_after(30):
            await channel.wait_open()
            await got_right.wait()
            await right[0].wait_open()
        yield channel, right[0], raw, pc1, pc2
        await channel.close()
        await right[0].close()
    finally:
        await pc1.close()
        await pc2.close()
