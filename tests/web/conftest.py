"""Fixtures for the page's end-to-end tests: a server (``collab serve`` or a stand-in) and real
headless Chromium processes (Debian's ``/usr/bin/chromium``, driven by Playwright over CDP).

Everything here runs inside the private network namespace of ``scripts/netns-run``:
    scripts/netns-run .venv/bin/pytest tests/web -x -q
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.paths import CHROMIUM
from tests.web.web_helpers import (
    ARTIFACTS,
    BrowserLauncher,
    WebServer,
    build_page,
    server_mode,
    start_server,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the web tests; skip them (with the reason) where they cannot run."""
    reason = None
    if os.environ.get("COLLAB_NETNS") != "1":
        reason = "browser tests run inside the test network namespace: scripts/netns-run"
    elif not os.path.exists(CHROMIUM):
        reason = "needs Debian chromium (scripts/bootstrap --test)"
    elif shutil.which("node") is None:
        reason = "needs node to build the page"
    for item in items:
        if "tests/web/" not in item.nodeid.replace("\\", "/"):
            continue
        if not {"browsers", "web_server"} & set(getattr(item, "fixturenames", ())):
            continue  # no browser, no server: runs anywhere
        item.add_marker(pytest.mark.browser)
        item.add_marker(pytest.mark.netns)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The server under test, for the whole session (tests use unique room names).

    ``collab serve`` when it exists, else the stand-in; ``COLLAB_WEB_SERVER=collab|fixture``
    forces one (see ``web_helpers.server_mode``).
    """
    build_page()
    ARTIFACTS.mkdir(exist_ok=True)
    server = start_server(server_mode(), tmp_path_factory.mktemp("web-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def needs_replica(web_server: WebServer) -> None:
    """Skip unless the server runs the archival replica (``collab serve``)."""
    if not web_server.has_replica:
        pytest.skip("needs the archival replica: runs against `collab serve`")


@pytest.fixture
async def browsers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserLauncher]:
    """Start separate Chromium processes on demand; all are ended by PID afterwards."""
    launcher = BrowserLauncher(tmp_path_factory)
    try:
        yield launcher
    finally:
        await launcher.close_all()
