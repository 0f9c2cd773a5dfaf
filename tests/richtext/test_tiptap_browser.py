"""The TipTap room example (``examples/tiptap_room``) in real Chromium against ``collab serve``:
stock y-webrtc + TipTap 2 (Collaboration = stock y-prosemirror) in two browser processes edit
rich text in one room; the archival replica keeps it; a browser opening the room after both
left gets the document from the replica alone; the archive, decoded in Node by stock
y-prosemirror, is what the editors showed; the archive's HTTP API (export, diff, restore, fork)
agrees with the editors.

What is normalised, and why (nothing else is):

* ProseMirror JSON is compared as ``JSON.stringify`` carries it: an attribute whose value is
  ``undefined`` (a new ordered list's ``type``) is absent, as y-prosemirror stores it;
* Markdown: TipTap has no Markdown serializer, so the editor's Markdown is prosemirror-markdown's
  default serializer on the same document in the basic schema's names
  (``tiptap_markdown.mjs``), the agreement the exporter's golden tests hold it to;
* the diff is checked by what it does: applied to version 1's Markdown it gives version 2's
  (any correct diff passes, whichever lines its matcher paired).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import anyio
import pytest

from tests.richtext.tiptap_support import (
    JS_WAIT,
    agreed_markdown,
    apply_unified_diff,
    archived_doc,
    build_page,
    editor_browser,
    editor_html,
    editor_json,
    export,
    focus_end,
    focus_end_of_block,
    focus_end_of_first_block,
    open_editor,
    tiptap_server,
    wait_archived,
    wait_json,
    wait_peers,
    wait_same,
)
from tests.support.marks import needs_chromium, needs_netns
from tests.support.servers import CollabServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.browser,
    pytest.mark.netns,
    needs_netns,
    needs_chromium,
]

EXPECTED_HTML = (
    "<h1>Meeting notes (draft)</h1>"
    "<p>Agreed: <strong>ship it</strong> on Friday.</p>"
    "<ul><li><p>first item</p></li><li><p>second item</p></li></ul>"
    "<ol><li><p>one</p></li><li><p>two, by Grace</p></li></ol>"
)
"""What the keystrokes below make: TipTap's input rules ("# ", "- ", "1. "), Ctrl+B, and a
concurrent round (Ada in the heading, Grace in the last list item at the same time)."""


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_page(tmp_path_factory.mktemp("tiptap-page"))


@pytest.fixture
def server(tmp_path: Path, page_dir: Path) -> Iterator[CollabServer]:
    srv = tiptap_server(tmp_path / "data", tmp_path / "serve.log", page_dir)
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


async def test_two_browsers_coedit_and_a_late_browser_gets_it_from_the_replica(
    server: CollabServer, tmp_path: Path
) -> None:
    room = "tiptap-notes"
    async with (
        editor_browser(tmp_path / "profile-ada", "ada") as ada_browser,
        editor_browser(tmp_path / "profile-grace", "grace") as grace_browser,
    ):
        ada = await open_editor(ada_browser, server, room, "Ada")
        grace = await open_editor(grace_browser, server, room, "Grace")
        for page in (ada, grace):
            await wait_peers(page, others=2)  # the other browser and the replica
        # what the page shows of it: both data channels, and everyone's awareness name
        for page, people in ((ada, ["Ada (you)", "Grace"]), (grace, ["Ada", "Grace (you)"])):
            await page.wait_for_function(
                """people => document.querySelector('#status-peers').textContent === '2'
                  && document.querySelector('#status-signaling').dataset.state === 'connected'
                  && JSON.stringify([...document.querySelectorAll('#people li')]
                    .map(li => li.textContent).sort()) === JSON.stringify(people)""",
                arg=sorted([*people, "archive (archive)"]),
                **JS_WAIT,
            )

        # Ada: a heading and a paragraph with bold, typed as a person would
        await ada.click("#editor .ProseMirror")
        await ada.keyboard.type("# Meeting notes")
        await ada.keyboard.press("Enter")
        await ada.keyboard.type("Agreed: ")
        await ada.keyboard.press("Control+b")
        await ada.keyboard.type("ship it")
        await ada.keyboard.press("Control+b")
        await ada.keyboard.type(" on Friday.")
        await wait_same([ada, grace])

        # Grace: a bullet list, then a numbered list, after Ada's text
        await focus_end(grace)
        await grace.keyboard.press("Enter")
        await grace.keyboard.type("- first item")
        await grace.keyboard.press("Enter")
        await grace.keyboard.type("second item")
        await grace.keyboard.press("Enter")
        await grace.keyboard.press("Enter")  # an empty item leaves the list
        await grace.keyboard.type("1. one")
        await grace.keyboard.press("Enter")
        await grace.keyboard.type("two")
        await wait_same([ada, grace])

        # both at once, in different blocks
        await focus_end_of_first_block(ada)
        await focus_end(grace)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ada.keyboard.type, " (draft)")
            tg.start_soon(grace.keyboard.type, ", by Grace")
        shown = await wait_same([ada, grace])

        html = await editor_html(ada)
        assert html == EXPECTED_HTML
        assert await editor_html(grace) == html
        for page in (ada, grace):
            await wait_archived(page)  # the server confirmed this very document
        # the archive, decoded by stock y-prosemirror with the page's schema, is the editor's
        assert archived_doc(server, room) == shown
        assert not [m for m in ada_browser.console + grace_browser.console if "error" in m]

    # both browsers are gone: only the replica holds the room
    async with editor_browser(tmp_path / "profile-late", "late") as late_browser:
        late = await open_editor(late_browser, server, room, "Late")
        await wait_json(late, shown)
        await wait_peers(late, others=1)  # the replica, and nobody else
        assert await editor_json(late) == shown
        assert await editor_html(late) == EXPECTED_HTML


async def test_export_diff_restore_and_fork_follow_the_editors(
    server: CollabServer, tmp_path: Path
) -> None:
    room, forked = "tiptap-history", "tiptap-history-fork"
    api = f"/api/rooms/{quote(room, safe='')}"
    async with (
        editor_browser(tmp_path / "profile-ada", "ada") as ada_browser,
        editor_browser(tmp_path / "profile-grace", "grace") as grace_browser,
    ):
        ada = await open_editor(ada_browser, server, room, "Ada")
        grace = await open_editor(grace_browser, server, room, "Grace")
        for page in (ada, grace):
            await wait_peers(page, others=2)

        # version 1: Ada's heading and paragraph, Grace's list
        await ada.click("#editor .ProseMirror")
        await ada.keyboard.type("# Release plan")
        await ada.keyboard.press("Enter")
        await ada.keyboard.type("Ship ")
        await ada.keyboard.press("Control+b")
        await ada.keyboard.type("on Friday")
        await ada.keyboard.press("Control+b")
        await ada.keyboard.type(".")
        await wait_same([ada, grace])
        await focus_end(grace)
        await grace.keyboard.press("Enter")
        await grace.keyboard.type("- tests green")
        await grace.keyboard.press("Enter")
        await grace.keyboard.type("docs")
        await wait_same([ada, grace])
        await focus_end(ada)
        await ada.keyboard.press("Enter")
        await ada.keyboard.press("Enter")  # out of the list
        await ada.keyboard.type("Owner: Ada")
        first = await wait_same([ada, grace])
        first_html = await editor_html(ada)
        assert first_html == (
            "<h1>Release plan</h1><p>Ship <strong>on Friday</strong>.</p>"
            "<ul><li><p>tests green</p></li><li><p>docs</p></li></ul><p>Owner: Ada</p>"
        )
        for page in (ada, grace):
            await wait_archived(page)
        v1 = server.http_post(f"{api}/versions", params={"label": "first draft"})
        assert v1.status_code == 200, v1.text
        v1_id = str(v1.json()["id"])
        # the versions name who wrote, by the awareness names the browsers set
        clients = {
            str(await page.evaluate("() => window.tiptapRoom.doc.clientID")): name
            for page, name in ((ada, "Ada"), (grace, "Grace"))
        }
        versions = server.get(f"{api}/versions").json()
        named = {
            str(c["client"]): c["name"]
            for v in versions
            if v["id"] <= int(v1_id)  # an automatic version may have come first
            for c in v["contributors"]
        }
        assert named == clients

        # the archive's export is what the editors show
        assert export(server, room, "html") == first_html == await editor_html(grace)
        assert export(server, room, "markdown") == agreed_markdown(first)
        assert json.loads(export(server, room, "json")) == first  # as editor.getJSON()

        # version 2: Ada makes the heading an H2 with the toolbar and retitles it, Grace adds
        # a list item, at the same time
        await focus_end_of_first_block(ada)
        await focus_end_of_block(grace, 2)  # in the list's last item
        async with anyio.create_task_group() as tg:
            tg.start_soon(ada.keyboard.type, " v2")
            tg.start_soon(grace.keyboard.press, "Enter")
        await grace.keyboard.type("changelog")
        await ada.click("#toolbar button[data-command=h2]")
        second = await wait_same([ada, grace])
        second_html = await editor_html(ada)
        assert second_html == (
            "<h2>Release plan v2</h2><p>Ship <strong>on Friday</strong>.</p>"
            "<ul><li><p>tests green</p></li><li><p>docs</p></li><li><p>changelog</p></li></ul>"
            "<p>Owner: Ada</p>"
        )
        for page in (ada, grace):
            await wait_archived(page)
        v2 = server.http_post(f"{api}/versions", params={"label": "second draft"})
        assert v2.status_code == 200, v2.text
        v2_id = str(v2.json()["id"])
        assert export(server, room, "html") == second_html
        assert export(server, room, "markdown") == agreed_markdown(second)
        assert export(server, room, "html", at=v1_id) == first_html  # time travel

        # the diff of the two versions turns what the editors showed at version 1 into what
        # they showed at version 2 (as Markdown)
        diff = server.get(f"{api}/diff", params={"from": v1_id, "to": v2_id, "root": "default"})
        assert diff.status_code == 200, diff.text
        before, after = agreed_markdown(first).splitlines(), agreed_markdown(second).splitlines()
        assert before != after
        assert apply_unified_diff(before, diff.text) == after

        # a restore of version 1 reaches both editors as a normal change
        restored = server.http_post(f"{api}/restore", params={"at": v1_id})
        assert restored.status_code == 200, restored.text
        for page in (ada, grace):
            await wait_json(page, first)
            assert await editor_html(page) == first_html
        assert export(server, room, "html") == first_html
        assert not [m for m in ada_browser.console + grace_browser.console if "error" in m]

    # a fork of version 2 is a new room: a fresh browser opening it shows version 2
    fork = server.http_post(f"{api}/fork", params={"at": v2_id, "to": forked})
    assert fork.status_code == 201, fork.text
    assert export(server, forked, "html") == second_html
    async with editor_browser(tmp_path / "profile-fork", "fork") as fork_browser:
        page = await open_editor(fork_browser, server, forked, "Linus")
        await wait_json(page, second)
        await wait_peers(page, others=1)  # the replica alone
        assert await editor_html(page) == second_html
    assert export(server, room, "html") == first_html  # the source room is untouched
