"""Restores made in Python (collab.history.restore_into), applied by real Yjs in Node, give back
the old version exactly: ``yXmlFragmentToProseMirrorRootNode`` JSON for ProseMirror/TipTap
fragments, ``toDelta()`` for Quill texts, ``toJSON()`` for nested maps and arrays. The newer
version is always made by the JavaScript side (y-prosemirror's ``updateYFragment``, as the
sync plugin does for an editor's change), and the restore is sent as the change a peer would
receive, on top of it."""

from __future__ import annotations

from typing import Any

import pytest

from collab.history import diff_root, restore_into
from tests.richtext.helpers import RichtextWorker, change_since, doc, document, node, text
from tests.richtext.test_render_golden import BASIC_DOCS, _tiptap


def para(*content: dict[str, Any]) -> dict[str, Any]:
    return node("paragraph", *content)


V2_BASIC = doc(
    node("heading", text("Title, renamed"), level=1),
    para(text("plain "), text("bold", "em"), text(" and more")),
    node("bullet_list", node("list_item", para(text("one"))), node("list_item", para(text("2")))),
    para(text("a new paragraph")),
    node("code_block", text("x = 2\n<y>")),
)

EDITS = {
    "everything -> edited": (BASIC_DOCS["everything"], V2_BASIC),
    "overlapping -> everything": (BASIC_DOCS["overlapping marks"], BASIC_DOCS["everything"]),
    "nested -> empty": (BASIC_DOCS["nested lists and quotes"], doc(para())),
    "empty -> nested": (doc(para()), BASIC_DOCS["nested lists and quotes"]),
}


def _restore_and_check(
    js: RichtextWorker, v1: dict[str, Any], v2: dict[str, Any], schema: str, fragment: str
) -> None:
    old = js.pm(v1, fragment=fragment, client=1, schema=schema)
    new = js.pm(v2, fragment=fragment, client=2, base=[old["update"]], schema=schema)
    assert new["node"] != old["node"]
    live = document(new["update"])
    before = live.state_vector()
    restore_into(live, document(old["update"]))
    seen = js.call(
        "render",
        updates=[new["update"], change_since(live, before)],
        fragment=fragment,
        schema=schema,
    )
    assert seen["node"] == old["node"]
    assert seen["html"] == old["html"]
    # restoring again changes nothing
    again = live.state_vector()
    restore_into(live, document(old["update"]))
    assert live.state_vector() == again


@pytest.mark.parametrize("name", sorted(EDITS))
def test_prosemirror_restore(js: RichtextWorker, name: str) -> None:
    v1, v2 = EDITS[name]
    _restore_and_check(js, v1, v2, "basic", "prosemirror")


def test_tiptap_restore(js: RichtextWorker) -> None:
    _restore_and_check(
        js, _tiptap(BASIC_DOCS["everything"]), _tiptap(V2_BASIC), "tiptap", "default"
    )


QUILL_V1 = [
    ["insert", 0, "Hello wörld 😀\n"],
    ["format", 0, 5, {"bold": True}],
    ["insert", 15, "Title", {"italic": True, "color": "#f00"}],
    ["insert", 20, "\n", {"header": 1}],
    ["format", 6, 5, {"link": "http://x.org"}],
]
QUILL_V2 = [
    ["format", 0, 5, {"bold": None}],
    ["insert", 6, "big ", {"underline": True}],
    ["delete", 0, 2],
    ["format", 3, 8, {"color": "#0f0", "italic": True}],
    ["insert", 3, "👩‍👩‍👧"],
    ["format", 20, 2, {"header": None}],
]


def test_quill_text_restore_with_formatting(js: RichtextWorker) -> None:
    old = js.call("text", ops=QUILL_V1, name="quill", client=1)
    new = js.call("text", ops=QUILL_V2, name="quill", client=2, base=[old["update"]])
    assert new["delta"] != old["delta"]
    live = document(new["update"])
    before = live.state_vector()
    restore_into(live, document(old["update"]))
    seen = js.call("delta", updates=[new["update"], change_since(live, before)], name="quill")
    assert seen["delta"] == old["delta"]


def test_quill_text_with_embeds_restores(js: RichtextWorker) -> None:
    old = js.call(
        "text",
        ops=[["insert", 0, "pic: "], ["embed", 5, {"image": "http://i/x.png"}], ["insert", 6, "!"]],
        name="quill",
        client=1,
    )
    new = js.call(
        "text",
        ops=[["delete", 4, 1], ["insert", 0, "A "]],
        name="quill",
        client=2,
        base=[old["update"]],
    )
    live = document(new["update"])
    before = live.state_vector()
    restore_into(live, document(old["update"]))
    seen = js.call("delta", updates=[new["update"], change_since(live, before)], name="quill")
    assert seen["delta"] == old["delta"]


