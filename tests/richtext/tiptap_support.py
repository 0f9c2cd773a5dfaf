"""Helpers for the TipTap room tests (``examples/tiptap_room``): its build, ``collab serve``
serving it, Chromium editors on it, and the archive read back by stock y-prosemirror in Node.

The page exposes the stock objects as ``window.tiptapRoom`` (``editor``, ``provider``, ``doc``);
everything here reads them, nothing in the page is test-only.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.support.browser import Chromium
from tests.support.paths import NODE, ROOT
from tests.support.servers import CollabServer

EXAMPLE = ROOT / "examples" / "tiptap_room"
FRAGMENT = "default"
"""TipTap Collaboration's default ``field``: the Y.XmlFragment the editor binds."""
TIMEOUT_MS = 60_000
"""Generous: two or three Chromium processes and the server share two loaded cores."""
JS_WAIT: dict[str, Any] = {"timeout": TIMEOUT_MS, "polling": 100}

CANON_JS = """const canon = v => Array.isArray(v) ? '[' + v.map(canon).join(',') + ']'
  : v !== null && typeof v === 'object'
    ? '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
    : JSON.stringify(v)"""
"""Key-order-independent JSON text, for comparing ProseMirror JSON inside the page."""


def build_page(out: Path) -> Path:
    """Bundle the example page into ``out`` with its own build script (never into the
    example's ``dist/``, which belongs to whoever runs the example)."""
    subprocess.run(
        [NODE, str(EXAMPLE / "build.mjs"), "--outdir", str(out)],
        cwd=ROOT, check=True, timeout=180, capture_output=True,
    )  # fmt: skip
    assert (out / "index.html").is_file() and (out / "app.js").is_file()
    return out


def tiptap_server(data: Path, log: Path, page: Path) -> CollabServer:
    """``collab serve`` with the example page at ``/`` (``--web-dir``, as its README says)."""
    return CollabServer(data, log, env={"COLLAB_WEB_DIR": str(page)})


def room_url(server: CollabServer, room: str, name: str) -> str:
    return f"{server.http}/?{urlencode({'name': name})}#{quote(room, safe='')}"


@asynccontextmanager
async def editor_browser(profile: Path, label: str) -> AsyncIterator[Chromium]:
    """One Chromium process (its own profile: no BroadcastChannel with the others), ended by
    its process group afterwards."""
    browser = Chromium(profile, name=f"chromium-{label}")
    try:
        await browser.start()
        yield browser
    finally:
        await browser.close()


async def open_editor(browser: Chromium, server: CollabServer, room: str, name: str) -> Page:
    """The example page in ``browser``, in ``room`` as ``name``, once TipTap is up."""
    assert browser.browser is not None
    page = await browser.browser.contexts[0].new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: browser.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: browser.console.append(f"pageerror: {e}"))
    await page.goto(room_url(server, room, name))
    await page.wait_for_function(
        "() => window.tiptapRoom !== undefined && window.tiptapRoom.editor.isInitialized !== false"
        " && document.querySelector('#editor .ProseMirror') !== null",
        **JS_WAIT,
    )
    return page


PEER_VIEW_JS = """() => {
  const p = window.tiptapRoom.provider
  const me = window.tiptapRoom.doc.clientID
  return {
    signaling: p.signalingConns.map(c => c.connected),
    bc: p.room ? p.room.bcConns.size : -1,
    webrtc: p.room ? [...p.room.webrtcConns.values()]
      .map(c => ({connected: c.connected, synced: c.synced})) : [],
    others: [...p.awareness.getStates().entries()].filter(([id]) => id !== me).map(([, s]) => ({
      name: s && s.user ? s.user.name : null,
      replica: !!(s && s.collab && s.collab.role === 'replica')
    }))
  }
}"""
"""y-webrtc's own view of the room: signaling sockets, data channels, other peers' awareness."""


async def peer_view(page: Page) -> dict[str, Any]:
    view: dict[str, Any] = await page.evaluate(PEER_VIEW_JS)
    return view


async def wait_peers(page: Page, others: int, replicas: int = 1) -> None:
    """Wait until y-webrtc has ``others`` data channels open (replicas included), ``others``
    other awareness states (they came over those channels), ``replicas`` of them archival
    replicas, and no BroadcastChannel peer.

    A connection's own ``synced`` flag is not waited on: y-webrtc 10.3.0 sets it only while the
    room as a whole is not synced yet, so a channel that opens after the first peer synced keeps
    ``synced: false`` for good (measured here: the replica first, then the other browser).
    The documents themselves are compared by the tests."""
    try:
        await page.wait_for_function(
            f"""([others, replicas]) => {{
              const view = ({PEER_VIEW_JS})()
              return view.bc === 0
                && view.webrtc.filter(c => c.connected).length === others
                && view.others.length === others
                && view.others.filter(o => o.replica).length === replicas
            }}""",
            arg=[others, replicas],
            **JS_WAIT,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"peers never settled: {await peer_view(page)}") from None


async def editor_json(page: Page) -> dict[str, Any]:
    """``JSON.stringify(editor.getJSON())``, parsed: the document as JSON carries it (an
    attribute whose value is ``undefined``, like a new ordered list's ``type``, is left out)."""
    text = await page.evaluate("() => JSON.stringify(window.tiptapRoom.editor.getJSON())")
    result: dict[str, Any] = json.loads(text)
    return result


async def editor_html(page: Page) -> str:
    return str(await page.evaluate("() => window.tiptapRoom.editor.getHTML()"))


