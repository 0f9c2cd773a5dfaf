"""Write into a room, leave, come back as a new peer: the text comes from the replica.

Usage: edit_and_check.py SIGNALING_URL [ROOM]
"""

from __future__ import annotations

import sys
import time

import anyio

from collab import PeerConfig, WebrtcPeer


async def main(url: str, room: str) -> None:
    config = PeerConfig(ice_servers=[])
    line = f"written at {time.strftime('%H:%M:%S')}\n"
    async with WebrtcPeer(room, url, config=config) as writer:
        with anyio.fail_after(30):
            await writer.wait_for_peers(1)  # the replica
            await writer.wait_synced()
        writer.document.text().insert(0, line)
        print("wrote:", line, end="")
        await anyio.sleep(1)  # let the replica's group commit (≤ 50 ms) land
    async with WebrtcPeer(room, url, config=config) as reader:
        with anyio.fail_after(30):
            await reader.wait_for_peers(1)
            await reader.wait_synced()
        print("a new peer received:")
        print(str(reader.document.text()))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "notes")
