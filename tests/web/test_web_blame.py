"""The history panel's blame view and "Open a copy from here", in Chromium against
``collab serve``: the blame names the person who typed (their awareness name), and the copy is
a new room that opens with the version's text, served by the archive."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.web.web_helpers import (
    BrowserLauncher,
    WebServer,
    editor_text,
    open_room,
    screenshot,
    set_name,
    type_at_end,
    wait_signaling,
)

pytestmark = pytest.mark.anyio


@pytest.mark.usefixtures("needs_replica")
async def test_blame_view_and_open_a_copy(web_server: WebServer, browsers: BrowserLauncher) -> None:
    room = f"blame-{uuid.uuid4().hex[:8]}"
    api = f"{web_server.base_url}/api/rooms/{quote(room, safe='')}"
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, web_server, room)
    await wait_signaling(page)
    await page.locator('#people .person[data-role="replica"]').wait_for()
    await set_name(page, "Alice Example")
    await type_at_end(page, "alice wrote this\nand this")
    await page.wait_for_function(
        """() => document.querySelector('#archive-status').dataset.state === 'saved'
          && window.collabRoom.ytext.toString().endsWith('and this')"""
    )
    version = httpx.post(f"{api}/versions", params={"label": "mine"}, timeout=30).json()
    # later text is not in the version
    await type_at_end(page, "\nafter the version")
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )

    # the panel lists versions once the archive has them: reopen the room to see it now
    await open_room(page, web_server, room)
    item = page.locator(f'#history-panel li.version[data-id="{version["id"]}"]')
    await item.click()
    await page.locator("#history-panel button", has_text="Blame").click()
    lines = page.locator("#history-panel .blame-line")
    await lines.nth(1).wait_for()
    assert await lines.count() == 2
    assert await lines.nth(0).locator(".blame-text").text_content() == "alice wrote this"
    assert await lines.nth(0).locator(".blame-who").text_content() == "Alice Example"
    assert await lines.nth(1).get_attribute("data-authors") == "Alice Example"
    await screenshot(page, "history-blame")

    await page.locator("#history-panel button", has_text="Open a copy from here").click()
    await page.wait_for_function(
        "room => location.hash.startsWith('#/room/' + encodeURIComponent(room + '-copy-'))",
        arg=room,
    )
    await page.wait_for_function(
        "() => window.collabRoom && window.collabRoom.ytext.toString() === "
        "'alice wrote this\\nand this'"
    )
    assert "after the version" not in await editor_text(page)
    await screenshot(page, "history-copy")
