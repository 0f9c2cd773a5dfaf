"""Attack (e): updates that can never be integrated, parked forever.

A peer sends 300 updates of ~200 KB each, each the *second* update of a client whose first
update never comes (a string item at clock 7 whose origin, the same client's clock 6, is
missing). Yjs and the replica keep such updates pending, waiting for the gap to be filled:
unbounded, 60 MB sent cost the replica ~120 MB of memory that is never released.

Victim properties: the replica's RSS growth stays bounded while the updates arrive and
after it handled them; the legit text (typed before the attack by a peer that then left)
still reaches a fresh peer; a sentinel room archives; the process is alive.
"""

from __future__ import annotations

import random
import time
from contextlib import AsyncExitStack

import anyio
import pytest

from tests.hostile.victim import (
    ResourceWatch,
    ServerFactory,
    assert_alive,
    check_peer_syncs,
    check_sentinel,
    rss_mb,
    write_and_archive,
)
from tests.support.attacker import Hammer, RawSignaling, new_peer_id, replica_peer_id
from tests.support.marks import needs_netns
from tests.support.yjs_bytes import StringItem, string_update, update_message

pytestmark = [pytest.mark.anyio, pytest.mark.netns, pytest.mark.slow, needs_netns]

UPDATES = 300
"""Never-integrable updates sent (one new client id each)."""
UPDATE_BYTES = 200_000
"""Characters per update (~200 KB on the wire, under the 256 KiB message limit)."""
MAX_CHANNELS = 3
"""A cut-off attacker reconnects, up to this many connections in all."""
PROCESS_DEADLINE = 90.0
"""Seconds to send and have the replica handle 60 MB (~12 s before the defenses)."""
MAX_RSS_GROWTH_MB = 60
"""Peak RSS growth. The defense parks at most ~4 MiB per connection and ~16 MiB per room;
each parked byte may exist about twice (our copy, Yrs' pending store) plus transient receive
buffers: ~40 MB at worst. Before the defenses: ~+120 MB, never released."""
SEED = 20261202


async def test_never_integrable_updates_are_bounded(hostile_server: ServerFactory) -> None:
    server = hostile_server()
    assert server.proc is not None
    room = "parked-attacked"
    legit = "legit text from before the parked updates"
    rng = random.Random(SEED)
    figures: dict[str, object] = {}
    async with ResourceWatch(server.proc.pid) as watch, AsyncExitStack() as stack:
        try:
            sig = await stack.enter_async_context(RawSignaling(server.signaling))
            with anyio.fail_after(15):
                replica = await replica_peer_id(sig, room, new_peer_id())
            await write_and_archive(server, room, legit)
            hammer = Hammer(stack, sig, room, replica, max_channels=MAX_CHANNELS)
            t0 = time.monotonic()
            with anyio.fail_after(PROCESS_DEADLINE):
                for i in range(UPDATES):
                    client = rng.getrandbits(40) + 1
                    text = f"{i:06d}" * (UPDATE_BYTES // 6)
                    item = StringItem(client, 7, text, origin=(client, 6))
                    if not await hammer.send(update_message(string_update([item]))):
                        break
                await hammer.settle()
            figures["attack"] = (
                f"{hammer.sent} updates, {hammer.sent_bytes / 1e6:.0f} MB over "
                f"{hammer.opened} connection(s) in {time.monotonic() - t0:.1f} s"
            )
            figures["RSS after handling"] = f"+{rss_mb(server.proc.pid) - watch.base_rss:.1f} MB"
            figures["fresh peer"] = f"{await check_peer_syncs(server, room, legit):.2f} s"
            figures["sentinel"] = f"{await check_sentinel(server):.2f} s"
            assert_alive(server)
        finally:
            watch.sample()
            print(f"\n[parked] {figures}; {watch.line()}")
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB)
