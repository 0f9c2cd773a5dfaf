"""The wire-core tests' real-Yjs worker (``tests/js/split_check.mjs``)."""

from __future__ import annotations

from typing import Any

from tests.support.node import NodeWorker
from tests.support.paths import ROOT, SHARED_DATA

WORKER = ROOT / "tests" / "js" / "split_check.mjs"


class SplitCheckWorker(NodeWorker):
    """A ``node tests/js/split_check.mjs`` process answering one JSON request per line."""

    def __init__(self) -> None:
        super().__init__(WORKER, {"TRACE_PATH": str(SHARED_DATA / "automerge-paper.json.gz")})

    def call(self, **request: Any) -> dict[str, Any]:
        """Send one request and return its response (raises on a JS-side error)."""
        response = self.exchange(request)
        if "error" in response:
            raise RuntimeError(f"yjs worker: {response['error']}")
        return response
