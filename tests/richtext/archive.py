"""A rich-text room written into a store the way the replica would have archived it: a TipTap
fragment (``default``), a Quill text (``quill``) and a whiteboard map (``board``), in two
versions made by real Yjs + y-prosemirror."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pycrdt

from collab.storage import open_store
from tests.richtext.helpers import RichtextWorker
from tests.richtext.test_render_golden import BASIC_DOCS, _tiptap
from tests.richtext.test_restore_golden import QUILL_V1, QUILL_V2, V2_BASIC
from tests.support.node import unb64

ROOTS = {"board": "map", "quill": "text"}


@dataclass
class Versions:
    """What the two versions look like to the JavaScript side."""

    v1: dict[str, Any]
    "``render`` of the fragment at version 1 (node, html, text)."
    v2: dict[str, Any]
    "The same at version 2."
    v1_update: str
    "The whole document at version 1 (base64)."
    v2_update: str
    "The whole document at version 2 (base64)."
    v1_id: int
    "Version 1's id in the store."
    change: str
    "The update turning version 1 into version 2 (base64)."


def build(js: RichtextWorker) -> tuple[str, str, str]:
    """Version 1, version 2 (both whole documents) and the change between them (base64)."""
    pm1 = js.pm(_tiptap(BASIC_DOCS["everything"]), fragment="default", client=1, schema="tiptap")
    q1 = js.call("text", ops=QUILL_V1, name="quill", client=1, base=[pm1["update"]])
    v1 = js.call("nested", client=1, base=[q1["update"]], maps={"board": {"a": [1, {"b": 2}]}})
    pm2 = js.pm(
        _tiptap(V2_BASIC), fragment="default", client=2, base=[v1["update"]], schema="tiptap"
    )
    q2 = js.call("text", ops=QUILL_V2, name="quill", client=2, base=[pm2["update"]])
    v2 = js.call("nested", client=2, base=[q2["update"]], maps={"board": {"a": [2], "c": "x"}})
    return v1["update"], v2["update"], v2["change"]


async def seed(js: RichtextWorker, store_url: str, room: str) -> Versions:
    """Write version 1 (recorded as a version) then the changes to version 2 into the store."""
    v1_update, v2_update, _ = build(js)
    change = js.call("diff", base=[v1_update], updates=[v2_update])["change"]
    async with open_store(store_url) as store:
        assert await store.acquire_room(room, "test-seed")
        store.append(room, unb64(v1_update))
        await store.flush()
        version = await store.add_version(room, "version 1")
        store.append(room, unb64(change))
        await store.flush()
        await store.release_room(room)
    return Versions(
        js.call("render", updates=[v1_update], fragment="default", schema="tiptap"),
        js.call("render", updates=[v2_update], fragment="default", schema="tiptap"),
        v1_update,
        v2_update,
        version.id,
        change,
    )


def deep_map_update(levels: int) -> bytes:
    """A document whose ``deep`` map nests ``levels`` maps (hostile input)."""
    d: pycrdt.Doc[Any] = pycrdt.Doc()
    root = d.get("deep", type=pycrdt.Map)
    with d.transaction():
        current = root
        for _ in range(levels):
            current["k"] = pycrdt.Map()
            current = current["k"]
    return bytes(d.get_update())


__all__ = ["ROOTS", "Versions", "build", "deep_map_update", "seed"]
