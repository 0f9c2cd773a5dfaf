"""Fixtures of the adversarial suite: a real ``collab serve`` per test (attacks are
destructive), Chromium with the stock y-webrtc page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.victim import ServerFactory
from tests.support.browser import chromium, page_url  # noqa: F401 - shared fixtures
from tests.support.paths import ROOT
from tests.support.servers import CollabServer


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start ``collab serve`` processes for one test: ``hostile_server(env={...},
    nofile=512)``. Each runs THIS checkout (``PYTHONPATH``) and is ended by PID afterwards;
    its log path is printed so a failure can be read next to the figures."""
    started: list[CollabServer] = []

    def start(env: dict[str, str] | None = None, nofile: int | None = None) -> CollabServer:
        n = len(started)
        server = CollabServer(
            tmp_path / f"data{n}",
            tmp_path / f"serve{n}.log",
            env={"PYTHONPATH": str(ROOT), **(env or {})},
        )
        if nofile is not None:
            # prlimit execs the server: the PID we watch and kill is the server's own
            server.args = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *server.args]
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()
            print(f"\n[hostile] server log: {server.log_path}")
