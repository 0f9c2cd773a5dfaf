"""End-to-end: two real Chromium processes co-edit through stock y-webrtc on our page."""

from __future__ import annotations

import uuid

import anyio
import pytest
from conftest import BrowserLauncher
from web_helpers import (
    WebServer,
    editor_text,
    shown_text,
    open_room,
    screenshot,
    type_at_end,
    wait_direct_peers,
    wait_signaling,
)

pytestmark = pytest.mark.anyio


def room_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_two_browsers_edit_concurrently_and_converge(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("converge")
    alice, bob = await browsers.launch("alice"), await browsers.launch("bob")
    page_a, page_b = await alice.new_page(), await bob.new_page()
    await open_room(page_a, web_server, room)
    await wait_signaling(page_a)
    await open_room(page_b, web_server, room)
    await wait_direct_peers(page_a, 1)
    await wait_direct_peers(page_b, 1)

    words_a = [f"alpha{i} " for i in range(15)]
    words_b = [f"bravo{i} " for i in range(15)]

    async def typist(page, words):  # type: ignore[no-untyped-def]
        for word in words:
            await type_at_end(page, word)

    async with anyio.create_task_group() as tg:
        tg.start_soon(typist, page_a, words_a)
        tg.start_soon(typist, page_b, words_b)

    # Concurrent typing at the same spot may interleave characters; what must hold is that both
    # sides converge to one text holding every typed character exactly once.
    expected = sorted("".join(words_a + words_b))
    for page in (page_a, page_b):
        await page.wait_for_function(
            "n => window.collabRoom.view.state.doc.length === n", arg=len(expected)
        )
    await page_a.wait_for_function(
        "other => window.collabRoom.view.state.doc.toString() === other",
        arg=await shown_text(page_b),
    )
    text_a, text_b = await editor_text(page_a), await editor_text(page_b)
    assert text_a == text_b
    assert sorted(text_a) == expected
    assert await shown_text(page_a) == text_a
    await screenshot(page_a, "converge-alice")
    assert not alice.dialogs and not bob.dialogs
