"""Two Python peers co-edit one document over real WebRTC data channels.

Both peers join ROOM on a y-webrtc signaling server (ours: ``collab signaling`` /
``collab serve``, or y-webrtc's own ``bin/server.js``), connect peer-to-peer with aiortc,
type concurrently, show each other in awareness, and print the converged text and stats.
A stock y-webrtc browser page in the same room joins the same document.

    python examples/two_peers/two_peers.py --signaling ws://127.0.0.1:8000/signaling --room demo
"""

from __future__ import annotations

import argparse
import logging

import anyio

from collab.peer import IceServer, PeerConfig, WebrtcPeer


async def type_lines(peer: WebrtcPeer, name: str, lines: int) -> None:
    text = peer.document.text()
    for i in range(lines):
        text.insert(len(str(text)), f"{name}: line {i}\n")
        await anyio.sleep(0.05)  # a human-ish typing pace


async def until_equal(a: WebrtcPeer, b: WebrtcPeer) -> None:
    changed = anyio.Event()

    def poke(update: bytes, origin: object) -> None:
        changed.set()

    for peer in (a, b):
        peer.document.observe(poke)
    while str(a.document.text()) != str(b.document.text()):
        await changed.wait()
        changed = anyio.Event()


async def main(signaling: str, room: str, password: str | None, stun: str | None) -> None:
    config = PeerConfig(ice_servers=[IceServer(stun)] if stun else [])
    async with (
        WebrtcPeer(room, signaling, password=password, config=config) as alice,
        WebrtcPeer(room, signaling, password=password, config=config) as bob,
    ):
        alice.awareness.set_local_state({"user": {"name": "alice", "color": "#ecd444"}})
        bob.awareness.set_local_state({"user": {"name": "bob", "color": "#30bced"}})
        with anyio.fail_after(30):
            await alice.wait_for_peers(1)
            await bob.wait_for_peers(1)
        print(f"connected: alice={alice.peer_id[:8]} bob={bob.peer_id[:8]} in room {room!r}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(type_lines, alice, "alice", 5)
            tg.start_soon(type_lines, bob, "bob", 5)
        with anyio.fail_after(30):
            await until_equal(alice, bob)

        print("--- converged text ---")
        print(str(alice.document.text()), end="")
        print("--- bob sees in awareness ---")
        for client, state in bob.awareness.states.items():
            print(f"  {client}: {state}")
        for stats in await alice.stats():
            rtt = f"{stats.rtt * 1000:.2f} ms" if stats.rtt else "n/a"
            print(
                f"alice ↔ {stats.remote_id[:8]}: {stats.state}, rtt {rtt}, "
                f"{stats.messages_out} msgs / {stats.bytes_out} B out, "
                f"{stats.messages_in} msgs / {stats.bytes_in} B in"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Two Python peers co-editing over WebRTC.")
    parser.add_argument("--signaling", default="ws://127.0.0.1:8000/signaling")
    parser.add_argument("--room", default="two-peers-demo")
    parser.add_argument("--password", default=None, help="encrypt signaling like y-webrtc")
    parser.add_argument("--stun", default=None, help="e.g. stun:stun.example.org:3478")
    parser.add_argument("-v", "--verbose", action="store_true")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO if opts.verbose else logging.WARNING)
    anyio.run(main, opts.signaling, opts.room, opts.password, opts.stun)
