"""The history panel's blame view and "Open a copy from here", in Chromium against
``collab serve``: the blame names the person who typed (their awareness name), also when two
browsers type in turns, and the copy is a new room that opens with the version's text, served
by the archive."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page

from tests.support.processes import wait_until
from tests.web.web_helpers import (
    BrowserLauncher,
    WebServer,
    api_json,
    connect_pair,
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


# (who types, what) in turns; each line is typed by one person, except the last: Ada starts it,
# Grace finishes it (Ada types more of it, so she is its main author)
TURNS = [
    ("Ada", "ada writes line one\n"),
    ("Grace", "grace writes line two\n"),
    ("Ada", "ada writes line three\n"),
    ("Grace", "grace writes line four\n"),
    ("Ada", "ada starts the last line"),
    ("Grace", " and grace ends it"),
]
TWO_TYPISTS_TEXT = "".join(text for _, text in TURNS)
TWO_TYPISTS_BLAME = [
    ("ada writes line one", ["Ada"]),
    ("grace writes line two", ["Grace"]),
    ("ada writes line three", ["Ada"]),
    ("grace writes line four", ["Grace"]),
    ("ada starts the last line and grace ends it", ["Ada", "Grace"]),
]
#: generous: the machine is shared (two cores, other test runs), the archive batches its writes
ARCHIVE_TIMEOUT_S = 90


def named_lines(blame: Any) -> list[tuple[str, list[str]]]:
    """Each line of an API blame with its authors' names (``?`` for a client id the authors
    table does not describe, ``''`` for one recorded without a name)."""
    names = {a["client"]: a["name"] for a in blame["authors"]}
    return [(x["text"], [names.get(c, "?") for c in x["authors"]]) for x in blame["lines"]]


async def join_as(page: Page, server: WebServer, room: str, name: str) -> None:
    """Name this browser on the home page first (kept in localStorage), then open ``room``: its
    very first awareness state already carries ``name``."""
    await page.goto(server.home_url())
    await set_name(page, name)
    await page.wait_for_function("name => localStorage.getItem('collab:name') === name", arg=name)
    await open_room(page, server, room)
    await page.wait_for_function(
        "name => window.collabRoom.awareness.getLocalState().user.name === name", arg=name
    )
    await wait_signaling(page)
    await page.locator('#people .person[data-role="replica"]').wait_for()


@pytest.mark.usefixtures("needs_replica")
async def test_blame_names_both_people_when_two_browsers_type(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = f"blame2-{uuid.uuid4().hex[:8]}"
    api = f"/api/rooms/{quote(room, safe='')}"
    ada_browser, grace_browser = await browsers.launch("ada"), await browsers.launch("grace")
    pages = {"Ada": await ada_browser.new_page(), "Grace": await grace_browser.new_page()}
    for name, page in pages.items():
        await join_as(page, web_server, room, name)
    await connect_pair(pages["Ada"], pages["Grace"])  # WebRTC between the two processes
    client_ids = {
        name: await page.evaluate("() => window.collabRoom.doc.clientID")
        for name, page in pages.items()
    }
    assert client_ids["Ada"] != client_ids["Grace"]

    typed = ""
    for name, text in TURNS:
        await type_at_end(pages[name], text)
        typed += text
        # the next typist starts from everything typed so far (no concurrent edits)
        for page in pages.values():
            await page.wait_for_function(
                "t => window.collabRoom.view.state.doc.toString() === t", arg=typed
            )
    assert typed == TWO_TYPISTS_TEXT

    # the archive holds all of it, with both names recorded (they are written in batches)
    def archived() -> bool:
        status, blame = api_json(web_server, f"{api}/blame")
        return status == 200 and named_lines(blame) == TWO_TYPISTS_BLAME

    try:
        await wait_until(archived, ARCHIVE_TIMEOUT_S, interval=0.2)
    except TimeoutError:
        raise AssertionError(f"archive's blame: {api_json(web_server, f'{api}/blame')}") from None
    status, blame = api_json(web_server, f"{api}/blame")
    assert status == 200
    authors = {a["client"]: a["name"] for a in blame["authors"]}
    assert authors == {client_ids["Ada"]: "Ada", client_ids["Grace"]: "Grace"}
    assert [x["authors"] for x in blame["lines"]][-1] == [client_ids["Ada"], client_ids["Grace"]]
    for page in pages.values():  # both pages agree the archive has their changes
        await page.wait_for_function(
            "() => document.querySelector('#archive-status').dataset.state === 'saved'"
        )

    # the same at a version, through the API and in the page's Blame view of a third browser
    version = httpx.post(
        f"{web_server.base_url}{api}/versions", params={"label": "two typists"}, timeout=30
    ).json()
    status, at_version = api_json(web_server, f"{api}/blame?at={quote(str(version['id']))}")
    assert status == 200
    assert named_lines(at_version) == TWO_TYPISTS_BLAME

    viewer = await (await browsers.launch("viewer")).new_page()
    await open_room(viewer, web_server, room)
    await viewer.wait_for_function(
        "t => window.collabRoom.ytext.toString() === t", arg=TWO_TYPISTS_TEXT
    )
    await viewer.locator(f'#history-panel li.version[data-id="{version["id"]}"]').click()
    await viewer.locator("#history-panel button", has_text="Blame").click()
    lines = viewer.locator("#history-panel .blame-line")
    await lines.nth(len(TWO_TYPISTS_BLAME) - 1).wait_for()
    assert await lines.count() == len(TWO_TYPISTS_BLAME)
    shown = [
        (
            await line.locator(".blame-text").text_content(),
            await line.locator(".blame-who").text_content(),
            await line.get_attribute("data-authors"),
        )
        for line in await lines.all()
    ]
    assert shown == [
        (text, names[0] + (f" +{len(names) - 1}" if len(names) > 1 else ""), ", ".join(names))
        for text, names in TWO_TYPISTS_BLAME
    ]
    await screenshot(viewer, "history-blame-two-typists")
    for browser in (ada_browser, grace_browser):
        assert not browser.dialogs
