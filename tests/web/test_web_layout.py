"""The page as a person sees it: phone layout, password prompt, room switching, offline shell."""

from __future__ import annotations

import uuid

import pytest

from tests.web.web_helpers import (
    BrowserLauncher,
    WebServer,
    build_page,
    http_ok,
    open_room,
    screenshot,
    shown_text,
    start_server,
    type_at_end,
    wait_idb_holds,
    wait_signaling,
)

pytestmark = pytest.mark.anyio

NO_OVERFLOW = "() => document.documentElement.scrollWidth <= window.innerWidth"


async def test_phone_layout_puts_the_sidebar_under_the_editor(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    alice = await browsers.launch("alice")
    page = await alice.new_page(width=390, height=844)
    await page.goto(web_server.home_url())
    await page.locator("#new-room").wait_for()
    assert await page.evaluate(NO_OVERFLOW)
    await screenshot(page, "phone-rooms")

    await open_room(page, web_server, f"phone-{uuid.uuid4().hex[:8]}")
    await wait_signaling(page)
    await type_at_end(page, "# On a phone\n\nThe sidebar moves below the text.")
    layout = await page.evaluate(
        """() => {
          const editor = document.querySelector('.editor-wrap').getBoundingClientRect()
          const sidebar = document.querySelector('.sidebar').getBoundingClientRect()
          return { below: sidebar.top >= editor.bottom - 1, width: editor.width }
        }"""
    )
    assert layout["below"], layout
    assert layout["width"] >= 390 * 0.9, layout
    assert await page.evaluate(NO_OVERFLOW)
    await screenshot(page, "phone-room")
    # no script errors, no CSP violations; only expected 404s (e.g. no history for a new room)
    errors = [e for e in alice.console_errors if "404" not in e]
    assert errors == []


async def test_password_prompt_for_a_locked_link(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await page.goto(web_server.room_url(f"locked-{uuid.uuid4().hex[:8]}", locked=True))
    dialog = page.locator("#password-dialog")
    await dialog.wait_for()
    assert await page.locator("#password-input").get_attribute("type") == "password"
    await screenshot(page, "password-prompt")
    await page.locator("#password-input").fill("s3cret")
    await page.locator("#password-ok").click()
    await page.locator("#locked").wait_for()
    await page.wait_for_function("() => window.collabRoom && window.collabRoom.provider.room")
    assert "s3cret" not in page.url
    assert await page.evaluate("() => window.collabRoom.provider.room.key !== null")
    assert [e for e in alice.console_errors if "404" not in e] == []


async def test_moving_between_rooms_keeps_each_rooms_text(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    first, second = f"walk-a-{uuid.uuid4().hex[:8]}", f"walk-b-{uuid.uuid4().hex[:8]}"
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, web_server, first)
    await type_at_end(page, "text of the first room")
    await page.locator("a.crumb", has_text="Rooms").click()
    await page.locator("#new-room-name").fill(second)
    await page.locator("#create-room").click()
    await page.locator("#room-title", has_text=second).wait_for()
    await page.wait_for_function(
        "name => window.collabRoom && window.collabRoom.name === name", arg=second
    )
    await type_at_end(page, "text of the second room")
    await page.go_back()  # the room list
    await page.go_back()  # the first room again: the same y-webrtc room name, reopened
    await page.wait_for_function(
        "name => window.collabRoom && window.collabRoom.name === name", arg=first
    )
    await page.wait_for_function(
        "() => window.collabRoom.view.state.doc.toString() === 'text of the first room'"
    )
    await wait_signaling(page)
    assert [e for e in alice.console_errors if "404" not in e] == []


async def test_page_opens_with_its_text_when_the_server_is_gone(
    browsers: BrowserLauncher, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The offline shell (web/sw.js) + y-indexeddb: reload with no server at all."""
    build_page()
    server = start_server("fixture", tmp_path_factory.mktemp("web-doomed-server"))
    try:
        alice = await browsers.launch("alice")
        page = await alice.new_page()
        await open_room(page, server, f"shell-{uuid.uuid4().hex[:8]}")
        await type_at_end(page, "still here without a server")
        await wait_idb_holds(page, "still here without a server")
        await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    finally:
        server.stop()  # every process of that server is gone: nothing answers on its port
    assert not http_ok(f"{server.base_url}/")

    await page.reload()
    await page.wait_for_function("() => !!(window.collabRoom && window.collabRoom.idb.synced)")
    assert await shown_text(page) == "still here without a server"
    assert await page.locator("#room-title").text_content() == page.url.rsplit("/", 1)[-1]
