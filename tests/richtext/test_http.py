"""The HTTP contract the TipTap example relies on, on a real ``collab serve``: ``GET
/api/rooms/{room}/export`` (every root kind and format, media types, ``at=``, errors),
``/diff?root=&summary=``, ``/json``, and ``POST /restore`` of a TipTap + Quill + whiteboard room
— the restored state, read back through ``/update``, is version 1 for real Yjs."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.storage import open_store
from tests.richtext.archive import ROOTS, deep_map_update, seed
from tests.richtext.helpers import RichtextWorker
from tests.support.marks import needs_netns
from tests.support.node import b64
from tests.support.servers import CollabServer

pytestmark = [pytest.mark.anyio, needs_netns]


async def test_export_diff_restore_over_http(js: RichtextWorker, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = f"sqlite:///{data / 'collab.db'}"
    v = await seed(js, store, "essay")
    deep = deep_map_update(2_000)
    async with open_store(store) as s:
        assert await s.acquire_room("deep", "test-seed")
        s.append("deep", deep)
        await s.flush()
        await s.release_room("deep")

    srv = CollabServer(data, tmp_path / "serve.log")
    srv.start()
    try:
        base = "/api/rooms/essay"
        html = srv.get(f"{base}/export", params={"format": "html", "root": "default"})
        assert html.status_code == 200 and html.text == v.v2["html"]
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert "sandbox" in html.headers["content-security-policy"]
        default = srv.get(f"{base}/export")  # main root: TipTap's "default", as HTML
        assert default.text == v.v2["html"] and default.headers["x-collab-root"] == "default"
        old = srv.get(f"{base}/export", params={"format": "html", "at": str(v.v1_id)})
        assert old.text == v.v1["html"]
        markdown = srv.get(f"{base}/export", params={"format": "markdown", "root": "default"})
        assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
        assert markdown.text.startswith("# Title, renamed\n\n")
        pm = srv.get(f"{base}/export", params={"format": "json", "root": "default"}).json()
        assert pm["content"][0] == v.v2["node"]["content"][0]
        delta = srv.get(f"{base}/export", params={"format": "delta", "root": "quill"})
        assert delta.headers["content-type"] == "application/json"
        assert delta.json() == js.call("delta", updates=[v.v2_update], name="quill")["delta"]
        board = srv.get(f"{base}/export", params={"root": "board"}).json()
        assert board == js.call("json", updates=[v.v2_update], roots=ROOTS)["json"]["board"]
        everything = srv.get(f"{base}/json").json()
        assert everything["default"]["type"] == "doc" and everything["board"] == board

        assert srv.get(f"{base}/export", params={"root": "nope"}).status_code == 404
        assert srv.get(f"{base}/export", params={"format": "pdf"}).status_code == 422
        wrong = srv.get(f"{base}/export", params={"format": "html", "root": "quill"})
        assert wrong.status_code == 422 and "exports as" in wrong.json()["detail"]
        assert srv.get("/api/rooms/nothing-here/export").status_code == 404

        # a hostile document nested 2 000 levels deep: 422, and the server carries on
        for path in ("/api/rooms/deep/export", "/api/rooms/deep/json"):
            refused = srv.get(path)
            assert refused.status_code == 422 and "deeper than" in refused.json()["detail"]

        # diff: the shared text's by default, any root with root=, JSON with summary=
        assert srv.get(f"{base}/diff", params={"from": str(v.v1_id)}).text == ""
        diff = srv.get(f"{base}/diff", params={"from": str(v.v1_id), "root": "default"})
        assert "+# Title, renamed" in diff.text
        assert diff.headers["x-collab-summary"].startswith("headings ~1, paragraphs -1 ~3")
        summary = srv.get(
            f"{base}/diff", params={"from": str(v.v1_id), "root": "quill", "summary": "true"}
        ).json()
        assert summary["kind"] == "text" and summary["summary"]["formatting_changed"] > 0

        restored = srv.http_post(f"{base}/restore", params={"at": str(v.v1_id)})
        assert restored.status_code == 200, restored.text
        state = b64(srv.get(f"{base}/update").content)
        assert (
            js.call("render", updates=[state], fragment="default", schema="tiptap")["node"]
            == (v.v1["node"])
        )
        assert (
            js.call("delta", updates=[state], name="quill")["delta"]
            == js.call("delta", updates=[v.v1_update], name="quill")["delta"]
        )
        assert js.call("json", updates=[state], roots=ROOTS) == js.call(
            "json", updates=[v.v1_update], roots=ROOTS
        )
        assert srv.get(f"{base}/export").text == v.v1["html"]
    finally:
        srv.stop()
