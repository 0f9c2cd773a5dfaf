"""Fixtures of the peer tests: signaling servers, ICE on loopback outside the namespace."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.browser import chromium, page_url  # noqa: F401 - shared fixtures
from tests.support.servers import collab_signaling, ywebrtc_server

IN_NETNS = os.environ.get("COLLAB_NETNS") == "1"


@pytest.fixture(autouse=True)
def _ice_host_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the private namespace, keep aioice on 127.0.0.1 (it skips loopback by default)
    so pure-Python tests never use the machine's real interfaces."""
    if IN_NETNS:
        return
    import aioice.ice

    def loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", loopback)


@pytest.fixture(scope="module")
def ywebrtc_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """y-webrtc's own bin/server.js."""
    with ywebrtc_server(tmp_path_factory.mktemp("ywebrtc") / "server.log") as url:
        yield url


@pytest.fixture(scope="module", params=["ours", "y-webrtc"])
def signaling_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Both signaling servers, one after the other: ``collab signaling`` (our FastAPI app on
    uvicorn) and y-webrtc's bin/server.js."""
    log = tmp_path_factory.mktemp("signaling") / f"{request.param}.log"
    if request.param == "ours":
        with collab_signaling(log) as server:
            yield server.url
    else:
        with ywebrtc_server(log) as url:
            yield url
