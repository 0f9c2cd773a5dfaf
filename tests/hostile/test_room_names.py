"""Attack (g): name-keyed state. Anyone with a signaling socket can open rooms by name.

Two rounds: eight sockets each subscribe to 64 fresh topic names in one frame (512 per
round: short ASCII names, ~900-byte non-ASCII names, and a few names over the archive's
1 KiB limit), then close. The replica follows every room opened on its server, so each
name makes it load, join and (once idle) unload a room. Whatever the replica keeps keyed
by room name (locks, subscriptions, lifecycle records) must go away with the room, or
1,000 names a minute grow the process forever.

Victim properties, after the rounds: the replica's gauges return to their baseline —
``collab_replica_rooms_loaded`` (rooms in memory), ``collab_signaling_topics`` (the
replica left every topic) and ``collab_replica_rooms_tracked`` (room actors in ANY state:
the name-keyed bookkeeping; a gauge being added with the redesigned runtime, so today this
check fails as "missing"); RSS growth stays bounded; a sentinel room still archives.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import anyio
import pytest

from tests.hostile.victim import POLL, ServerFactory, assert_alive, check_sentinel, metric, rss_mb
from tests.support.attacker import RawSignaling
from tests.support.marks import needs_netns
from tests.support.servers import CollabServer

pytestmark = [pytest.mark.anyio, pytest.mark.netns, pytest.mark.slow, needs_netns]

ROUNDS = 2
SOCKETS = 8
TOPICS_PER_SOCKET = 64
"""The signaling's default per-socket topic limit."""
IDLE_UNLOAD_AFTER = "1"
"""``COLLAB_IDLE_UNLOAD_AFTER`` (seconds) so rooms unload within the test."""
SETTLE_DEADLINE = 60.0
"""Seconds for the gauges to return to baseline after a round (512 loads and unloads)."""
MAX_RSS_GROWTH_MB = 60
"""RSS growth over the idle baseline after 1,024 rooms came and went: allocator arenas and
caches stay (~+25 MB after the first round), per-name state must not add much per round.
Before the defenses: +23 MB after round 1, +27-31 MB after round 2."""

LOADED = "collab_replica_rooms_loaded"
TRACKED = "collab_replica_rooms_tracked"
TOPICS = "collab_signaling_topics"


def round_names(round_no: int, socket_no: int) -> list[str]:
    names = []
    for j in range(TOPICS_PER_SOCKET):
        tag = f"r{round_no}-s{socket_no}-{j}-"
        if j % 16 == 15:
            names.append(tag + "Ω≈ç√∫" * 150)  # ~2,000 UTF-8 bytes: over the 1 KiB limit
        elif j % 2:
            names.append(tag + "ß€🙂x" * 90)  # ~900 UTF-8 bytes
        else:
            names.append(tag)
    return names


async def gauges(server: CollabServer) -> dict[str, float | None]:
    return {name: await metric(server, name) for name in (LOADED, TRACKED, TOPICS)}


async def wait_gauges(server: CollabServer, want: dict[str, float | None]) -> float:
    """Poll ``/metrics`` until the gauges are back at ``want`` (the tracked-rooms gauge only
    if it exists)."""
    t0 = time.monotonic()
    now: dict[str, float | None] = {}
    with anyio.move_on_after(SETTLE_DEADLINE):
        while True:
            now = await gauges(server)
            if all(now[k] == want[k] for k in want if want[k] is not None):
                return time.monotonic() - t0
            await anyio.sleep(POLL * 5)
    raise AssertionError(
        f"rooms opened by name did not go away within {SETTLE_DEADLINE:.0f} s: "
        f"gauges {now}, baseline {want}"
    )


async def test_room_names_do_not_accumulate(hostile_server: ServerFactory) -> None:
    server = hostile_server(env={"COLLAB_IDLE_UNLOAD_AFTER": IDLE_UNLOAD_AFTER})
    assert server.proc is not None
    pid = server.proc.pid
    baseline = await gauges(server)
    base_rss = rss_mb(pid)
    after_round: list[str] = []
    try:
        for round_no in range(ROUNDS):
            t0 = time.monotonic()
            async with AsyncExitStack() as stack:
                for socket_no in range(SOCKETS):
                    sig = await stack.enter_async_context(
                        RawSignaling(server.signaling, tolerant=True)
                    )
                    await sig.subscribe(*round_names(round_no, socket_no))
                # every topic is registered on the server before the sockets close
                with anyio.fail_after(30):
                    target = (baseline[TOPICS] or 0) + SOCKETS * TOPICS_PER_SOCKET
                    while (await metric(server, TOPICS) or 0) < target:
                        await anyio.sleep(POLL)
            settled = await wait_gauges(server, baseline)
            after_round.append(
                f"round {round_no + 1}: {time.monotonic() - t0:.1f} s, settled "
                f"{settled:.1f} s after close, RSS +{rss_mb(pid) - base_rss:.1f} MB"
            )
        final = await gauges(server)
        sentinel_s = await check_sentinel(server)
        assert_alive(server)
    finally:
        print(f"\n[room-names] {SOCKETS * TOPICS_PER_SOCKET} names per round; {after_round}")
    growth = rss_mb(pid) - base_rss
    print(
        f"[room-names] sentinel archived in {sentinel_s:.2f} s; gauges {final} "
        f"(baseline {baseline}); RSS +{growth:.1f} MB"
    )
    assert final[TRACKED] is not None, (
        f"/metrics has no {TRACKED} gauge (room actors in any state): name-keyed state "
        "cannot be shown to shrink"
    )
    assert final[TRACKED] == baseline[TRACKED], (
        f"{TRACKED} is {final[TRACKED]} after every room went away (baseline "
        f"{baseline[TRACKED]}): the replica still tracks closed rooms by name"
    )
    assert growth < MAX_RSS_GROWTH_MB, f"RSS grew by {growth:.1f} MB after the rounds"