def test_nested_maps_and_arrays_restore(js: RichtextWorker) -> None:
    roots = {"board": "map", "order": "array"}
    old = js.call(
        "nested",
        client=1,
        maps={
            "board": {
                "shapes": {"s1": {"x": 1, "y": 2, "tags": ["a", "b"]}, "s2": {"x": 3}},
                "title": {"$text": "hi"},
                "n": 1,
            }
        },
        arrays={"order": ["s1", "s2", {"k": [1, 2]}]},
    )
    new = js.call(
        "nested",
        client=2,
        base=[old["update"]],
        maps={"board": {"shapes": {"s1": {"x": 5, "y": 2, "tags": ["a"]}}, "extra": True}},
        deletes={"board": ["n"]},
        arrays={"order": ["s2", {"k": [1]}]},
    )
    live = document(new["update"])
    summary = diff_root(document(old["update"]), live, "v1", "v2", "board")
    assert summary.kind == "map" and summary.summary["keys"] == {
        "added": 1,
        "removed": 1,
        "changed": 1,
    }
    before = live.state_vector()
    restore_into(live, document(old["update"]))
    expected = js.call("json", updates=[old["update"]], roots=roots)
    seen = js.call("json", updates=[new["update"], change_since(live, before)], roots=roots)
    assert seen == expected


def test_every_root_kind_in_one_document(js: RichtextWorker) -> None:
    """One room holding a TipTap fragment, a Quill text and a whiteboard map: one restore
    brings all three back, in one transaction."""
    pm_old = js.pm(BASIC_DOCS["everything"], fragment="prosemirror", client=1)
    old = js.call("text", ops=QUILL_V1, name="quill", client=1, base=[pm_old["update"]])
    old = js.call("nested", client=1, base=[old["update"]], maps={"board": {"a": [1, {"b": 2}]}})
    pm_new = js.pm(V2_BASIC, fragment="prosemirror", client=2, base=[old["update"]])
    new = js.call("text", ops=QUILL_V2, name="quill", client=2, base=[pm_new["update"]])
    new = js.call("nested", client=2, base=[new["update"]], maps={"board": {"a": [2]}})
    live = document(new["update"])
    produced: list[bytes] = []
    live.observe(lambda update, origin: produced.append(origin))
    before = live.state_vector()
    restore_into(live, document(old["update"]))
    assert produced == ["restore"]
    change = change_since(live, before)
    assert (
        js.call("render", updates=[new["update"], change], fragment="prosemirror")["node"]
        == pm_old["node"]
    )
    assert (
        js.call("delta", updates=[new["update"], change], name="quill")["delta"]
        == js.call("delta", updates=[old["update"]], name="quill")["delta"]
    )
    roots = {"board": "map"}
    assert js.call("json", updates=[new["update"], change], roots=roots) == js.call(
        "json", updates=[old["update"]], roots=roots
    )


def test_xml_diff_summary(js: RichtextWorker) -> None:
    old = js.pm(BASIC_DOCS["everything"], fragment="prosemirror", client=1)
    new = js.pm(V2_BASIC, fragment="prosemirror", client=2, base=[old["update"]])
    found = diff_root(document(old["update"]), document(new["update"]), "v1", "v2")
    assert (found.root, found.kind) == ("prosemirror", "xml")
    assert "-## Title" in found.diff and "+# Title, renamed" in found.diff
    assert "+a new paragraph" in found.diff
    assert found.summary == {
        "headings": {"added": 0, "removed": 0, "changed": 1},
        "paragraphs": {"added": 0, "removed": 1, "changed": 3},
        "code blocks": {"added": 0, "removed": 0, "changed": 1},
        "rules": {"added": 0, "removed": 1, "changed": 0},
        "marks_changed": 4,
    }
    assert found.line == "headings ~1, paragraphs -1 ~3, code blocks ~1, rules -1, marks changed 4"


def test_prosemirror_restore_edits_in_place(js: RichtextWorker) -> None:
    """A paragraph that only changed is edited, not replaced: its Y.XmlElement and XmlText
    stay the same items (a collaborator's cursor inside it survives the restore)."""
    v1 = doc(para(text("Hello world")), node("heading", text("Head"), level=1), para(text("x")))
    v2 = doc(
        para(text("Hello "), text("brave", "strong"), text(" world")),
        node("heading", text("Head"), level=3),
        para(text("x")),
    )
    old = js.pm(v1, fragment="prosemirror", client=1)
    new = js.pm(v2, fragment="prosemirror", client=2, base=[old["update"]])
    live = document(new["update"])
    fragment = live.xml("prosemirror")
    paragraph, heading = fragment.children[0], fragment.children[1]
    words = paragraph.children[0]
    before = live.state_vector()
    restore_into(live, document(old["update"]))
    assert fragment.children[0] == paragraph and paragraph.children[0] == words
    assert fragment.children[1] == heading
    seen = js.call(
        "render", updates=[new["update"], change_since(live, before)], fragment="prosemirror"
    )
    assert seen["node"] == old["node"]
