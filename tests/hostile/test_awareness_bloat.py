"""Attack (d): awareness bloat.

A peer sends six awareness states of ~60 KB each under six client ids (each message, and
each state, is within the limits when taken alone). A newcomer gets every known awareness
state in ONE message right after sync step 1, here ~360 KB: over the 256 KiB data-channel
limit, so the replica cannot send it and drops the newcomer: while the attacker stays, no
browser can sync the room from the archive.

Victim property: with the attacker still connected (its states alive), a fresh stock
y-webrtc browser joining the room receives the legitimate text (typed before the attack by
a peer that then left). Also: sentinel, process alive, bounded RSS.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio

from tests.hostile.victim import (
    ATTACK_MARKS,
    ResourceWatch,
    ServerFactory,
    assert_alive,
    check_browser_syncs,
    check_sentinel,
    write_and_archive,
)
from tests.support.attacker import Hammer, RawSignaling, new_peer_id, replica_peer_id
from tests.support.browser import Chromium
from tests.support.yjs_bytes import awareness_message

pytestmark = ATTACK_MARKS

STATES = 6
"""Awareness states sent, each under its own client id."""
STATE_BYTES = 60_000
"""JSON size of each state (below a 64 KiB per-state limit)."""
MAX_RSS_GROWTH_MB = 40
"""~360 KB of states (kept, relayed, re-encoded a few times) plus the checks' connections;
the no-attack control costs +5-15 MB."""


async def test_awareness_bloat_keeps_the_room_syncable(
    hostile_server: ServerFactory, chromium: Chromium, page_url: str
) -> None:
    server = hostile_server()
    assert server.proc is not None
    room = "awareness-attacked"
    legit = "legit text from before the awareness bloat"
    figures: dict[str, object] = {}
    async with ResourceWatch(server.proc.pid) as watch, AsyncExitStack() as stack:
        try:
            sig = await stack.enter_async_context(RawSignaling(server.signaling))
            with anyio.fail_after(15):
                replica = await replica_peer_id(sig, room, new_peer_id())
            await write_and_archive(server, room, legit)
            hammer = Hammer(stack, sig, room, replica)
            with anyio.fail_after(30):
                for i in range(STATES):
                    name = f"{i}" + "x" * (STATE_BYTES - 30)
                    await hammer.send(awareness_message(7_000_000 + i, 1, {"user": {"name": name}}))
                await hammer.settle()
            figures["attack"] = (
                f"{hammer.sent} states of {STATE_BYTES} B over {hammer.opened} connection(s)"
            )
            # the attacker stays connected: its states stay alive while the browser joins
            seconds = await check_browser_syncs(chromium, page_url, server, room, legit)
            figures["browser"] = f"{seconds:.2f} s"
            figures["sentinel"] = f"{await check_sentinel(server):.2f} s"
            assert_alive(server)
        finally:
            watch.sample()
            print(f"\n[awareness] {figures}; {watch.line()}")
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB)
