"""A bot peer: appends a timestamped line to a room's shared text every --every seconds.

Usage: clock_bot.py SIGNALING_URL ROOM [--every 60] [--name clock-bot] [--password PW] [--count N]
"""

from __future__ import annotations

import argparse
import time

import anyio

from collab import PeerConfig, WebrtcPeer


async def main(args: argparse.Namespace) -> None:
    async with WebrtcPeer(
        args.room, args.signaling, password=args.password, config=PeerConfig(ice_servers=[])
    ) as bot:
        bot.awareness.set_local_state({"user": {"name": args.name, "color": "#0f766e"}})
        print(f"{args.name}: joined {args.room!r}; waiting for the room's text")
        with anyio.move_on_after(10):  # an empty room has nobody to sync with
            await bot.wait_for_peers(1)
            await bot.wait_synced()
        written = 0
        while args.count is None or written < args.count:
            text = bot.document.text()
            line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} — {args.name} was here\n"
            text.insert(len(str(text).encode()), line)  # pycrdt offsets are UTF-8 bytes
            written += 1
            print(line, end="", flush=True)
            if args.count is None or written < args.count:
                await anyio.sleep(args.every)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("signaling")
    parser.add_argument("room")
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--name", default="clock-bot")
    parser.add_argument("--password", default=None)
    parser.add_argument("--count", type=int, default=None)
    anyio.run(main, parser.parse_args())
