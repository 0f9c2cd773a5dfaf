"""Attack (h): a seeded, bounded fuzzer against one room of a real ``collab serve``.

Fixed counts, one seed (``HOSTILE_SEED`` to replay another; printed): mutated and random
y-protocols messages over real aiortc data channels (corrupted varints and lengths, huge
claimed lengths, random bytes, a few 100-250 KB blobs), with a fresh channel whenever the
replica closes one; then mutated SDP offers (line drops/dups/swaps/truncation/token
swaps/hostile lines on a real aiortc offer), random trickled candidate objects after valid
candidate-less offers, and malformed ``signal`` payloads.

Victim properties afterwards: a fresh stock y-webrtc browser receives the room's legit text
(typed before the fuzzing by a peer that then left) exactly; a sentinel room archives; the
process is alive; RSS and fds stay bounded.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import AsyncExitStack

import anyio
import pytest

from tests.hostile.fuzz_inputs import mutate_sdp, random_candidate, random_message, random_signal
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
    offer_sdp,
    payload_of,
    replica_peer_id,
    strip_candidates,
)
from tests.support.browser import Chromium

pytestmark = [*ATTACK_MARKS, pytest.mark.slow]

SEED = int(os.environ.get("HOSTILE_SEED", "20261203"))
SDP_CASES = 80
CANDIDATE_OFFERS = 30
"""Valid candidate-less offers, each followed by 1-3 random candidate objects."""
SIGNAL_CASES = 30
MESSAGE_CASES = 300
"""Data-channel messages, each sent once the previous one was handled."""
MAX_CHANNELS = 150
"""Data channels the fuzzer may open in all (the replica closes one on bad input: today
about half the messages)."""
FUZZ_DEADLINE = 60.0
"""The whole fuzzing phase (normally ~10-20 s)."""
MAX_RSS_GROWTH_MB = 80
"""Up to ~100 short-lived or pending peer connections (~0.3 MB each), a few 250 KB blobs
in flight, the browser's connection; the no-attack control costs +5-15 MB."""
MAX_FD_GROWTH = 200
"""Backstop: mutants that are still valid offers hold 2 UDP sockets each until the connect
timeout, bounded by the pending-connection caps (the flood test bounds them tightly)."""


def answers_to(sig: RawSignaling, room: str, senders: set[str]) -> set[str]:
    """Which of ``senders`` got an answer (offers the replica accepted)."""
    out = set()
    for msg in sig.messages:
        data = payload_of(msg, room) or {}
        signal = data.get("signal")
        is_answer = isinstance(signal, dict) and signal.get("type") == "answer"
        if is_answer and data.get("to") in senders:
            out.add(str(data["to"]))
    return out


async def test_fuzzed_signals_and_messages_leave_the_room_syncable(
    hostile_server: ServerFactory, chromium: Chromium, page_url: str
) -> None:
    print(f"\n[fuzz] seed {SEED} (replay: HOSTILE_SEED={SEED})")
    rng = random.Random(SEED)
    server = hostile_server()
    assert server.proc is not None
    room = "fuzz-attacked"
    legit = "legit text from before the fuzzing"
    figures: dict[str, object] = {}
    async with ResourceWatch(server.proc.pid) as watch, AsyncExitStack() as stack:
        try:
            scout = await stack.enter_async_context(RawSignaling(server.signaling))
            with anyio.fail_after(15):
                replica = await replica_peer_id(scout, room, new_peer_id())
            await write_and_archive(server, room, legit)
            base = await offer_sdp()
            # one socket per kind of input (the signaling's per-socket burst is 200 frames);
            # entered here, outside the deadline's cancel scope that they outlive
            sdp_sig, cand_sig, junk_sig = [
                await stack.enter_async_context(RawSignaling(server.signaling, tolerant=True))
                for _ in range(3)
            ]
            await sdp_sig.subscribe(room)
            t0 = time.monotonic()
            with anyio.fail_after(FUZZ_DEADLINE):
                # 1. y-protocols messages over real data channels, one per round trip
                hammer = Hammer(stack, scout, room, replica, max_channels=MAX_CHANNELS)
                survived = 0
                for _ in range(MESSAGE_CASES):
                    outcome = await hammer.probe(random_message(rng))
                    if outcome is None:
                        break
                    survived += outcome
                # 2. mutated offers, each from its own peer id
                senders = {new_peer_id() for _ in range(SDP_CASES)}
                for sender in senders:
                    offer = {"type": "offer", "sdp": mutate_sdp(rng, base)}
                    await sdp_sig.signal(room, sender, replica, offer)
                # 3. random candidates after valid candidate-less offers
                for _ in range(CANDIDATE_OFFERS):
                    sender = new_peer_id()
                    offer = {"type": "offer", "sdp": strip_candidates(base)}
                    await cand_sig.signal(room, sender, replica, offer)
                    for _ in range(rng.randint(1, 3)):
                        candidate = {"type": "candidate", "candidate": random_candidate(rng)}
                        await cand_sig.signal(room, sender, replica, candidate)
                # 4. malformed signal objects
                for _ in range(SIGNAL_CASES):
                    await junk_sig.signal(room, new_peer_id(), replica, random_signal(rng, base))
            answered = len(answers_to(sdp_sig, room, senders))
            figures["fuzzing"] = (
                f"{time.monotonic() - t0:.1f} s: {SDP_CASES} SDP mutants ({answered} answered), "
                f"{CANDIDATE_OFFERS} offers with random candidates, {SIGNAL_CASES} bad signals, "
                f"{hammer.sent} messages over {hammer.opened} channel(s) ({survived} kept the "
                "channel open)"
            )
            seconds = await check_browser_syncs(chromium, page_url, server, room, legit)
            figures["browser"] = f"{seconds:.2f} s"
            figures["sentinel"] = f"{await check_sentinel(server):.2f} s"
            assert_alive(server)
        finally:
            watch.sample()
            print(f"[fuzz] {figures}; {watch.line()}")
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB, max_fds=MAX_FD_GROWTH)
