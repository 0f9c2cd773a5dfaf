"""Helpers for the wire-core tests: a long-lived real-Yjs Node worker and base64 codecs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
WORKER = ROOT / "tests" / "js" / "split_check.mjs"
NODE = shutil.which("node") or "/usr/bin/node"


def b64(data: bytes) -> str:
    """Base64 text for the worker protocol."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Bytes from the worker protocol."""
    return base64.b64decode(text)


class YjsWorker:
    """A `node tests/js/split_check.mjs` process answering one JSON request per line."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["TRACE_PATH"] = str(SHARED_DATA / "automerge-paper.json.gz")
        self.proc = subprocess.Popen(
            [NODE, str(WORKER)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def call(self, **request: Any) -> dict[str, Any]:
        """Send one request and return its response (raises on a JS-side error)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"yjs worker exited with {self.proc.wait()}")
        response: dict[str, Any] = json.loads(line)
        if "error" in response:
            raise RuntimeError(f"yjs worker: {response['error']}")
        return response

    def close(self) -> None:
        """End the worker (closing stdin ends it; kill it by PID if it lingers)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
