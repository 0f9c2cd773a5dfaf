"""Debian Chromium driven by Playwright, and the stock y-webrtc page it opens.

* :func:`launch_chromium` spawns ``/usr/bin/chromium`` ourselves with the offline flags and
  attaches Playwright over CDP (Playwright's ``launch()`` adds its own ``--disable-features``,
  which clashes with ours);
* :class:`Chromium` is one such process with its own profile, ended by its process group;
* :func:`build_ywebrtc_page` bundles the stock yjs + y-webrtc test page
  (``tests/js/ywebrtc_page.mjs``) with esbuild, :class:`StaticServer` serves it on 127.0.0.1 (a
  secure context: ``crypto.subtle`` works);
* the fixtures :func:`page_url` and :func:`chromium` (import them into a conftest to use them).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.support.paths import CHROMIUM, ROOT
from tests.support.processes import stop_process_group

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
"""What Chromium needs on a loopback-only machine (see the README's Testing section)."""


async def launch_chromium(
    profile: Path, log: Path, extra_args: tuple[str, ...] = (), name: str = "chromium"
) -> tuple[subprocess.Popen[bytes], Playwright, Browser]:
    """Start Chromium in its own session with a fresh ``profile``; stderr goes to ``log``.

    Returns the process (end it by its process group), Playwright and the attached browser.
    """
    proc = await anyio.to_thread.run_sync(
        lambda: subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                *extra_args,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    )
    found = threading.Event()
    endpoint: list[str] = []
    stderr = proc.stderr
    assert stderr is not None

    def drain() -> None:  # keep reading so Chromium never blocks on a full pipe
        with stderr, log.open("wb") as out:
            for line in stderr:
                out.write(line)
                if not found.is_set() and line.startswith(b"DevTools listening on "):
                    endpoint.append(line.split(b" on ", 1)[1].strip().decode())
                    found.set()
        found.set()

    threading.Thread(target=drain, daemon=True, name=name).start()
    await anyio.to_thread.run_sync(found.wait, 30)
    if not endpoint:
        raise RuntimeError(f"chromium did not start, see {log}")
    playwright = await async_playwright().start()
    browser = await playwright.chromium.connect_over_cdp(endpoint[0])
    return proc, playwright, browser


INDEX_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>y-webrtc test</title>
</head><body><script src="page.js"></script></body></html>"""


def build_ywebrtc_page(out: Path) -> Path:
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
    """One Chromium process with its own profile (no BroadcastChannel shared with others).

    Its stderr goes to ``log`` (default: next to the profile); ``extra_args`` are added to the
    offline flags.
    """

    def __init__(
        self,
        profile: Path,
        log: Path | None = None,
        extra_args: tuple[str, ...] = (),
        name: str = "chromium",
    ) -> None:
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None
        self.console: list[str] = []
        self._log = log or profile.with_suffix(".log")
        self._extra_args = extra_args
        self._name = name

    async def start(self) -> None:
        self.proc, self.playwright, self.browser = await launch_chromium(
            self.profile, self._log, self._extra_args, self._name
        )

    async def open(self, url: str) -> Page:
        """A new page at the stock y-webrtc test page ``url`` (console messages are collected
        in :attr:`console`)."""
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
                with anyio.move_on_after(5), contextlib.suppress(Exception):
                    await self.browser.close()  # the process may already be gone
            if self.playwright is not None:
                with anyio.move_on_after(5):
                    await self.playwright.stop()
            proc, self.proc = self.proc, None
            if proc is not None:
                # helpers keep writing to the profile until the whole group is gone
                await anyio.to_thread.run_sync(stop_process_group, proc)
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stock yjs + y-webrtc test page, served from 127.0.0.1 (import into a test module
    or conftest to use it)."""
    server = StaticServer(build_ywebrtc_page(tmp_path_factory.mktemp("ywebrtc-page")))
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
