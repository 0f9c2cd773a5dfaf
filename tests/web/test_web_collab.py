"""End-to-end: two real Chromium processes co-edit through stock y-webrtc on our page."""

from __future__ import annotations

import uuid

import anyio
import httpx
import pytest
from playwright.async_api import WebSocketRoute

from tests.web.web_helpers import (
    BrowserLauncher,
    WebServer,
    api_json,
    connect_pair,
    editor_text,
    open_room,
    screenshot,
    set_name,
    shown_text,
    type_at_end,
    wait_idb_holds,
    wait_signaling,
    wait_text_contains,
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
    await connect_pair(page_a, page_b)

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


XSS_NAME = "<img src=x onerror=alert(1)>"
NOTES = (
    "# Weekly notes\n\n"
    "The archive keeps a copy of this room, so the text survives when everyone leaves.\n\n"
    "## Agenda\n\n"
    "- Review the **signaling** limits\n"
    "- Decide on the history panel\n"
    "- Try the page on a phone\n\n"
    "## Decisions\n\n"
    "> Keep it calm: one column to write in, the details on the side.\n\n"
)


async def test_names_and_cursors_show_on_the_other_side_as_text(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("cursors")
    alice, bob = await browsers.launch("alice"), await browsers.launch("bob")
    page_a, page_b = await alice.new_page(), await bob.new_page()
    await open_room(page_a, web_server, room)
    await wait_signaling(page_a)
    await open_room(page_b, web_server, room)
    await connect_pair(page_a, page_b)
    await set_name(page_b, "Bob")
    await page_b.evaluate("text => window.collabRoom.ytext.insert(0, text)", NOTES)
    await type_at_end(page_b, "Bob: ")
    await wait_text_contains(page_a, "Decisions")

    # Alice renames herself (in the room) to something that would be markup if rendered as HTML,
    # then selects a word, so Bob sees her caret, her selection and her label.
    await set_name(page_a, XSS_NAME)
    await type_at_end(page_a, "\nShip the page on Friday.")
    for _ in range(2):
        await page_a.keyboard.press("Shift+Control+ArrowLeft")

    label = page_b.locator(".cm-ySelectionInfo", has_text="onerror")
    await label.wait_for()
    assert await label.text_content() == XSS_NAME
    person = page_b.locator("#people .person-name", has_text="onerror")
    await person.wait_for()
    assert await person.text_content() == XSS_NAME
    await page_b.locator(".cm-ySelection").first.wait_for()  # Alice's selection, highlighted
    # and Bob's own name and caret on Alice's screen
    await page_a.locator(".cm-ySelectionInfo", has_text="Bob").wait_for()
    await page_a.locator("#people .person-name", has_text="Bob").wait_for()

    for page in (page_a, page_b):
        # CodeMirror's own <img class="cm-widgetBuffer"> spacers are the only images allowed
        injected = await page.evaluate(
            "() => [...document.querySelectorAll('img:not(.cm-widgetBuffer), [onerror]')]"
            ".map(e => e.outerHTML)"
        )
        assert injected == []
    assert await page_a.input_value("#me-name") == XSS_NAME
    await page_b.wait_for_function(
        """() => {
          const shown = document.querySelectorAll('#stats .conn[data-connected="true"] .rtt')
          const open = [...window.collabRoom.provider.room.webrtcConns.values()]
            .filter(c => c.connected).length
          return open >= 1 && shown.length === open && [...shown].every(e => e.textContent !== '—')
        }"""
    )
    await page_b.locator(".cm-ySelection", has_text="Friday").wait_for()
    await screenshot(page_b, "room-two-cursors")
    assert alice.dialogs == [] and bob.dialogs == []


async def test_password_room_works_and_wrong_password_sees_nothing(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("locked")
    secret = "correct horse battery staple"
    carol = await browsers.launch("carol")
    page_c = await carol.new_page()
    frames_c: list[str] = []
    page_c.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda payload: frames_c.append(payload if isinstance(payload, str) else ""),
        ),
    )
    # Carol has the wrong password and is in the room first: she receives everything the
    # others publish on the room's topic, but can decrypt none of it.
    await open_room(page_c, web_server, room, password="not the password")
    await wait_signaling(page_c)

    alice, bob = await browsers.launch("alice"), await browsers.launch("bob")
    page_a, page_b = await alice.new_page(), await bob.new_page()
    await open_room(page_a, web_server, room, password=secret)
    await wait_signaling(page_a)
    await open_room(page_b, web_server, room, password=secret)
    await connect_pair(page_a, page_b)
    await type_at_end(page_a, "the plan is secret")
    await wait_text_contains(page_b, "the plan is secret")
    await page_a.locator("#locked").wait_for()

    # Carol saw the others' (encrypted) announces and signals go by ...
    publishes = [f for f in frames_c if '"publish"' in f]
    assert len(publishes) >= 3, publishes
    assert all(secret not in f and "the plan" not in f for f in frames_c)
    # ... and nothing else: no connection, no text, nobody in her people list.
    state = await page_c.evaluate(
        """() => ({
          conns: window.collabRoom.provider.room.webrtcConns.size,
          text: window.collabRoom.ytext.toString(),
          people: window.collabRoom.awareness.getStates().size,
        })"""
    )
    assert state == {"conns": 0, "text": "", "people": 1}
    assert "the plan" not in (await page_c.locator("body").inner_text())
    for page in (page_a, page_b, page_c):
        assert secret not in page.url and "not the password" not in page.url
    # an archive that was not given the room's password cannot be in it either
    assert await page_a.locator("#archive-status").get_attribute("data-state") == "absent"
    assert await page_a.locator("#people .person").count() == 2


async def test_reload_offline_keeps_edits_and_they_sync_when_peers_are_back(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("offline")
    alice = await browsers.launch("alice")
    online = False

    async def signaling_route(ws: WebSocketRoute) -> None:
        if online:
            ws.connect_to_server()
        else:  # "offline": the signaling server is unreachable
            await ws.close(code=1011, reason="offline (test)")

    await alice.context.route_web_socket(lambda url: True, signaling_route)
    page_a = await alice.new_page()
    await open_room(page_a, web_server, room)
    await type_at_end(page_a, "written offline")
    await wait_idb_holds(page_a, "written offline")

    await page_a.reload()
    await page_a.wait_for_function("() => !!(window.collabRoom && window.collabRoom.idb.synced)")
    assert "written offline" in await shown_text(page_a)
    assert not await page_a.evaluate(
        "() => window.collabRoom.provider.signalingConns.some(c => c.connected)"
    )
    await type_at_end(page_a, ", and more after the reload")
    await wait_idb_holds(page_a, "and more after the reload")

    bob = await browsers.launch("bob")
    page_b = await bob.new_page()
    await open_room(page_b, web_server, room)
    await wait_signaling(page_b)
    await type_at_end(page_b, "Bob was here. ")
    assert "written offline" not in await editor_text(page_b)

    online = True  # lib0's websocket reconnects by itself; the route now lets it through
    await connect_pair(page_a, page_b)
    await wait_text_contains(page_b, "written offline", "and more after the reload", "Bob was here")
    await wait_text_contains(page_a, "Bob was here")
    assert await editor_text(page_a) == await editor_text(page_b)
    if web_server.has_replica:  # and the archive ends up with the offline edits of both sessions
        await page_a.wait_for_function(
            "() => document.querySelector('#archive-status').dataset.state === 'saved'"
        )
        async with httpx.AsyncClient(base_url=web_server.base_url, timeout=10) as client:
            res = await client.get(f"/api/rooms/{room}/text")
        assert "written offline, and more after the reload" in res.text


async def test_no_archive_in_room_without_a_replica(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    if web_server.has_replica:
        pytest.skip("this server runs a replica (see the replica tests)")
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, web_server, room_name("noarchive"))
    await wait_signaling(page)
    await type_at_end(page, "nobody keeps this")
    badge = page.locator("#archive-status")
    assert await badge.get_attribute("data-state") == "absent"
    assert await badge.text_content() == "No archive in room"
    # without /api/rooms/{room}/versions the history panel stays hidden
    status, _ = api_json(web_server, f"/api/rooms/{page.url.rsplit('/', 1)[-1]}/versions")
    assert status == 404
    assert await page.locator("#history-panel").is_hidden()
