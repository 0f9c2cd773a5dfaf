"""ICE consent on idle connections to the replica (``collab.peer.ice_tuning``, issue 14).

The replica checks consent (RFC 7675) every ~15 s instead of aioice's 5 s, yet it must keep
answering the remote's checks — a browser stops sending after 30 s without consent responses
— and must still drop a remote that stopped answering its own checks within about 30 s.
Two Python peers with aioice's own consent loop (checks every 4–6 s, closing after 6
unanswered ones, like a browser) connect to a real ``collab serve`` and stay idle past 30 s:
A answers normally; B stops answering the replica's checks.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from collab.peer import WebrtcPeer
from tests.support.marks import needs_netns
from tests.support.peers import peers_through_replica
from tests.support.servers import CollabServer

pytestmark = [pytest.mark.anyio, needs_netns]

IDLE = 40.0
"""Seconds of silence watched: past the 30 s after which a browser (and aioice) gives up."""


def ice_connection(peer: WebrtcPeer, remote_id: str) -> Any:
    """The aioice ``Connection`` under ``peer``'s connection to ``remote_id`` (private)."""
    pc = peer.room._remotes[remote_id]._pc
    assert pc is not None and pc.sctp is not None
    return pc.sctp.transport.transport._connection


async def test_replica_answers_checks_checks_rarely_and_drops_a_silent_peer(
    server: CollabServer,
) -> None:
    room = "idle-consent"
    async with peers_through_replica(server.signaling, room) as (a, b):
        with anyio.fail_after(30):
            (replica_a,) = await a.wait_for_peers(1)
            (replica_b,) = await b.wait_for_peers(1)
            await a.wait_synced()
            await b.wait_synced()
        assert replica_a == replica_b  # the one connection each has is to the replica

        # A counts the replica's checks (and answers them); B drops them unanswered
        checks: list[float] = []
        ice_a = ice_connection(a, replica_a)
        answer_a = ice_a.request_received

        def counted(message: Any, addr: Any, protocol: Any) -> None:
            checks.append(time.monotonic())
            answer_a(message, addr, protocol)

        ice_a.request_received = counted
        ice_connection(b, replica_b).request_received = lambda *_args: None
        channel_a = a.room._remotes[replica_a].channel
        assert channel_a is not None

        def replica_peers() -> int:
            rooms = server.get("/api/rooms").json()
            return sum(r["peers"] for r in rooms if r["name"] == room)

        started = time.monotonic()
        with anyio.fail_after(IDLE + 15):
            # the replica's consent to send to B expires: it drops B (B itself notices only
            # ~30 s later, when its own checks go unanswered)
            while await anyio.to_thread.run_sync(replica_peers) > 1:
                await anyio.sleep(0.5)  # polling the replica's API (no event to wait on)
        dropped_after = time.monotonic() - started
        with anyio.move_on_after(max(0.0, started + IDLE - time.monotonic())):
            await channel_a.wait_closed()  # must not happen: A answers, the replica answers A
        watched = time.monotonic() - started

        assert channel_a.is_open, f"A lost its connection to the replica: {channel_a.close_reason}"
        assert a.connected_peers() == [replica_a]
        # the replica still checks A, at its own pace: ~15 s apart (aioice: every 4–6 s)
        assert 1 <= len(checks) <= watched / 10 + 1, (len(checks), watched)
        # B, which stopped answering, was dropped about 30 s after its last answer
        assert 20 <= dropped_after <= IDLE + 15, dropped_after
