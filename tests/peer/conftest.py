"""Fixtures of the peer tests: signaling servers, ICE on loopback outside the namespace."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest
from peer_browser import chromium, page_url  # noqa: F401 - shared fixtures
from peer_servers import our_signaling_server, ywebrtc_server

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
def ywebrtc_url() -> Iterator[str]:
    """y-webrtc's own bin/server.js."""
    with ywebrtc_server() as url:
        yield url


@pytest.fixture(scope="module", params=["ours", "y-webrtc"])
def signaling_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both signaling servers, one after the other."""
    if request.param == "ours":
        if importlib.util.find_spec("signaling.app") is None:
            pytest.skip("signaling.app is not there yet")
        with our_signaling_server() as url:
            yield url
    else:
        with ywebrtc_server() as url:
            yield url
