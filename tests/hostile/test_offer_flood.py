"""Attack (b): a flood of offers that never connect, under a low fd limit.

400 valid data-channel offers (a real aiortc offer's SDP with its candidates stripped, so
ICE can never complete) from 400 distinct peer ids: 200 into one room, 50 into each of four
more. For every offer the replica opens a peer connection and binds UDP sockets (one per
host address: 2 in the test namespace) and holds them until its connect timeout. Unbounded,
that is ~+800 fds: the server runs under ``ulimit -n 512`` here, so it hits EMFILE and the
rooms' tasks die (a connection that was already open in the flooded room is cancelled).

Victim properties, while the flood's connections are still pending: a sentinel room opened
after the flood archives; a legit peer connected before the flood keeps archiving its edits
in the flooded room; the process is alive; open fds stay under a bound.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pytest

from collab.peer.config import PeerConfig
from tests.hostile.victim import (
    ResourceWatch,
    ServerFactory,
    assert_alive,
    check_sentinel,
    wait_archived,
)
from tests.support.attacker import (
    RawSignaling,
    new_peer_id,
    offer_sdp,
    replica_peer_id,
    strip_candidates,
)
from tests.support.marks import needs_netns
from tests.support.peers import peer

pytestmark = [pytest.mark.anyio, pytest.mark.netns, pytest.mark.slow, needs_netns]

FD_LIMIT = 512
"""``ulimit -n`` of the server: the idle server holds ~15 fds."""
FLOOD = {"flood-main": 200, "flood-b": 50, "flood-c": 50, "flood-d": 50, "flood-e": 50}
"""Offers per room (each from its own peer id)."""
OFFERS_PER_SOCKET = 100
"""Spread over sockets to stay within the signaling's per-socket burst (200 frames)."""
MAX_PENDING_TOTAL = PeerConfig().max_pending_total
"""The replica's process-wide cap on pending handshakes (64)."""
MAX_FD_GROWTH = 2 * MAX_PENDING_TOTAL + 72
"""Peak growth of open fds during the flood: the capped pending handshakes at ~2 fds each
(one UDP socket per host address), plus room for what the victim checks open meanwhile — the
writer's and the sentinel's connections, the rooms' stores, the HTTP polls (which overlap on
a loaded box: 155 was seen at load 15). Unbounded it would be ~+800 (400 offers × 2); before
the defenses it grew ~+500 until EMFILE at the limit."""
MAX_RSS_GROWTH_MB = 60
"""Peak RSS growth: a pending aiortc connection costs ~0.3 MB; ~64 pending plus the checks
stay well under this. Before the defenses: +31 MB until EMFILE stopped the growth."""


async def test_offer_flood_is_bounded_and_rooms_survive(hostile_server: ServerFactory) -> None:
    server = hostile_server(nofile=FD_LIMIT)
    assert server.proc is not None
    async with AsyncExitStack() as stack:
        # learn the replica's id in every room first (fresh rooms: only the replica is there)
        scout = await stack.enter_async_context(RawSignaling(server.signaling))
        replica: dict[str, str] = {}
        with anyio.fail_after(20):
            for room in FLOOD:
                replica[room] = await replica_peer_id(scout, room, new_peer_id())
        writer = await stack.enter_async_context(peer("flood-main", server.signaling))
        writer.document.text().insert(0, "before the flood. ")
        await wait_archived(server, "flood-main", "before the flood. ")

        sdp = strip_candidates(await offer_sdp())
        targets = [room for room, count in FLOOD.items() for _ in range(count)]
        sockets = [
            await stack.enter_async_context(RawSignaling(server.signaling, tolerant=True))
            for _ in range(-(-len(targets) // OFFERS_PER_SOCKET))
        ]
        figures: dict[str, str] = {}
        async with ResourceWatch(server.proc.pid) as watch:
            try:
                for i, room in enumerate(targets):
                    sig = sockets[i // OFFERS_PER_SOCKET]
                    offer = {"type": "offer", "sdp": sdp}
                    await sig.signal(room, new_peer_id(), replica[room], offer)
                # the flood's connections stay pending for the replica's connect timeout;
                # everything below happens inside that window
                figures["sentinel"] = f"{await check_sentinel(server):.2f} s"
                text = writer.document.text()
                text.insert(len(text), "after the flood.")
                figures["flooded room"] = (
                    f"{await wait_archived(server, 'flood-main', str(text)):.2f} s"
                )
                assert_alive(server)
            finally:
                watch.sample()
                closed = [s.close_code for s in sockets if s.closed.is_set()]
                print(
                    f"\n[flood] {len(targets)} candidate-less offers (ulimit -n {FD_LIMIT}); "
                    f"archived: {figures}; attacker sockets closed by the server: {closed}; "
                    f"{watch.line()}"
                )
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB, max_fds=MAX_FD_GROWTH)
