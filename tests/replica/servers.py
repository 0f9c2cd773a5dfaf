"""Real processes for the replica tests: ``collab serve``, ``collab replica``, y-webrtc's server.

Every process runs in its own session, its output is drained by a thread into a log file (so a
chatty process can never block on a full pipe), and it is ended by PID.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[2]
COLLAB = str(ROOT / ".venv" / "bin" / "collab")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A subprocess whose merged output is copied to ``log_path`` by a reader thread."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._mark = 0  # lines before the current run (a restart must not match old output)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            self._mark = len(self._lines)
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._thread = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
        self._thread.start()

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                with self._cond:
                    self._lines.append(raw.decode(errors="replace"))
                    self._cond.notify_all()
        proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> str:
        """Block until an output line matches ``pattern`` (RuntimeError on exit/timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = self._mark
            while True:
                for line in self._lines[seen:]:
                    if re.search(pattern, line):
                        return line
                seen = len(self._lines)
                if (
                    self.proc is not None
                    and self.proc.poll() is not None
                    and not (self._thread and self._thread.is_alive())
                ):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        tail = "".join(self._lines[-30:])
        raise RuntimeError(f"{self.args[:3]} did not print {pattern!r}; last output:\n{tail}")

    def output(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process group and wait for the process to end."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (graceful: the replica flushes and compacts), then wait."""
        self.kill(signal.SIGTERM)


class CollabServer(Process):
    """``collab serve`` on a fixed port and data directory (restartable)."""

    def __init__(
        self, data: Path, log_path: Path, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port()
        self.data = data
        super().__init__(
            [COLLAB, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data", str(data)],
            log_path,
            env,
        )

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def signaling(self) -> str:
        return f"ws://127.0.0.1:{self.port}/signaling"

    def start(self) -> None:
        super().start()
        # printed only once the listener, the store and the replica's signaling are up
        self.wait_for_line(r"collab is serving on", 60)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.http + path, timeout=10, **kwargs)

    def http_post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.http + path, timeout=30, **kwargs)


@contextmanager
def ywebrtc_server(log_path: Path) -> Iterator[str]:
    """y-webrtc's reference ``bin/server.js``; yields its ws:// URL."""
    port = free_port()
    proc = Process(
        ["node", str(ROOT / "node_modules/y-webrtc/bin/server.js")], log_path, {"PORT": str(port)}
    )
    proc.start()
    try:
        proc.wait_for_line("Signaling server running", 20)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll a condition another process controls (no event exists for it) until it holds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(interval)


def python() -> str:
    return sys.executable


def self_signed(tmp: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files in ``tmp``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def tmpfs(path: Path, size: str = "1m", *, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (skips the test where mounting is not allowed)."""
    import pytest

    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(path: Path) -> None:
    """Write (unbuffered) into ``path`` until its file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
