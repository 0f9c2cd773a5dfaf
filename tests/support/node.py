"""Long-lived Node workers running real Yjs (``tests/js/*.mjs``), spoken to in JSON lines."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.paths import NODE, ROOT


def b64(data: bytes) -> str:
    """Base64 text for a worker."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Bytes from a worker's base64 text."""
    return base64.b64decode(text)


class NodeWorker:
    """``node SCRIPT``, answering each JSON line on its stdin with one JSON line (synchronous
    calls); ``env`` is added to ours."""

    def __init__(self, script: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [NODE, str(script)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request, return the worker's reply (RuntimeError if it exited)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node worker exited (code {self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        """End the worker: stdin EOF first, then by PID (SIGTERM, SIGKILL) if it lingers."""
        proc = self.proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
