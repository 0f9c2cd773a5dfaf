"""The TipTap room example (``examples/tiptap_room``) in real Chromium against ``collab serve``:
stock y-webrtc + TipTap 2 (Collaboration = stock y-prosemirror) in two browser processes edit
rich text in one room; the archival replica keeps it; a browser opening the room after both
left gets the document from the replica alone; the archive, decoded in Node by stock
y-prosemirror, is what the editors showed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.richtext.tiptap_support import (
    archived_doc,
    build_page,
    editor_browser,
    editor_html,
    editor_json,
    focus_end,
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
