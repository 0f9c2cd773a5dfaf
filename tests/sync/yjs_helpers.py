"""The sync tests' real-Yjs worker (``tests/js/yjs_worker.mjs``)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.support.node import NodeWorker
from tests.support.paths import ROOT

WORKER = ROOT / "tests" / "js" / "yjs_worker.mjs"


class YjsWorker(NodeWorker):
    """A Node process running real Yjs documents, addressed by handle (``new_doc``)."""

    def __init__(self) -> None:
        super().__init__(WORKER)
        self._ids = itertools.count()
        self._docs = itertools.count()

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        """Send one request and return its reply (raises RuntimeError on a JS error)."""
        request_id = next(self._ids)
        reply = self.exchange({"id": request_id, "cmd": cmd, **kwargs})
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
