"""The long-lived Node Yjs worker of the sync tests (tests/js/yjs_worker.mjs), as a plain
module: ``from conftest import`` would depend on which conftest pytest imported first."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "js" / "yjs_worker.mjs"


class YjsWorker:
    """A Node process running real Yjs, spoken to with JSON lines (synchronous calls)."""

    def __init__(self) -> None:
        node = shutil.which("node") or "/usr/bin/node"
        self.process = subprocess.Popen(
            [node, str(WORKER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._ids = itertools.count()
        self._docs = itertools.count()

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        """Send one request and return its reply (raises RuntimeError on a JS error)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request_id = next(self._ids)
        self.process.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **kwargs}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"yjs worker exited (code {self.process.poll()})")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("id") != request_id:
            raise RuntimeError(f"out-of-order reply {reply!r}")
        if not reply["ok"]:
            raise RuntimeError(f"yjs worker: {reply['error']}")
        return reply

    def new_doc(self, client_id: int | None = None) -> str:
        """Create a Y.Doc; returns its handle."""
        name = f"d{next(self._docs)}"
        if client_id is None:
            self.call("create", doc=name)
        else:
            self.call("create", doc=name, clientID=client_id)
        return name

    def close(self) -> None:
        """End the worker by PID (stdin EOF first, then terminate/kill)."""
        proc = self.process
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)
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


def b64(data: bytes) -> str:
    """bytes -> base64 text for the worker."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """base64 text from the worker -> bytes."""
    return base64.b64decode(text)
