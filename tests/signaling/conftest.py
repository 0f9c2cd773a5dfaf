"""Fixtures of the signaling tests (helpers live in sig_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sig_helpers import Server, run_ours, run_reference


@pytest.fixture
async def ours() -> AsyncIterator[Server]:
    async with run_ours() as server:
        yield server


@pytest.fixture(params=["ours", "reference"])
async def any_server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    """The same test against our server and against y-webrtc's reference server."""
    if request.param == "reference":
        with run_reference() as server:
            yield server
    else:
        async with run_ours() as server:
            yield server
