"""Debian Chromium for the browser tests: the offline flags, spawn, attach Playwright over CDP.

We spawn Chromium ourselves (Playwright's ``launch()`` adds its own ``--disable-features``,
which clashes with ours) and attach with ``connect_over_cdp``. Shared by tests/peer,
tests/replica and tests/web (``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import anyio
import anyio.to_thread
from playwright.async_api import Browser, Playwright, async_playwright

CHROMIUM = "/usr/bin/chromium"

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
