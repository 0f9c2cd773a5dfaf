"""Signaling servers for the peer tests: y-webrtc's own ``bin/server.js`` and ours (uvicorn).

Both run as real subprocesses on 127.0.0.1, started and ended (by PID) by the fixtures.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_line(proc: subprocess.Popen[bytes], pattern: str, timeout: float) -> str:
    """Read the process's merged output until a line matches (blocking, bounded by timeout)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            seen.append(text)
            if re.search(pattern, text):
                return text
    raise RuntimeError(f"server did not report {pattern!r}; output: {seen[-20:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def ywebrtc_server(port: int | None = None) -> Iterator[str]:
    """y-webrtc's reference ``bin/server.js``; yields its ws:// URL."""
    port = port or free_port()
    proc = subprocess.Popen(
        ["node", str(ROOT / "node_modules/y-webrtc/bin/server.js")],
        cwd=ROOT,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_line(proc, "Signaling server running", 20)
        yield f"ws://127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextmanager
def our_signaling_server() -> Iterator[str]:
    """Our FastAPI signaling service under real uvicorn; yields its ws://…/signaling URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "signaling.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "info",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_line(proc, "Uvicorn running on", 30)
        yield f"ws://127.0.0.1:{port}/signaling"
    finally:
        _stop(proc)