async def wait_json(page: Page, expected: dict[str, Any]) -> None:
    """Wait until the editor shows exactly ``expected`` (ProseMirror JSON)."""
    try:
        await page.wait_for_function(
            f"expected => {{ {CANON_JS}; "
            "const shown = JSON.parse(JSON.stringify(window.tiptapRoom.editor.getJSON()));"
            "return canon(shown) === canon(expected) }",
            arg=expected,
            **JS_WAIT,
        )
    except PlaywrightTimeoutError:
        shown = await editor_json(page)
        raise AssertionError(
            f"the editor never showed\n{expected}\nit shows\n{shown}\n{await peer_view(page)}"
        ) from None


async def wait_same(pages: list[Page], timeout: float = TIMEOUT_MS / 1000) -> dict[str, Any]:
    """Wait until every editor shows the same document at once; return it. (Each editor is
    another process: polled, since no event spans them.)"""
    shown: list[dict[str, Any]] = []
    try:
        with anyio.fail_after(timeout):
            while True:
                shown = [await editor_json(page) for page in pages]
                if all(other == shown[0] for other in shown[1:]):
                    return shown[0]
                await anyio.sleep(0.1)
    except TimeoutError:
        views = [await peer_view(page) for page in pages]
        raise AssertionError(f"the editors never agreed:\n{shown}\n{views}") from None


async def wait_archived(page: Page) -> None:
    """Wait until the page's badge says the server confirmed this document as archived (the
    page posts ``Y.encodeSnapshot(Y.snapshot(doc))`` to ``/api/rooms/{room}/saved``)."""
    await page.wait_for_function(
        "() => document.querySelector('#status-archive').dataset.state === 'saved'", **JS_WAIT
    )


async def focus_at(page: Page, position: str) -> None:
    """Put the caret at ``position`` (a JS expression of ``e``, the editor) and wait until the
    editor has the keyboard focus: TipTap's ``focus`` command sets the selection at once but
    focuses the DOM in the next animation frame, and keys pressed before that are lost."""
    await page.evaluate(
        f"() => {{ const e = window.tiptapRoom.editor; e.commands.focus({position}) }}"
    )
    await page.wait_for_function("() => window.tiptapRoom.editor.view.hasFocus()", **JS_WAIT)


async def focus_end(page: Page) -> None:
    await focus_at(page, "'end'")


async def focus_end_of_first_block(page: Page) -> None:
    await focus_at(page, "e.state.doc.firstChild.nodeSize - 1")


async def focus_end_of_block(page: Page, index: int) -> None:
    """The caret at the end of the innermost textblock of top-level block ``index`` (a list's
    last item)."""
    await focus_at(
        page,
        f"""(() => {{
          let end = 0
          for (let i = 0; i <= {index}; i++) end += e.state.doc.child(i).nodeSize
          let node = e.state.doc.child({index})
          let pos = end - 1
          while (!node.isTextblock) {{ node = node.lastChild; pos -= 1 }}
          return pos
        }})()""",
    )


def archived_doc(server: CollabServer, room: str, at: str | None = None) -> dict[str, Any]:
    """The room's archived document (``GET /api/rooms/{room}/update``) decoded in Node by
    stock y-prosemirror (``yXmlFragmentToProseMirrorRootNode``) with the page's schema: the
    example's own ``archived_doc.mjs``."""
    args = [NODE, str(EXAMPLE / "archived_doc.mjs"), server.http, room]
    if at is not None:
        args += ["--at", at]
    run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def agreed_markdown(document: dict[str, Any]) -> str:
    """The Markdown of a TipTap document (ProseMirror JSON) as agreed with the exporter:
    prosemirror-markdown's default serializer on the basic schema's names
    (``tiptap_markdown.mjs``)."""
    run = subprocess.run(
        [NODE, str(Path(__file__).with_name("tiptap_markdown.mjs"))],
        input=json.dumps(document), cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def export(server: CollabServer, room: str, fmt: str, at: str | None = None) -> str:
    """``GET /api/rooms/{room}/export?format=…&root=default`` (200 expected)."""
    params = {"format": fmt, "root": FRAGMENT, **({"at": at} if at is not None else {})}
    response = server.get(f"/api/rooms/{quote(room, safe='')}/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["x-collab-kind"] == "xml", response.headers
    return response.text


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_unified_diff(old: list[str], diff: str) -> list[str]:
    """``old`` (lines) with a unified diff applied, checking every context and removed line:
    any correct diff of ``old`` into ``new`` gives back ``new``, whichever matching it chose.

    Example:
        >>> apply_unified_diff(["a", "b", "c"], "--- x\\n+++ y\\n@@ -2 +2 @@\\n-b\\n+B\\n")
        ['a', 'B', 'c']
    """
    out: list[str] = []
    at = 0  # next line of old to copy
    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            start, count = int(hunk.group(1)), int(hunk.group(2) or "1")
            begin = start if count == 0 else start - 1  # an empty range names the line before
            assert begin >= at, f"hunks out of order at {line!r}"
            out += old[at:begin]
            at = begin
        elif line.startswith(("---", "+++", "\\")):
            continue
        elif line[:1] in (" ", "-"):
            assert at < len(old) and old[at] == line[1:], f"{line!r} is not line {at + 1}"
            if line[0] == " ":
                out.append(old[at])
            at += 1
        elif line[:1] == "+":
            out.append(line[1:])
        else:
            raise AssertionError(f"not a unified diff line: {line!r}")
    return out + old[at:]
