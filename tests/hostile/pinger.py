"""The stall probe: a separate process with one signaling WebSocket that sends
``{"type":"ping"}`` every ``interval`` seconds and records each pong's latency.

It runs in its own process so the attacker's CPU work (aiortc SCTP in the test process)
cannot delay the probe itself: what it measures is how long the server's event loop (shared
by every room and the signaling service) took to answer.

Usage: ``python pinger.py WS_URL INTERVAL_S``. Prints ``ready`` once connected, pings on a
fixed cadence (not waiting for pongs) until a line arrives on stdin, then prints one JSON
line: ``sent`` (seconds since the first ping) and ``latency`` (seconds) per ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time

from websockets.asyncio.client import connect

DRAIN_TIMEOUT = 5.0
"""Seconds to wait for the last pongs after stopping; a ping never answered counts as a
stall lasting from its send until then."""


async def main(url: str, interval: float) -> None:
    sent: list[float] = []
    latencies: list[float] = []
    stop = asyncio.Event()
    caught_up = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with connect(url, compression=None, ping_interval=None) as ws:
        stdin = sys.stdin.fileno()

        def on_stdin() -> None:  # level-triggered: stop watching once it fired
            loop.remove_reader(stdin)
            stop.set()

        loop.add_reader(stdin, on_stdin)

        async def receive() -> None:
            async for frame in ws:
                if isinstance(frame, str) and '"pong"' in frame and len(latencies) < len(sent):
                    latencies.append(time.perf_counter() - sent[len(latencies)])
                    if stop.is_set() and len(latencies) == len(sent):
                        caught_up.set()

        reader = asyncio.create_task(receive())
        print("ready", flush=True)
        started = next_at = time.perf_counter()
        while not stop.is_set():
            sent.append(time.perf_counter())
            await ws.send('{"type":"ping"}')
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.perf_counter()))
        if len(latencies) == len(sent):
            caught_up.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(caught_up.wait(), DRAIN_TIMEOUT)
        reader.cancel()
        lost = len(sent) - len(latencies)
        now = time.perf_counter()
        latencies += [now - t for t in sent[len(latencies) :]]
    result = {
        "lost": lost,
        "seconds": round(now - started, 3),
        "sent": [round(t - started, 4) for t in sent],
        "latency": [round(x, 4) for x in latencies],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
