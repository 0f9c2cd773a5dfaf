"""The page as a person sees it: phone-sized layout, the password prompt, a clean console."""

from __future__ import annotations

import uuid

import pytest
from conftest import BrowserLauncher
from web_helpers import WebServer, open_room, screenshot, type_at_end, wait_signaling

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
    editor = await page.locator(".editor-wrap").bounding_box()
    sidebar = await page.locator(".sidebar").bounding_box()
    assert editor is not None and sidebar is not None
    assert sidebar["y"] >= editor["y"] + editor["height"] - 1
    assert editor["width"] >= 390 * 0.9
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
