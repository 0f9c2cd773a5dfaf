"""Fixtures of the replica tests: a real ``collab serve`` process, Chromium and the stock page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium, page_url  # noqa: F401 - shared fixtures
from tests.support.servers import CollabServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CollabServer]:
    """A started ``collab serve`` (data in tmp_path/data), stopped by PID at the end."""
    srv = CollabServer(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()
