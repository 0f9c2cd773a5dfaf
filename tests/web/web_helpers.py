"""Helpers for the page's end-to-end tests: servers, Chromium processes, room-page actions.

The server is ``collab serve`` (signaling + replica + API + the page on one port) or, until that
exists, a stand-in (``fixture_server.py`` + y-webrtc's own ``bin/server.js``). Switching is
one line: ``server_mode()`` (or ``COLLAB_WEB_SERVER=collab|fixture``).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.support.browser import Chromium
from tests.support.paths import ROOT, VENV_BIN
from tests.support.ports import bound_socket
from tests.support.processes import Process, poll_until
from tests.support.servers import CollabServer, YWebrtcServer

ARTIFACTS = ROOT / "test-artifacts"
#: generous: the machine is shared by several engineers running tests
TIMEOUT_MS = 30_000


def server_mode() -> str:
    """``collab`` (the real server) when ``collab serve`` exists, else ``fixture``."""
    forced = os.environ.get("COLLAB_WEB_SERVER")
    if forced in ("collab", "fixture"):
        return forced
    cli = VENV_BIN / "collab"
    if cli.exists():
        probe = subprocess.run(
            [str(cli), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return "collab"
    return "fixture"


def build_page() -> None:
    """(Re)build ``web/dist`` if a source changed."""
    subprocess.run(["node", "web/build.mjs", "--if-stale"], cwd=ROOT, check=True, timeout=120)


def http_ok(url: str) -> bool:
    """True when ``url`` answers 200 (False on any HTTP/connection error)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class WebServer:
    """A running server: where the page is, and which query the page needs."""

    mode: str
    base_url: str
    page_query: dict[str, str]
    has_replica: bool
    processes: list[Process] = field(default_factory=list)

    def room_url(
        self, room: str, *, locked: bool = False, query: dict[str, str] | None = None
    ) -> str:
        """The share link of ``room`` (``locked`` adds the "ask for a password" hint)."""
        params = {**self.page_query, **(query or {})}
        search = f"?{urlencode(params)}" if params else ""
        return (
            f"{self.base_url}/{search}#/room/{quote(room, safe='')}{'?locked=1' if locked else ''}"
        )

    def home_url(self) -> str:
        search = f"?{urlencode(self.page_query)}" if self.page_query else ""
        return f"{self.base_url}/{search}#/"

    @property
    def logs(self) -> list[Path]:
        return [p.log_path for p in self.processes if p.log_path is not None]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


def start_server(mode: str, tmp: Path, env: dict[str, str] | None = None) -> WebServer:
    """Start ``collab serve`` (mode ``collab``) or the stand-in (mode ``fixture``).

    ``env`` adds environment variables for ``collab serve`` (e.g. ``COLLAB_AUTH_REQUIRED``).
    """
    if mode == "collab":
        serve = CollabServer(tmp / "data", tmp / "collab-serve.log", env=env)
        serve.start()  # returns once it serves (its banner)
        return WebServer(mode, serve.http, {}, has_replica=True, processes=[serve])
    signaling = YWebrtcServer(tmp / "signaling.log")
    signaling.start()
    sock = bound_socket()  # the stand-in serves on this socket: bound here, inherited
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    web = Process(
        [str(VENV_BIN / "python"), "tests/web/fixture_server.py",
         "--fd", str(sock.fileno()), "--dist", "web/dist"],
        tmp / "fixture.log",
        pass_fds=(sock.fileno(),),
    )  # fmt: skip
    server = WebServer(
        mode, base, {"signaling": signaling.url}, has_replica=False, processes=[signaling, web]
    )
    try:
        web.start()
        # connections queue on the inherited socket until the stand-in serves them
        poll_until(lambda: http_ok(f"{base}/"), 60, f"the stand-in server at {base}")
    except BaseException:
        server.stop()
        raise
    finally:
        sock.close()  # the child holds its own copy
    return server


class BrowserProcess(Chromium):
    """A :class:`~tests.support.browser.Chromium` for the page: a window size, dialogs
    dismissed and recorded, console errors collected."""

    def __init__(self, label: str, profile: Path) -> None:
        super().__init__(
            profile,
            profile.parent / f"{profile.name}.log",
            ("--window-size=1280,800",),
            name=f"chromium-{label}",
        )
        self.label = label
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []

    @property
    def context(self) -> BrowserContext:
        assert self.browser is not None, "start() first"
        return self.browser.contexts[0]

    async def new_page(self, width: int = 1280, height: int = 800) -> Page:
        page = await self.context.new_page()
        await page.set_viewport_size({"width": width, "height": height})
        page.set_default_timeout(TIMEOUT_MS)

        async def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda err: self.console_errors.append(f"pageerror: {err}"))
        return page

    async def stop(self) -> None:
        await self.close()


