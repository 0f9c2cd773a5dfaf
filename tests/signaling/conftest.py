"""Fixtures of the signaling tests (helpers live in sig_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.signaling.sig_helpers import Server, run_ours, run_reference


@pytest.fixture
async def ours() -> AsyncIterator[Server]:
    async with run_ours() as server:
        yield server


@pytest.fixture(params=["ours", "reference"])
async def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """The same test against our server and y-webrtc's reference server."""
    if request.param == "reference":
        with run_reference(tmp_path / "ywebrtc.log") as server:
            yield server
    else:
        async with run_ours() as server:
            yield server
