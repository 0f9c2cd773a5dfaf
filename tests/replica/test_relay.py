"""Relay through the replica: two peers that cannot reach each other directly still converge.

Both Python peers run with ``max_conns=0``: like a y-webrtc browser at its ``maxConns`` limit,
they never initiate, they only answer offers — so no direct A↔B connection can form. The
replica, already in the room, initiates to both and relays updates and awareness."""

from __future__ import annotations

import anyio
import pytest

from collab.peer import WebrtcPeer
from tests.support.marks import needs_netns
from tests.support.peers import peers_through_replica, wait_doc, wait_text
from tests.support.servers import CollabServer

pytestmark = [pytest.mark.anyio, needs_netns]


async def test_peers_without_a_direct_link_converge_through_the_replica(
    server: CollabServer,
) -> None:
    room = "relay"
    # the replica follows the room once it opens; A and B announce after it is there, so the
    # replica (already in the room) initiates towards them, as y-webrtc's rule says
    async with peers_through_replica(server.signaling, room) as (a, b):
        with anyio.fail_after(30):
            await a.wait_for_peers(1)
            await b.wait_for_peers(1)
            await a.wait_synced()
            await b.wait_synced()
        # the one connection each has is to the replica: A and B are not linked
        assert a.peer_id not in b.connected_peers() and b.peer_id not in a.connected_peers()
        assert len(a.connected_peers()) == 1 and len(b.connected_peers()) == 1

        a.document.text().insert(0, "from A; ")
        await wait_text(b, "from A; ")
        b.document.text().insert(len("from A; "), "from B")
        await wait_text(a, "from A; from B")

        a.awareness.set_local_state({"user": {"name": "alice"}})
        b.awareness.set_local_state({"user": {"name": "bob"}})

        def sees(peer: WebrtcPeer, name: str) -> bool:
            return any(
                isinstance(s, dict) and s.get("user", {}).get("name") == name
                for s in peer.awareness.states.values()
            )

        changed = anyio.Event()
        handles = [p.awareness.observe(lambda _e: changed.set()) for p in (a, b)]
        try:
            with anyio.fail_after(30):
                while not (sees(a, "bob") and sees(b, "alice")):
                    await changed.wait()
                    changed = anyio.Event()
        finally:
            a.awareness.unobserve(handles[0])
            b.awareness.unobserve(handles[1])
        assert len(a.connected_peers()) == 1 and len(b.connected_peers()) == 1
        await wait_doc(a, lambda: str(a.document.text()) == str(b.document.text()))