class BrowserLauncher:
    """Starts Chromium processes, each with its own profile (no shared BroadcastChannel)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: list[BrowserProcess] = []

    async def launch(self, label: str) -> BrowserProcess:
        """A new browser process named ``label`` (used in artifact file names)."""
        proc = BrowserProcess(label, self._tmp.mktemp(f"chromium-{label}"))
        self._started.append(proc)
        await proc.start()
        return proc

    async def close_all(self) -> None:
        for proc in reversed(self._started):
            await proc.stop()
        self._started.clear()


# ---- room page actions --------------------------------------------------------------------


async def open_room(
    page: Page,
    server: WebServer,
    room: str,
    *,
    password: str | None = None,
    query: dict[str, str] | None = None,
) -> None:
    """Open ``room`` (through the password dialog when ``password`` is given)."""
    await page.goto(server.room_url(room, locked=password is not None, query=query))
    if password is not None:
        await page.locator("#password-input").fill(password)
        await page.locator("#password-ok").click()
    await page.wait_for_function("() => !!(window.collabRoom && window.collabRoom.provider.room)")


async def wait_signaling(page: Page) -> None:
    await page.wait_for_function(
        "() => window.collabRoom.provider.signalingConns.some(c => c.connected)"
    )


_ROOM_STATE = """() => {
  const room = window.collabRoom && window.collabRoom.provider.room
  if (!room) return 'no room'
  return JSON.stringify({
    peerId: room.peerId,
    signaling: window.collabRoom.provider.signalingConns.map(c => c.connected),
    bc: [...room.bcConns],
    conns: [...room.webrtcConns.entries()].map(([id, c]) => ({
      id, connected: c.connected, synced: c.synced, closed: c.closed,
      initiator: c.peer && c.peer.initiator,
      pc: c.peer && c.peer._pc && [c.peer._pc.connectionState, c.peer._pc.iceConnectionState,
                                   c.peer._pc.signalingState],
    })),
  })
}"""


async def room_state(page: Page) -> str:
    """A one-line diagnostic of the page's y-webrtc room (for failure messages)."""
    try:
        state: str = await page.evaluate(_ROOM_STATE)
    except PlaywrightError as err:
        return f"unavailable: {err}"
    return state


async def wait_direct_peer(page: Page, other: Page) -> None:
    """Wait until ``page`` has an open WebRTC connection to ``other`` (no BroadcastChannel peer).

    Matched by y-webrtc's signaling peer id: with a replica in the room, "some connection" could
    be the replica's.
    """
    other_id: str = await other.evaluate("() => window.collabRoom.provider.room.peerId")
    try:
        await page.wait_for_function(
            """id => {
              const room = window.collabRoom.provider.room
              const conn = room && room.webrtcConns.get(id)
              return !!conn && conn.connected && room.bcConns.size === 0
            }""",
            arg=other_id,
        )
    except PlaywrightTimeoutError as err:
        raise AssertionError(f"no connection to {other_id}: {await room_state(page)}") from err


async def connect_pair(page_a: Page, page_b: Page) -> None:
    """Wait until two pages are connected to each other directly, both ways."""
    await wait_direct_peer(page_a, page_b)
    await wait_direct_peer(page_b, page_a)


async def wait_idb_holds(page: Page, text: str) -> None:
    """Wait until this page's IndexedDB (y-indexeddb's `updates` store) holds `text`.

    Reads the stored updates into a fresh Y.Doc. A read transaction opened now is ordered after
    y-indexeddb's pending writes on the store.
    """
    await page.wait_for_function(
        """async text => {
          const name = window.collabRoom.idb.name
          const db = await new Promise((ok, fail) => {
            const req = indexedDB.open(name)
            req.onsuccess = () => ok(req.result)
            req.onerror = () => fail(req.error)
          })
          try {
            const updates = await new Promise((ok, fail) => {
              const req = db.transaction(['updates'], 'readonly').objectStore('updates').getAll()
              req.onsuccess = () => ok(req.result)
              req.onerror = () => fail(req.error)
            })
            const { Y } = window.collabRoom
            const copy = new Y.Doc()
            for (const update of updates) Y.applyUpdate(copy, update)
            return copy.getText('codemirror').toString().includes(text)
          } finally {
            db.close()
          }
        }""",
        arg=text,
    )


async def editor_text(page: Page) -> str:
    """The shared text as Yjs holds it."""
    text: str = await page.evaluate("() => window.collabRoom.ytext.toString()")
    return text


async def shown_text(page: Page) -> str:
    """The text as CodeMirror shows it."""
    text: str = await page.evaluate("() => window.collabRoom.view.state.doc.toString()")
    return text


async def wait_text_contains(page: Page, *parts: str) -> None:
    await page.wait_for_function(
        "parts => { const t = window.collabRoom.view.state.doc.toString(); "
        "return parts.every(p => t.includes(p)) }",
        arg=list(parts),
    )


async def type_at_end(page: Page, text: str, delay_ms: float = 0) -> None:
    await page.locator(".cm-content").click()
    await page.keyboard.press("Control+End")
    await page.keyboard.type(text, delay=delay_ms)


async def set_name(page: Page, name: str) -> None:
    field = page.locator("#me-name")
    await field.fill(name)
    await field.press("Enter")


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


def api_json(server: WebServer, path: str) -> tuple[int, Any]:
    """GET ``path`` on the server; (status, JSON or None)."""
    res = httpx.get(f"{server.base_url}{path}", timeout=10)
    try:
        return res.status_code, res.json()
    except json.JSONDecodeError:
        return res.status_code, None
