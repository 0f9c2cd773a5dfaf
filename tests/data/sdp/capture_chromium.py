"""Capture Chromium's real y-webrtc (simple-peer) SDPs and trickled candidates into this folder.

Run once, inside the test network namespace (Chromium gathers nothing on a loopback-only
namespace)::

    PYTHONPATH=$PWD scripts/netns-run .venv/bin/python tests/data/sdp/capture_chromium.py

What it records, for two Chromium modes (``plain`` = the project's flags, host candidates are
IP addresses; ``mdns`` = without ``--disable-features=WebRtcHideLocalIpsWithMdns``, host
candidates are ``<uuid>.local`` names), all with simple-peer 9.11.1 from node_modules exactly as
y-webrtc 10.3.0 drives it (``new Peer({initiator, config: {iceServers: []}})``):

* ``chromium-<mode>-offer.sdp``: the initiator's ``signal`` offer (trickle: no candidates);
* ``chromium-<mode>-answer.sdp``: the non-initiator's answer to that offer;
* ``chromium-<mode>-answer-to-aiortc.sdp``: a non-initiator's answer to an aiortc 1.16 offer;
* ``chromium-<mode>-offer-gathered.sdp``: ``pc.localDescription`` of the initiator once ICE
  gathering completed (what a non-trickle offer looks like: ``a=candidate`` lines inside);
* ``chromium-<mode>-candidates.json``: every trickled ``signal.candidate`` object of both peers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection

from tests.support.browser import CHROMIUM_FLAGS, StaticServer, launch_chromium

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>sdp capture</title></head>
<body><script src="simplepeer.min.js"></script><script>
window.capture = async (aiortcOffer) => {
  const out = { initiator: [], responder: [], aiortcResponder: [], gathered: null }
  const opts = { config: { iceServers: [] } }
  const a = new SimplePeer({ initiator: true, ...opts })
  const b = new SimplePeer({ initiator: false, ...opts })
  a.on('signal', (s) => { out.initiator.push(s); b.signal(s) })
  b.on('signal', (s) => { out.responder.push(s); a.signal(s) })
  // (mDNS names do not resolve in the namespace, so do not wait for 'connect')
  const gathered = (p) => new Promise((resolve) => {
    const done = () => { if (p._pc.iceGatheringState === 'complete') resolve() }
    p._pc.addEventListener('icegatheringstatechange', done); done()
  })
  while (!b._pc.remoteDescription) await new Promise((resolve) => setTimeout(resolve, 10))
  await gathered(a); await gathered(b)
  out.gathered = a._pc.localDescription.sdp
  const c = new SimplePeer({ initiator: false, ...opts })
  c.on('signal', (s) => out.aiortcResponder.push(s))
  c.signal({ type: 'offer', sdp: aiortcOffer })
  while (!c._pc.remoteDescription) await new Promise((resolve) => setTimeout(resolve, 10))
  await gathered(c)
  a.destroy(); b.destroy(); c.destroy()
  return out
}
</script></body></html>"""


async def aiortc_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("a" * 40)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def make_site(site: Path) -> Path:
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    shutil.copy(ROOT / "node_modules/simple-peer/simplepeer.min.js", site)
    return site


async def capture(mode: str, offer: str) -> None:
    flags = CHROMIUM_FLAGS  # changed in place for the mdns mode, restored after the launch
    saved = list(flags)
    if mode == "mdns":
        flags[:] = [f for f in flags if "WebRtcHideLocalIpsWithMdns" not in f]
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(Path(tmp, "site"))
        server = StaticServer(site)
        proc, playwright, browser = await launch_chromium(
            Path(tmp, "profile"), Path(tmp, "chromium.log")
        )
        flags[:] = saved
        try:
            page = await browser.contexts[0].new_page()
            await page.goto(server.url)
            out: dict[str, Any] = await page.evaluate("(o) => window.capture(o)", offer)
            version = browser.version
        finally:
            await browser.close()
            await playwright.stop()
            proc.terminate()
            proc.wait(10)
            server.stop()

    def sdp_of(signals: list[dict[str, Any]], kind: str) -> str:
        return str(next(s["sdp"] for s in signals if s.get("type") == kind))

    def candidates(signals: list[dict[str, Any]]) -> list[Any]:
        return [s["candidate"] for s in signals if s.get("type") == "candidate"]

    files = {
        "offer.sdp": sdp_of(out["initiator"], "offer"),
        "answer.sdp": sdp_of(out["responder"], "answer"),
        "answer-to-aiortc.sdp": sdp_of(out["aiortcResponder"], "answer"),
        "offer-gathered.sdp": out["gathered"],
    }
    for name, sdp in files.items():
        (HERE / f"chromium-{mode}-{name}").write_bytes(sdp.encode())
    trickled = {
        "chromium": version,
        "initiator": candidates(out["initiator"]),
        "responder": candidates(out["responder"]),
        "aiortcResponder": candidates(out["aiortcResponder"]),
    }
    (HERE / f"chromium-{mode}-candidates.json").write_text(json.dumps(trickled, indent=1) + "\n")
    print(mode, version, {k: len(v) for k, v in trickled.items() if isinstance(v, list)})


async def main() -> None:
    offer = await aiortc_offer()
    for mode in sys.argv[1:] or ["plain", "mdns"]:
        await capture(mode, offer)


if __name__ == "__main__":
    asyncio.run(main())
