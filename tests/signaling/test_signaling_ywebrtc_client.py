"""The stock y-webrtc client (npm, in Node) subscribes, announces and exchanges signals through
our server — and, as the judge, through y-webrtc's own bin/server.js with the same test.

Each Node process runs one real ``WebrtcProvider`` with a password (encrypted signaling) and a
fake RTCPeerConnection (Node has no WebRTC); see tests/js/signaling_ywebrtc_peer.mjs.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson
import pytest
from anyio.abc import Process, TaskGroup

from collab.crypto import derive_key, open_payload
from tests.signaling.sig_helpers import WAIT, Server
from tests.support.paths import ROOT

pytestmark = pytest.mark.anyio

SCRIPT = ROOT / "tests" / "js" / "signaling_ywebrtc_peer.mjs"
PASSWORD = "correct horse battery staple"


class NodePeer:
    def __init__(self, proc: Process, label: str) -> None:
        self.proc = proc
        self.label = label
        self.events: list[dict[str, Any]] = []
        self._changed = anyio.Event()

    async def pump(self) -> None:
        assert self.proc.stdout is not None
        buf = b""
        async for chunk in self.proc.stdout:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    self.events.append(orjson.loads(line))
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with anyio.fail_after(WAIT * 2):
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                await self._changed.wait()

    def frames(self, event: str) -> list[dict[str, Any]]:
        return [orjson.loads(e["frame"]) for e in self.events if e["event"] == event]


@contextlib.asynccontextmanager
async def node_peer(tg: TaskGroup, url: str, room: str, label: str) -> AsyncIterator[NodePeer]:
    node = shutil.which("node") or "/usr/bin/node"
    proc = await anyio.open_process(
        [node, str(SCRIPT), url, room, PASSWORD, label],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    peer = NodePeer(proc, label)
    tg.start_soon(peer.pump)
    try:
        yield peer
    finally:
        proc.kill()  # by this process's PID
        with anyio.CancelScope(shield=True):
            await proc.wait()
            await proc.aclose()


async def test_ywebrtc_providers_announce_and_signal_through_server(any_server: Server) -> None:
    room = "ywebrtc-room"
    url = any_server.url
    async with anyio.create_task_group() as tg:
        async with node_peer(tg, url, room, "a") as a:
            ready_a = await a.wait_for(lambda e: e["event"] == "ready")
            await a.wait_for(lambda e: e["event"] == "sent" and '"announce"' not in e["frame"])
            async with node_peer(tg, url, room, "b") as b:
                ready_b = await b.wait_for(lambda e: e["event"] == "ready")
                # B's announce makes A (already in the room) the initiator: offer → B, answer → A.
                offer = await b.wait_for(lambda e: e["event"] == "remote-description")
                answer = await a.wait_for(lambda e: e["event"] == "remote-description")
                assert offer["type"] == "offer" and offer["sdp"].startswith("v=0 offer-from-a-")
                assert answer["type"] == "answer"
                assert answer["sdp"].startswith("v=0 answer-from-b-")
                cand_b = await b.wait_for(lambda e: e["event"] == "candidate-added")
                cand_a = await a.wait_for(lambda e: e["event"] == "candidate-added")
                assert "ufrag a-pc" in cand_b["candidate"] and "ufrag b-pc" in cand_a["candidate"]
                peers_a = await a.wait_for(lambda e: e["event"] == "peers")
                assert peers_a["added"] == [ready_b["peerId"]]

                # Every publish B sent reached A unchanged (plus the `clients` count).
                received_by_a = a.frames("recv")
                sent_by_b = [f for f in b.frames("sent") if f.get("type") == "publish"]
                assert sent_by_b
                for frame in sent_by_b:
                    assert {**frame, "clients": 2} in received_by_a
                    assert isinstance(frame["data"], str)  # encrypted, base64

                key = derive_key(PASSWORD, room)
                kinds = [open_payload(f["data"], key) for f in sent_by_b]
                assert {"type": "announce", "from": ready_b["peerId"]} in kinds
                signals = [k for k in kinds if k.get("type") == "signal"]
                assert signals and all(k["to"] == ready_a["peerId"] for k in signals)
                assert {k["signal"]["type"] for k in signals} >= {"answer", "candidate"}
                assert {"type": "subscribe", "topics": [room]} in b.frames("sent")
        tg.cancel_scope.cancel()
