"""A stock y-webrtc browser (real headless Chromium, npm yjs + y-webrtc bundled with esbuild)
and the Python peer, in one room: edits and awareness both ways, plain and password rooms,
through our signaling server and through y-webrtc's own bin/server.js."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable

import anyio
import pytest
from playwright.async_api import Page

from collab.peer import PeerConfig, WebrtcPeer
from tests.support.browser import Chromium
from tests.support.paths import CHROMIUM

pytestmark = [pytest.mark.anyio, pytest.mark.netns, pytest.mark.browser]

if os.environ.get("COLLAB_NETNS") != "1":
    pytest.skip(
        "Chromium gathers no ICE candidates outside the test namespace: run "
        "scripts/netns-run .venv/bin/pytest tests/peer",
        allow_module_level=True,
    )
if not os.path.exists(CHROMIUM) or shutil.which("node") is None:
    pytest.skip("needs /usr/bin/chromium and node", allow_module_level=True)

CFG = PeerConfig(ice_servers=[], connect_timeout=20)
TIMEOUT = 40
JS_TIMEOUT = {"timeout": 40_000, "polling": 50}


async def until(peer: WebrtcPeer, predicate: Callable[[], bool]) -> None:
    changed = anyio.Event()

    def poke(*_: object) -> None:
        changed.set()

    handles = (peer.sync.observe(poke), peer.awareness.observe(poke))
    try:
        while not predicate():
            await changed.wait()
            changed = anyio.Event()
    finally:
        peer.sync.unobserve(handles[0])
        peer.awareness.unobserve(handles[1])


async def join(page: Page, room: str, url: str, password: str | None = None) -> str:
    peer_id: str = await page.evaluate(
        "a => window.collabTest.start(a)", {"room": room, "signaling": url, "password": password}
    )
    return peer_id


async def exchange_both_ways(
    page: Page, peer: WebrtcPeer, browser_peer_id: str, *, require_synced: bool = True
) -> None:
    """Wait for y-webrtc's own connected(+synced) flags, then edits and awareness both ways."""
    check = "syncedWith" if require_synced else "connectedWith"
    await page.wait_for_function(
        f"id => window.collabTest.{check}(id)", arg=peer.peer_id, **JS_TIMEOUT
    )
    with anyio.fail_after(TIMEOUT):
        await peer.wait_for_peers(1)
    assert peer.connected_peers() == [browser_peer_id]
    conns = await page.evaluate("() => window.collabTest.conns()")
    assert conns["bc"] == [] and [c["id"] for c in conns["webrtc"]] == [peer.peer_id]

    # Python → browser
    peer.document.text().insert(0, "from python; ")
    await page.wait_for_function(
        "() => window.collabTest.text().includes('from python; ')", **JS_TIMEOUT
    )
    # browser → Python
    await page.evaluate("() => window.collabTest.insert(0, 'from chromium ✓; ')")
    with anyio.fail_after(TIMEOUT):
        await until(peer, lambda: "from chromium ✓; " in str(peer.document.text()))
    # concurrent edits converge
    before = len(str(peer.document.text()))
    await page.evaluate(
        "() => { for (let i = 0; i < 30; i++) window.collabTest.insert(0, 'b' + i) }"
    )
    added_py = 0
    for i in range(30):
        peer.document.text().insert(len(str(peer.document.text())), f"p{i}")
        added_py += len(f"p{i}")
    total = before + added_py + sum(len(f"b{i}") for i in range(30))
    with anyio.fail_after(TIMEOUT):
        await until(peer, lambda: len(str(peer.document.text())) == total)
    await page.wait_for_function(
        "n => window.collabTest.textLength() === n", arg=total, **JS_TIMEOUT
    )
    assert await page.evaluate("() => window.collabTest.text()") == str(peer.document.text())

    # awareness both ways
    peer.awareness.set_local_state({"user": {"name": "Python 🐍", "color": "#30bced"}})
    await page.wait_for_function(
        "id => (window.collabTest.awarenessStates()[id] || {}).user?.name === 'Python 🐍'",
        arg=peer.document.client_id,
        **JS_TIMEOUT,
    )
    await page.evaluate("() => window.collabTest.setAwareness({user: {name: 'Chromium'}})")
    browser_client = await page.evaluate("() => window.collabTest.clientId()")
    with anyio.fail_after(TIMEOUT):
        await until(
            peer,
            lambda: peer.awareness.states.get(browser_client) == {"user": {"name": "Chromium"}},
        )


async def test_browser_joins_after_python(
    signaling_url: str, page_url: str, chromium: Chromium
) -> None:
    """The Python peer is in the room first, so it initiates (offer → browser answers)."""
    room = f"plain-{random.getrandbits(32)}"
    async with WebrtcPeer(room, signaling_url, config=CFG) as peer:
        with anyio.fail_after(TIMEOUT):
            await peer.room.signaling.wait_connected()
        page = await chromium.open(page_url)
        browser_id = await join(page, room, signaling_url)
        await exchange_both_ways(page, peer, browser_id)
        (stats,) = await peer.stats()
        assert stats.initiator and stats.max_message_size == 262_144
    assert not [line for line in chromium.console if line.startswith("pageerror")]


