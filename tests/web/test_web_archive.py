"""End-to-end with the archival replica of ``collab serve``: the "saved to archive" indicator,
late joiners served by the replica, and the room list."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote

import anyio
import httpx
import pytest

from collab.peer import PeerConfig, WebrtcPeer
from tests.web.web_helpers import (
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


@pytest.mark.usefixtures("needs_replica")
async def test_a_delete_only_change_is_unsaved_until_the_archive_stores_it(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    """Deleting text does not move the state vector; the badge must still go amber, and turn
    green only once the archive holds the deletion."""
    room = room_name("delete")
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, web_server, room)
    await wait_replica_present(page)
    await type_at_end(page, "keep this, drop THIS")
    await page.wait_for_function(
        """() => document.querySelector('#archive-status').dataset.state === 'saved' &&
                 window.collabRoom.doc.getText('codemirror').toString().endsWith('THIS')"""
    )
    verdict = await page.evaluate(
        """() => {
          const { view, doc, Y } = window.collabRoom
          const before = Y.encodeStateVector(doc).join(',')
          const end = view.state.doc.length
          view.dispatch({ changes: { from: end - 10, to: end } })
          return { badge: document.querySelector('#archive-status').dataset.state,
                   svMoved: Y.encodeStateVector(doc).join(',') !== before }
        }"""
    )
    assert verdict == {"badge": "unsaved", "svMoved": False}, verdict
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    assert await shown_text(page) == "keep this,"
    assert archived_text(web_server, room) == "keep this,"


async def test_a_peer_claiming_to_be_the_archive_cannot_turn_the_badge_green(
    web_server: WebServer, browsers: BrowserLauncher
) -> None:
    """A Python peer sets ``collab.role = "replica"`` in awareness with a state vector that
    covers the page's document, in a room the real archive cannot join (its password is not
    configured). The page asks the server, which says no: the badge never turns green."""
    if not web_server.has_replica:
        pytest.skip("the stand-in server has no /api/rooms/{room}/saved")
    room = room_name("forged")
    secret = "only-the-two-of-us"
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    answers: list[bool] = []
    progress = anyio.Event()

    def poke() -> None:
        nonlocal progress
        progress.set()
        progress = anyio.Event()

    async def on_response(response) -> None:  # type: ignore[no-untyped-def]
        asked = response.request.post_data_buffer or b""
        if response.url.endswith("/saved") and len(asked) > 2:  # b"\0\0": the empty document
            answers.append(bool((await response.json()).get("saved")))
            poke()

    async def until(predicate) -> None:  # type: ignore[no-untyped-def]
        with anyio.fail_after(30):
            while not predicate():
                await progress.wait()

    page.on("response", on_response)
    await open_room(page, web_server, room, password=secret)
    signaling = web_server.base_url.replace("http", "ws", 1) + "/signaling"
    async with WebrtcPeer(
        room, signaling, password=secret, config=PeerConfig(ice_servers=[])
    ) as liar:

        def claim() -> None:
            sv = base64.b64encode(liar.document.state_vector()).decode()
            liar.awareness.set_local_state(
                {"user": {"name": "archive"}, "collab": {"role": "replica", "sv": sv}}
            )

        claim()
        liar.document.observe(lambda _update, _origin: poke())  # never touch the doc in here
        await page.locator('#people .person[data-role="replica"]').wait_for()
        await type_at_end(page, "nobody archived this")
        await until(lambda: "nobody archived this" in str(liar.document.text()))
        claim()  # now advertising a state vector that covers everything the page wrote
        # the page asks the server (a couple of times, backing off) and believes only its
        # answer (an empty document is vacuously saved: those answers are not recorded)
        seen = len(answers)
        await until(lambda: len(answers) >= seen + 2)
        assert not any(answers), answers
        assert await page.locator("#archive-status").get_attribute("data-state") == "unsaved"
