"""A real HTTP receiver on 127.0.0.1 (port 0): records every request, verifies signatures,
answers scripted statuses per path, or never answers at all (:func:`silent_listener`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    "time.monotonic() on arrival."
    signed: bool
    "The X-Collab-Signature header is the HMAC-SHA256 of the raw body with the secret."

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Receiver:
    """What :func:`receiver` runs; ``statuses[path]`` answers in order, then 200."""

    port: int = 0
    secret: bytes = b""
    statuses: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook", userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{path}"

    def requests(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]

    def events(self, path: str = "/hook") -> list[dict[str, Any]]:
        """Bodies of the requests answered 2xx on ``path`` (one per delivery)."""
        return [r.json for r in self.requests(path) if r.headers.get("x-answered") == "200"]


def _handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            expected = "sha256=" + hmac.new(state.secret, body, hashlib.sha256).hexdigest()
            given = self.headers.get("x-collab-signature", "")
            with state.lock:
                script = state.statuses.get(self.path, [])
                status = script.pop(0) if script else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-answered"] = str(status)
                state.received.append(
                    Received(
                        self.path,
                        headers,
                        body,
                        time.monotonic(),
                        hmac.compare_digest(given, expected),
                    )
                )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiver(secret: bytes, statuses: dict[str, list[int]] | None = None) -> Iterator[Receiver]:
    """A threaded HTTP server bound to 127.0.0.1:0, shut down at the end."""
    state = Receiver(secret=secret, statuses=statuses or {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose kernel accepts connections that nobody ever answers (the listening socket
    is never accepted from): requests to it hang until their timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    """A port nothing listens on (bound, then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
