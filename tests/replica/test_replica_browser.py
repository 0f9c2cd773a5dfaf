"""A stock y-webrtc browser (headless Chromium) joining last gets the archive from the replica:
Python peers edit, everyone leaves, ``collab serve`` restarts, the browser opens the room."""

from __future__ import annotations

import anyio
import pytest

from collab.peer import WebrtcPeer
from tests.support.browser import Chromium
from tests.support.marks import needs_chromium, needs_netns
from tests.support.peers import peer, wait_doc, wait_saved
from tests.support.servers import CollabServer

pytestmark = [
    pytest.mark.anyio,
    needs_netns,
    needs_chromium,
]

JS_WAIT = {"timeout": 40_000, "polling": 50}


async def test_browser_joining_last_gets_the_archive_after_restart(
    server: CollabServer, chromium: Chromium, page_url: str
) -> None:
    room = "browser-last"
    async with peer(room, server.signaling) as a, peer(room, server.signaling) as b:
        with anyio.fail_after(30):
            await a.wait_for_peers(2)
            await b.wait_for_peers(2)
        a.document.text().insert(0, "written by A. ")
        b.document.text().insert(0, "written by B 🎉. ")
        for p in (a, b):

            def both(p: WebrtcPeer = p) -> bool:
                return "A." in str(p.document.text()) and "B" in str(p.document.text())

            await wait_doc(p, both)
            await wait_saved(p)
        final = str(b.document.text())
        assert final == str(a.document.text())

    server.stop()
    server.start()
    page = await chromium.open(page_url)
    await page.evaluate(
        "a => window.collabTest.start(a)", {"room": room, "signaling": server.signaling}
    )
    await page.wait_for_function(
        "expected => window.collabTest.text() === expected", arg=final, **JS_WAIT
    )
    assert await page.evaluate("() => window.collabTest.conns().bc") == []
