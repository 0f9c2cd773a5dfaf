"""Headless Chromium running the stock y-webrtc test page (tests/js/ywebrtc_page.mjs).

* :func:`build_page` bundles the page with esbuild into a directory;
* :class:`StaticServer` serves it on 127.0.0.1 (a secure context: crypto.subtle works);
* :class:`Chromium` spawns Debian's ``/usr/bin/chromium`` ourselves (so our
  ``--disable-features`` is the only one) and attaches Playwright over CDP; ended by PID.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from browser_launch import launch_chromium
from playwright.async_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
INDEX_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>y-webrtc test</title>
</head><body><script src="page.js"></script></body></html>"""


def build_page(out: Path) -> Path:
    """Bundle the stock yjs + y-webrtc test page into ``out`` (page.js + index.html)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(ROOT / "node_modules/.bin/esbuild"),
            str(ROOT / "tests/js/ywebrtc_page.mjs"),
            "--bundle",
            "--format=iife",
            f"--outfile={out / 'page.js'}",
            "--log-level=warning",
        ],
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    (out / "index.html").write_text(INDEX_HTML)
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticServer:
    """Serve a directory on 127.0.0.1 from a thread."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


class Chromium:
    """One Chromium process with its own profile (no BroadcastChannel shared with others)."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None
        self.console: list[str] = []
        self._log = profile.with_suffix(".log")

    async def start(self) -> None:
        self.proc, self.playwright, self.browser = await launch_chromium(self.profile, self._log)

    async def open(self, url: str) -> Page:
        """A new page at ``url`` (console errors are collected in :attr:`console`)."""
        assert self.browser is not None
        page = await self.browser.contexts[0].new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        await page.goto(url)
        await page.wait_for_function("() => window.collabTest !== undefined")
        return page

    async def close(self) -> None:
        """Disconnect Playwright, end Chromium by its process group, remove the profile."""
        with anyio.CancelScope(shield=True):
            if self.browser is not None:
                with anyio.move_on_after(5):
                    await self.browser.close()
            if self.playwright is not None:
                with anyio.move_on_after(5):
                    await self.playwright.stop()
            proc = self.proc
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await anyio.to_thread.run_sync(proc.wait, 10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    await anyio.to_thread.run_sync(proc.wait, 10)
            if proc is not None:
                # helpers keep writing to the profile until the whole group is gone
                with anyio.move_on_after(10):
                    while _group_alive(proc.pid):
                        await anyio.sleep(0.05)
            shutil.rmtree(self.profile, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stock yjs + y-webrtc test page, served from 127.0.0.1 (import into a test module
    or conftest to use it)."""
    server = StaticServer(build_page(tmp_path_factory.mktemp("ywebrtc-page")))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Chromium]:
    """One headless Chromium process with a fresh profile, ended by PID."""
    browser = Chromium(tmp_path / "profile")
    try:
        await browser.start()
        yield browser
    finally:
        await browser.close()
