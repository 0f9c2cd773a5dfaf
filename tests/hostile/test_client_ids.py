"""Attack (c): client-id explosion through the data channel.

A peer sends updates that introduce 50,000 distinct Yjs client ids (random 53-bit ids, one
character each, chained like sessions that each appended a character; into a root of their
own, ``junk``), batched into messages under 256 KiB. Every client id costs ~9 bytes in the
document's state vector, so it passes 256 KiB: sync step 1 is ONE message, so from then on
every new connection to the replica fails (``too-large``): no browser can ever sync the
room from the archive again.

Victim property: a fresh stock y-webrtc browser joining the room after the attack still
receives the legitimate text (typed before the attack by a peer that then left). The
defense may refuse the updates, cap new client ids per peer or room, or cut the attacker
off; the test only needs the legit document to stay syncable. Also: sentinel, process
alive, bounded RSS.
"""

from __future__ import annotations

import random
import time
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
from tests.support.attacker import (
    Hammer,
    RawSignaling,
    new_peer_id,
    open_replica_channel,
    replica_peer_id,
)
from tests.support.browser import Chromium
from tests.support.yjs_bytes import StringItem, string_update, update_message

pytestmark = ATTACK_MARKS

CLIENTS = 50_000
"""Distinct client ids sent (their state-vector entries alone: ~450 KB)."""
PER_MESSAGE = 8_000
"""Client ids per update message (~175 KB, under the 256 KiB message limit)."""
MAX_CHANNELS = 5
"""A cut-off attacker reconnects and goes on, at most this many connections in all."""
PROCESS_DEADLINE = 60.0
"""Seconds the replica may take to process (or refuse) the attack (today: ~3 s)."""
MAX_RSS_GROWTH_MB = 60
"""50,000 one-character items are ~2 MB of document; the replica's bookkeeping per client
id must stay small. Before the defenses: +44 MB."""
SEED = 20261201


def batches(rng: random.Random) -> list[bytes]:
    ids: set[int] = set()
    while len(ids) < CLIENTS:
        ids.add(rng.getrandbits(53) or 1)
    out: list[bytes] = []
    items: list[StringItem] = []
    previous: tuple[int, int] | None = None
    for client in ids:
        items.append(StringItem(client, 0, "j", origin=previous))
        previous = (client, 0)
        if len(items) == PER_MESSAGE:
            out.append(update_message(string_update(items)))
            items = []
    if items:
        out.append(update_message(string_update(items)))
    return out


async def newcomer_step1_size(sig: RawSignaling, room: str, replica: str) -> int | None:
    """Size of the sync step 1 the replica sends a new connection (None: it sent none)."""
    with anyio.move_on_after(10):
        async with open_replica_channel(sig, room, replica) as channel:
            try:
                first = await channel.wait_message(lambda m: m.startswith(b"\x00\x00"))
            except ConnectionError:
                return None
            return len(first)
    return None


async def test_client_id_explosion_keeps_the_room_syncable(
    hostile_server: ServerFactory, chromium: Chromium, page_url: str
) -> None:
    server = hostile_server()
    assert server.proc is not None
    room = "clients-attacked"
    legit = "legit text from before the client-id explosion"
    messages = batches(random.Random(SEED))
    assert all(len(m) < 256 * 1024 for m in messages)
    figures: dict[str, object] = {}
    async with ResourceWatch(server.proc.pid) as watch, AsyncExitStack() as stack:
        try:
            sig = await stack.enter_async_context(RawSignaling(server.signaling))
            with anyio.fail_after(15):
                replica = await replica_peer_id(sig, room, new_peer_id())
            await write_and_archive(server, room, legit)

            t0 = time.monotonic()
            hammer = Hammer(stack, sig, room, replica, max_channels=MAX_CHANNELS)
            with anyio.fail_after(PROCESS_DEADLINE):
                for message in messages:
                    if not await hammer.send(message):
                        break
                await hammer.settle()
            figures["attack"] = (
                f"{hammer.sent}/{len(messages)} messages over {hammer.opened} connection(s) "
                f"in {time.monotonic() - t0:.1f} s"
            )
            figures["replica step 1 to a newcomer"] = await newcomer_step1_size(sig, room, replica)
            seconds = await check_browser_syncs(chromium, page_url, server, room, legit)
            figures["browser"] = f"{seconds:.2f} s"
            figures["sentinel"] = f"{await check_sentinel(server):.2f} s"
            assert_alive(server)
        finally:
            watch.sample()
            print(f"\n[client-ids] {CLIENTS} client ids: {figures}; {watch.line()}")
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB)
