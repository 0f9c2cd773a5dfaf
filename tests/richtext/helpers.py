"""The rich-text tests' Node worker (``tests/js/richtext_worker.mjs``: real Yjs, y-prosemirror,
ProseMirror, prosemirror-markdown, TipTap's schema) and small document builders."""

from __future__ import annotations

from typing import Any

import pycrdt

from collab.document import Document
from tests.support.node import NodeWorker, b64, unb64
from tests.support.paths import ROOT

WORKER = ROOT / "tests" / "js" / "richtext_worker.mjs"


class RichtextWorker(NodeWorker):
    """Requests are ``{"op": ..., ...}``; updates travel as base64 (see the script)."""

    def __init__(self) -> None:
        super().__init__(WORKER)

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One request; RuntimeError carrying the JS stack if it failed."""
        reply = self.exchange({"op": op, **kwargs})
        if "error" in reply:
            raise RuntimeError(f"richtext worker: {reply['error']}")
        return reply

    def pm(self, doc: dict[str, Any], fragment: str = "default", **kwargs: Any) -> dict[str, Any]:
        """Build (or, with ``base=[update]``, diff into) a fragment from ProseMirror JSON."""
        return self.call("pm", doc=doc, fragment=fragment, **kwargs)


def text(s: str, *marks: str | dict[str, Any]) -> dict[str, Any]:
    """A ProseMirror text node with marks (names or full mark JSON)."""
    node: dict[str, Any] = {"type": "text", "text": s}
    if marks:
        node["marks"] = [{"type": m} if isinstance(m, str) else m for m in marks]
    return node


def node(kind: str, *content: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    """A ProseMirror node."""
    out: dict[str, Any] = {"type": kind}
    if attrs:
        out["attrs"] = attrs
    if content:
        out["content"] = list(content)
    return out


def doc(*content: dict[str, Any]) -> dict[str, Any]:
    """A ProseMirror document."""
    return node("doc", *content)


def ydoc(*updates: str) -> pycrdt.Doc[Any]:
    """A fresh pycrdt document holding the worker's base64 updates."""
    out: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        out.apply_update(unb64(update))
    return out


def document(*updates: str) -> Document:
    """A :class:`collab.document.Document` holding the worker's base64 updates."""
    out = Document()
    for update in updates:
        out.apply_update(unb64(update))
    return out


def change_since(target: Document, state_vector: bytes) -> str:
    """What ``target`` gained since ``state_vector``, as base64 for the worker."""
    return b64(target.get_update(state_vector))