async def test_python_joins_password_room_after_browser(
    signaling_url: str, page_url: str, chromium: Chromium
) -> None:
    """The browser is in the (encrypted) room first, so it initiates and trickles candidates."""
    room = f"pw-{random.getrandbits(32)}"
    page = await chromium.open(page_url)
    browser_id = await join(page, room, signaling_url, password="s3cret ✓")
    await page.wait_for_function("() => window.collabTest.conns() !== undefined", **JS_TIMEOUT)
    async with WebrtcPeer(room, signaling_url, password="s3cret ✓", config=CFG) as peer:
        await exchange_both_ways(page, peer, browser_id)
        (stats,) = await peer.stats()
        assert not stats.initiator
        assert peer.room.counters.undecryptable == 0


async def test_browser_document_grows_past_300kb_while_connected(
    ywebrtc_url: str, page_url: str, chromium: Chromium
) -> None:
    room = f"grow-{random.getrandbits(32)}"
    async with WebrtcPeer(room, ywebrtc_url, config=CFG) as peer:
        with anyio.fail_after(TIMEOUT):
            await peer.room.signaling.wait_connected()
        page = await chromium.open(page_url)
        await join(page, room, ywebrtc_url)
        await page.wait_for_function(
            "id => window.collabTest.syncedWith(id)", arg=peer.peer_id, **JS_TIMEOUT
        )
        await page.evaluate("() => window.collabTest.grow(330000, 3000)")
        size = await page.evaluate("() => window.collabTest.stateSize()")
        length = await page.evaluate("() => window.collabTest.textLength()")
        assert size > 300_000 and length == 330_000
        with anyio.fail_after(TIMEOUT):
            await until(peer, lambda: len(str(peer.document.text())) == length)
        assert str(peer.document.text()) == await page.evaluate("() => window.collabTest.text()")


async def test_python_document_over_1mb_reaches_late_browser(
    signaling_url: str, page_url: str, chromium: Chromium
) -> None:
    """A sync step 2 of > 1 MB cannot be one data-channel message (Chromium: 256 KiB): the sync room
    splits it into valid updates that stock Yjs applies."""
    room = f"big-{random.getrandbits(32)}"
    async with WebrtcPeer(room, signaling_url, config=CFG) as peer:
        text = peer.document.text()
        line = "Python wrote this line of a rather large document. ✓\n"
        block = line * 200
        while len(str(text)) < 1_050_000:
            text.insert(len(str(text)), block)
        state = len(peer.document.get_update())
        assert state > 1_000_000
        with anyio.fail_after(TIMEOUT):
            await peer.room.signaling.wait_connected()
        page = await chromium.open(page_url)
        await join(page, room, signaling_url)
        await page.wait_for_function(
            "n => window.collabTest.textLength() === n", arg=len(str(text)), **JS_TIMEOUT
        )
        assert await page.evaluate("() => window.collabTest.text()") == str(text)
        (stats,) = await peer.stats()
        assert stats.messages_out >= state // 262_144  # it really went as several messages


async def test_browser_holding_400kb_before_connecting_is_pulled_per_client(
    ywebrtc_url: str, page_url: str, chromium: Chromium
) -> None:
    """Stock y-webrtc sends its whole state as ONE sync step 2, which Chromium refuses above
    256 KiB. The Python peer asks for each Yjs client separately (collab.peer.large_sync)."""
    room = f"prefilled-{random.getrandbits(32)}"
    page = await chromium.open(page_url)
    await page.evaluate(
        "a => window.collabTest.start(a)",
        {"room": room, "signaling": ywebrtc_url, "prefill": 400_000, "prefillClients": 4},
    )
    assert await page.evaluate("() => window.collabTest.stateSize()") > 262_144
    length = await page.evaluate("() => window.collabTest.textLength()")
    async with WebrtcPeer(room, ywebrtc_url, config=CFG) as peer:
        with anyio.fail_after(TIMEOUT):
            await until(peer, lambda: len(str(peer.document.text())) == length)
        assert str(peer.document.text()) == await page.evaluate("() => window.collabTest.text()")
        (stats,) = await peer.stats()
        assert stats.extra["piecewise_requests"] == 4


async def test_glare_with_a_browser_resolves(
    ywebrtc_url: str, page_url: str, chromium: Chromium
) -> None:
    """The browser offers on our announce while we offer to it at the same moment (forced):
    the token rule leaves one working connection (stock browsers deadlock ~half the time)."""
    room = f"glare-{random.getrandbits(32)}"
    page = await chromium.open(page_url)
    browser_id = await join(page, room, ywebrtc_url)
    peer = WebrtcPeer(room, ywebrtc_url, config=CFG)
    await peer.start()
    try:
        peer.room._open_remote(browser_id, initiator=True)  # our offer, racing the browser's
        # y-webrtc quirk: a conn's `synced` flag is only set while the *room* is unsynced, and
        # a room with zero conns counts as synced — after the browser dropped its glare conn,
        # the replacement conn stays `synced: false` forever although it syncs. So wait for
        # `connected` here and let the edit exchange prove the sync.
        await exchange_both_ways(page, peer, browser_id, require_synced=False)
        assert len(peer.peers()) == 1
        conns = await page.evaluate("() => window.collabTest.conns()")
        assert len(conns["webrtc"]) == 1
    finally:
        await peer.close()
