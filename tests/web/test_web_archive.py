"""End-to-end with the archival replica of ``collab serve``: the "saved to archive" indicator,
late joiners served by the replica, and the room list."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from web_helpers import (
    BrowserLauncher,
    WebServer,
    api_json,
    open_room,
    screenshot,
    shown_text,
    type_at_end,
    wait_signaling,
    wait_text_contains,
)

pytestmark = pytest.mark.anyio


def room_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def wait_replica_present(page) -> None:  # type: ignore[no-untyped-def]
    await page.locator('#people .person[data-role="replica"]').wait_for()


def archived_text(server: WebServer, room: str) -> str | None:
    res = httpx.get(f"{server.base_url}/api/rooms/{quote(room, safe='')}/text", timeout=10)
    return res.text if res.status_code == 200 else None


@pytest.mark.usefixtures("needs_replica")
async def test_saved_indicator_turns_true_only_when_the_archive_holds_my_edits(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("saved")
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, web_server, room)
    await wait_signaling(page)
    await wait_replica_present(page)
    badge = page.locator("#archive-status")
    # nothing written yet: nothing to lose
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )

    await type_at_end(page, "# Archived\n\nThis line must reach the archive.")
    await page.wait_for_function(
        """() => {
          const { doc } = window.collabRoom
          const state = document.querySelector('#archive-status').dataset.state
          return state === 'saved' && doc.getText('codemirror').toString().endsWith('archive.')
        }"""
    )
    assert await badge.text_content() == "Saved to archive"
    # "saved" was shown, so the archive must hold every character typed before it.
    assert archived_text(web_server, room) == await shown_text(page)
    await screenshot(page, "archive-saved")

    # A new edit is unsaved until the replica advertises a state vector covering it. Edit and read
    # the badge in the same JS task: the replica cannot have answered yet.
    verdict = await page.evaluate(
        """() => {
          const view = window.collabRoom.view
          view.dispatch({ changes: { from: view.state.doc.length, insert: '!' } })
          return { badge: document.querySelector('#archive-status').dataset.state }
        }"""
    )
    assert verdict["badge"] == "unsaved", verdict
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    assert archived_text(web_server, room) == await shown_text(page)


@pytest.mark.usefixtures("needs_replica")
async def test_after_everyone_left_a_new_browser_gets_the_text_from_the_replica(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("latejoin")
    alice = await browsers.launch("alice")
    page_a = await alice.new_page()
    await open_room(page_a, web_server, room)
    await wait_replica_present(page_a)
    text = "Written by Alice, who then closed her browser."
    await type_at_end(page_a, text)
    await page_a.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    await alice.stop()  # every browser gone: only the replica holds the room now

    carol = await browsers.launch("carol")  # a fresh profile: nothing in IndexedDB
    page_c = await carol.new_page()
    await open_room(page_c, web_server, room)
    await wait_text_contains(page_c, text)
    assert await shown_text(page_c) == text
    # the only peer Carol reaches directly is the replica (Alice's awareness state may linger,
    # relayed, until the awareness protocol's 30 s timeout: stock y-protocols behaviour)
    await page_c.locator('#people .person[data-role="replica"][data-link="direct"]').wait_for()


async def test_room_list_and_new_room(web_server: WebServer, browsers: BrowserLauncher) -> None:
    room = room_name("listed")
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    if web_server.has_replica:  # make sure the archive has at least one room to list
        await open_room(page, web_server, room)
        await wait_replica_present(page)
        await type_at_end(page, "A room the archive lists.")
        await page.wait_for_function(
            "() => document.querySelector('#archive-status').dataset.state === 'saved'"
        )
    await page.goto(web_server.home_url())
    status, listed = api_json(web_server, "/api/rooms")
    room_list = page.locator("#room-list")
    if status != 200:
        await page.locator('#room-list[data-state="no-archive"]').wait_for()
        assert "No archive" in await room_list.inner_text()
    else:
        names = [r["name"] for r in listed]
        assert room in names
        await page.locator('#room-list[data-state="rooms"]').wait_for()
        shown = await page.locator("#room-list .room-link").all_text_contents()
        assert sorted(shown) == sorted(names)
    await screenshot(page, "room-list")

    # "new room": a name, no password -> the room page, with a share link in the hash
    fresh = room_name("fresh")
    await page.locator("#new-room-name").fill(fresh)
    await page.locator("#create-room").click()
    await page.locator("#room-title", has_text=fresh).wait_for()
    assert page.url.endswith(f"#/room/{fresh}")
    await wait_signaling(page)


@pytest.mark.usefixtures("needs_replica")
async def test_history_panel_saves_previews_and_restores_a_version(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = room_name("history")
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, web_server, room)
    await wait_replica_present(page)
    await type_at_end(page, "First draft.")
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    panel = page.locator("#history-panel")
    await panel.wait_for()  # shown once the archive has the room (the endpoint answers 200)

    await page.locator("#save-version").click()
    status, versions = api_json(web_server, f"/api/rooms/{quote(room, safe='')}/versions")
    assert status == 200 and versions, versions
    first = max(versions, key=lambda v: v["id"])
    await page.locator(f'.version[data-id="{first["id"]}"]').wait_for()

    await type_at_end(page, " Second thoughts, to be undone.")
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    await page.locator(f'.version[data-id="{first["id"]}"]').click()
    preview = page.locator(f'#history-panel .preview[data-version-id="{first["id"]}"]')
    await preview.wait_for()
    await page.wait_for_function(
        "() => document.querySelector('#history-panel .preview').textContent === 'First draft.'"
    )
    await screenshot(page, "history-panel")

    await page.locator("#history-panel button", has_text="Restore").click()
    await page.wait_for_function(
        "() => window.collabRoom.view.state.doc.toString() === 'First draft.'"
    )
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    assert archived_text(web_server, room) == "First draft."
