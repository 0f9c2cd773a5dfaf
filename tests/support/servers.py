"""Servers as real processes: ``collab serve``, ``collab signaling`` and y-webrtc's own
``bin/server.js``. Each binds port 0 itself on its first start (no port is handed on) and
reports the port it got in :attr:`port`; a restart binds that same port again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import COLLAB, NODE, YWEBRTC_SERVER
from tests.support.ports import listening_port
from tests.support.processes import Process

_BANNER_PORT = re.compile(r"is serving on \w+://(?:\[[^\]]*\]|[^/\s:]+):(\d+)/")


def banner_port(line: str) -> int:
    """The port in a ``collab … is serving on SCHEME://HOST:PORT/…`` banner."""
    found = _BANNER_PORT.search(line)
    if found is None:
        raise AssertionError(f"no port in the banner {line!r}")
    return int(found.group(1))


def _set_port(args: list[str], port: int) -> None:
    args[args.index("--port") + 1] = str(port)


class CollabServer(Process):
    """``collab serve`` on 127.0.0.1 with a data directory (restartable on the same port)."""

    def __init__(
        self, data: Path, log_path: Path, port: int = 0, env: dict[str, str] | None = None
    ) -> None:
        self.port = port
        self.data = data
        super().__init__(
            [COLLAB, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data)],
            log_path,
            env,
        )

    @property
    def http(self) -> str:
        assert self.port, "start() first: the server picks its port"
        return f"http://127.0.0.1:{self.port}"

    @property
    def signaling(self) -> str:
        assert self.port, "start() first: the server picks its port"
        return f"ws://127.0.0.1:{self.port}/signaling"

    def start(self) -> None:
        _set_port(self.args, self.port)  # 0 the first time, the same port on a restart
        super().start()
        # printed only once the listener, the store and the replica's signaling are up
        self.port = banner_port(self.wait_ready(r"collab is serving on", 60))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.http + path, timeout=10, **kwargs)

    def http_post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.http + path, timeout=30, **kwargs)


class SignalingServer(Process):
    """``collab signaling`` on 127.0.0.1 (``extra`` arguments, e.g. ``--engine fast``)."""

    def __init__(
        self,
        log_path: Path | None = None,
        *extra: str,
        env: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.port = port
        super().__init__(
            [COLLAB, "signaling", "--host", "127.0.0.1", "--port", str(port), *extra],
            log_path,
            env,
        )

    @property
    def base(self) -> str:
        """``ws://127.0.0.1:PORT`` (the server answers on ``/`` and ``/signaling``)."""
        assert self.port, "start() first: the server picks its port"
        return f"ws://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/signaling"

    def start(self) -> None:
        _set_port(self.args, self.port)
        super().start()
        self.port = banner_port(self.wait_ready(r"collab signaling is serving on", 30))


class YWebrtcServer(Process):
    """y-webrtc's reference ``bin/server.js``. It binds ``PORT`` (0: any) and prints the
    number it was given, not the one it got, so the port is read from ``/proc``."""

    def __init__(self, log_path: Path | None = None, port: int = 0) -> None:
        self.port = port
        super().__init__([NODE, str(YWEBRTC_SERVER)], log_path)

    @property
    def url(self) -> str:
        assert self.port, "start() first: the server picks its port"
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.env["PORT"] = str(self.port)
        super().start()
        # printed right after server.listen(), which binds synchronously
        self.wait_ready("Signaling server running", 20)
        if not self.port:
            try:
                self.port = listening_port(self.pid)
            except BaseException:
                self.kill()
                raise


@contextmanager
def ywebrtc_server(log_path: Path | None = None, port: int = 0) -> Iterator[str]:
    """A running y-webrtc ``bin/server.js``; yields its ws:// URL (``port`` to start one where
    an earlier one ran)."""
    server = YWebrtcServer(log_path, port)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def collab_signaling(
    log_path: Path | None = None, *extra: str, env: dict[str, str] | None = None
) -> Iterator[SignalingServer]:
    """A running ``collab signaling``, stopped (SIGTERM, by PID) at the end."""
    server = SignalingServer(log_path, *extra, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
