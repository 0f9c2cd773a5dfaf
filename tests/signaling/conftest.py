"""Fixtures of the signaling tests (helpers live in sig_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.signaling.sig_helpers import ENGINES, Server, run_ours, run_reference


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Our two engines: the FastAPI app on uvicorn, and the websockets-based fast engine."""
    return str(request.param)


@pytest.fixture
async def ours(engine: str) -> AsyncIterator[Server]:
    async with run_ours(engine=engine) as server:
        yield server


@pytest.fixture(params=["ours-asgi", "ours-fast", "reference"])
async def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """The same test against our server (both engines) and y-webrtc's reference server."""
    if request.param == "reference":
        with run_reference(tmp_path / "ywebrtc.log") as server:
            yield server
    else:
        async with run_ours(engine=request.param.removeprefix("ours-")) as server:
            yield server
