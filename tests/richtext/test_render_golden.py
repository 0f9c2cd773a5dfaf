"""collab.render against the real libraries: y-prosemirror builds the documents; ProseMirror's
DOMSerializer, prosemirror-markdown, ``textBetween``, ``node.toJSON()``, ``Y.Text#toDelta`` and
``Y.Doc#toJSON`` are the judges.

Normalisations (the only places we differ, on purpose):

* node JSON: attrs whose value is ``null`` are absent in ours — y-prosemirror does not store
  them, so only a schema could add them back (e.g. an image's ``title: null``);
* TipTap documents have no official Markdown serializer: their Markdown must equal what
  prosemirror-markdown writes for the same document in the basic schema's names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from collab import render
from tests.richtext.helpers import RichtextWorker, doc, node, text, ydoc

STRONG, EM, CODE = "strong", "em", "code"


def link(href: str, title: str | None = None) -> dict[str, Any]:
    return {"type": "link", "attrs": {"href": href, "title": title}}


def para(*content: dict[str, Any]) -> dict[str, Any]:
    return node("paragraph", *content)


def item(*content: dict[str, Any]) -> dict[str, Any]:
    return node("list_item", *content)


BASIC_DOCS: dict[str, dict[str, Any]] = {
    "everything": doc(
        node("heading", text("Title"), level=2),
        para(
            text("plain "),
            text("bold", STRONG),
            text(" and "),
            text("link", link("http://x.org")),
            node("hard_break"),
            text("after * _x_"),
        ),
        node("bullet_list", item(para(text("one"))), item(para(text("two")))),
        node("ordered_list", item(para(text("three"))), order=3),
        node("code_block", text("x = 1\n<y>")),
        node("horizontal_rule"),
        node("blockquote", para(text("quoted", EM, CODE))),
    ),
    "overlapping marks": doc(
        para(
            text("a "),
            text("b ", STRONG),
            text("c", EM, STRONG),
            text(" d", STRONG),
            text(" e "),
            text("em then ", EM),
            text("both", EM, STRONG),
            text(" trailing space ", STRONG),
            text("end"),
        ),
        para(text("code with `ticks` inside", CODE), text(" and "), text("``", CODE)),
        para(
            text("http://auto.link", link("http://auto.link")),
            text(" "),
            text("titled", link("https://x.org/a(b)", 'say "hi"')),
            text(" !"),
            text("img-like", link("http://y")),
        ),
    ),
    "escaping at line starts": doc(
        para(text("# not a heading")),
        para(text("1. not a list")),
        para(text("- not a bullet")),
        para(text("+ not either")),
        para(text("> not a quote")),
        para(text("snake_case_name and _under_ [brackets] ~tilde~ back\\slash")),
        node("heading", text("###### deep"), level=6),
        node("heading", text("x"), level=1),
    ),
    "nested lists and quotes": doc(
        node(
            "bullet_list",
            item(
                para(text("outer")),
                node(
                    "ordered_list",
                    item(para(text("nine"))),
                    item(para(text("ten")), para(text("second paragraph"))),
                    order=9,
                ),
            ),
            item(para(text("last"))),
        ),
        node("blockquote", node("bullet_list", item(para(text("in a quote")))), para(text("p"))),
        node("ordered_list", item(para(text("one"))), order=1),
    ),
    "code and breaks": doc(
        node("code_block", text("has ``` fence\nand ```` more")),
        node("code_block"),
        para(text("break at end"), node("hard_break")),
        para(text("two"), node("hard_break"), node("hard_break"), text("breaks")),
        para(text("marked", STRONG), node("hard_break"), text("break", STRONG)),
        para(),
    ),
    "unicode and html specials": doc(
        para(text("emoji 😀👩‍👩‍👧 and ünïcode, nbsp\u00a0here, <tag> & \"quotes\" 'single'")),
        para(text("a < b && c > d", EM)),
    ),
    "image": doc(
        para(text("see "), node("image", src="http://i/x.png", alt="the [alt]"), text(" there")),
        para(node("image", src="http://i/(y).png", title='t "q"')),
    ),
}


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _strip_nulls(v) for k, v in value.items() if v is not None}
        if out.get("attrs") == {}:
            del out["attrs"]
        return out
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _strip_node_nulls(value: Any) -> Any:
    # null node/mark attrs are not stored by y-prosemirror; mark attrs (stored whole) keep them
    if isinstance(value, dict):
        out = dict(value)
        if "attrs" in out and out.get("type") not in ("link",):
            out["attrs"] = {k: v for k, v in out["attrs"].items() if v is not None}
            if not out["attrs"]:
                del out["attrs"]
        for key in ("content", "marks"):
            if key in out:
                out[key] = [_strip_node_nulls(v) for v in out[key]]
        return out
    return value


@pytest.mark.parametrize("name", sorted(BASIC_DOCS))
def test_basic_schema_renders_like_prosemirror(js: RichtextWorker, name: str) -> None:
    built = js.pm(BASIC_DOCS[name], fragment="prosemirror")
    fragment = render.root_of(ydoc(built["update"]), "prosemirror", "xml")
    assert render.pm_html(fragment) == built["html"]
    assert render.pm_markdown(fragment) == built["markdown"]
    assert render.pm_markdown(fragment, tight_lists=True) == built["markdown_tight"]
    assert render.pm_text(fragment) == built["text"]
    assert render.prosemirror_json(fragment) == _strip_node_nulls(built["node"])


TIPTAP_NAMES = {
    "bullet_list": "bulletList",
    "ordered_list": "orderedList",
    "list_item": "listItem",
    "code_block": "codeBlock",
    "horizontal_rule": "horizontalRule",
    "hard_break": "hardBreak",
    "strong": "bold",
    "em": "italic",
}


def _tiptap(value: Any) -> Any:
    """The same document in TipTap's names (ordered lists count from ``start``, code blocks
    carry ``language``)."""
    if isinstance(value, dict):
        out = {k: _tiptap(v) for k, v in value.items()}
        if isinstance(out.get("type"), str):
            out["type"] = TIPTAP_NAMES.get(out["type"], out["type"])
        attrs = out.get("attrs")
        if out.get("type") == "orderedList" and attrs and "order" in attrs:
            out["attrs"] = {"start": attrs["order"]}
        if out.get("type") == "codeBlock" and attrs and "params" in attrs:
            out["attrs"] = {"language": attrs["params"]}
        if out.get("type") == "link":
            return None
        if "marks" in out:
            out["marks"] = [m for m in out["marks"] if m is not None]
            if not out["marks"]:
                del out["marks"]
        return out
    if isinstance(value, list):
        return [_tiptap(v) for v in value]
    return value


TIPTAP_DOCS = {name: BASIC_DOCS[name] for name in BASIC_DOCS if name != "image"}


@pytest.mark.parametrize("name", sorted(TIPTAP_DOCS))
def test_tiptap_schema_renders_like_tiptap(js: RichtextWorker, name: str) -> None:
    basic = js.pm(TIPTAP_DOCS[name], fragment="prosemirror")
    tiptap_doc = _tiptap(json.loads(json.dumps(TIPTAP_DOCS[name])))
    # links are not in StarterKit: the basic twin drops them too, for the Markdown comparison
    basic_twin = js.pm(_untiptap(tiptap_doc), fragment="prosemirror")
    built = js.pm(tiptap_doc, fragment="default", schema="tiptap")
    fragment = render.root_of(ydoc(built["update"]), "default", "xml")
    assert render.pm_html(fragment) == built["html"]
    assert render.pm_text(fragment) == built["text"]
    assert render.prosemirror_json(fragment) == _strip_node_nulls(built["node"])
    assert render.pm_markdown(fragment) == basic_twin["markdown"]
    assert basic["markdown"]  # the basic document itself rendered


def _untiptap(value: Any) -> Any:
    back = {v: k for k, v in TIPTAP_NAMES.items()}
    if isinstance(value, dict):
        out = {k: _untiptap(v) for k, v in value.items()}
        if isinstance(out.get("type"), str):
            out["type"] = back.get(out["type"], out["type"])
        attrs = out.get("attrs")
        if out.get("type") == "ordered_list" and attrs and "start" in attrs:
            out["attrs"] = {"order": attrs["start"]}
        if out.get("type") == "code_block" and attrs and "language" in attrs:
            out["attrs"] = {"params": attrs["language"]}
        return out
    if isinstance(value, list):
        return [_untiptap(v) for v in value]
    return value


def test_code_block_language(js: RichtextWorker) -> None:
    # TipTap's class="language-…" in HTML; prosemirror-markdown's fence info string (params)
    code = {"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("x = 1")]}
    built = js.pm(doc(code), fragment="default", schema="tiptap")
    fragment = render.root_of(ydoc(built["update"]), "default", "xml")
    assert render.pm_html(fragment) == built["html"]
    assert built["html"] == '<pre><code class="language-python">x = 1</code></pre>'
    assert render.pm_markdown(fragment) == "```python\nx = 1\n```"


def test_strike_is_gfm_and_s(js: RichtextWorker) -> None:
    built = js.pm(
        doc(para(text("gone", {"type": "strike"}), text(" kept"))),
        fragment="default",
        schema="tiptap",
    )
    fragment = render.root_of(ydoc(built["update"]), "default", "xml")
    assert render.pm_html(fragment) == built["html"] == "<p><s>gone</s> kept</p>"
    assert render.pm_markdown(fragment) == "~~gone~~ kept"


QUILL_EDITS: dict[str, list[list[Any]]] = {
    "formats": [
        ["insert", 0, "Hello world\n"],
        ["format", 0, 5, {"bold": True}],
        ["insert", 12, "Title", {"italic": True, "color": "#f00"}],
        ["insert", 17, "\n", {"header": 1}],
        ["format", 2, 6, {"bold": None, "link": "http://x.org"}],
    ],
    "unicode": [
        ["insert", 0, "a😀b ünï 👩‍👩‍👧 c"],
        ["format", 1, 3, {"bold": True}],
        ["delete", 5, 2],
        ["insert", 0, "→", {"code": True}],
    ],
    "embeds": [
        ["insert", 0, "pic: "],
        ["embed", 5, {"image": "http://i/x.png"}, {"width": 30}],
        ["insert", 6, " after", {"italic": True}],
    ],
}


@pytest.mark.parametrize("name", sorted(QUILL_EDITS))
def test_text_delta_like_yjs(js: RichtextWorker, name: str) -> None:
    built = js.call("text", ops=QUILL_EDITS[name], name="quill")
    d = ydoc(built["update"])
    kinds = render.root_kinds(d)
    assert kinds == {"quill": "text"}
    quill = render.root_of(d, "quill", "text")
    assert render.text_delta(quill) == built["delta"]
    assert json.loads(render.render(d, "quill", "text", "delta")) == built["delta"]
    if name != "embeds":  # Yjs toString() skips embeds, as pycrdt's str() does
        assert render.render(d, "quill", "text", "text") == built["string"]


def test_quill_markdown() -> None:
    delta = [
        {"insert": "Title"},
        {"insert": "\n", "attributes": {"header": 2}},
        {"insert": "one"},
        {"insert": "\n", "attributes": {"list": "ordered"}},
        {"insert": "two"},
        {"insert": "\n", "attributes": {"list": "ordered"}},
        {"insert": "see "},
        {"insert": "here", "attributes": {"link": "http://x", "bold": True}},
        {"insert": "\n"},
    ]
    assert render.delta_markdown(delta) == "## Title\n1. one\n2. two\nsee [**here**](http://x)\n"


def test_nested_maps_and_arrays_like_to_json(js: RichtextWorker) -> None:
    value = {
        "shapes": {
            "s1": {"x": 1, "y": 2.5, "tags": ["a", "b"], "label": {"$text": "hi"}},
            "s2": {"points": [[0, 0], [10, 20]], "big": 2**40, "none": None, "ok": True},
        },
        "title": {"$text": "board"},
    }
    built = js.call("nested", maps={"board": value}, arrays={"order": ["s1", {"k": [1, 2]}, []]})
    d = ydoc(built["update"])
    assert render.root_kinds(d) == {"board": "map", "order": "array"}
    expected = js.call("json", updates=[built["update"]], roots={"board": "map", "order": "array"})
    got = {
        name: render.to_json(render.root_of(d, name, kind))
        for name, kind in render.root_kinds(d).items()
    }
    assert got == expected["json"]
    assert json.loads(render.render(d, "board", "map", "json")) == expected["json"]["board"]
    assert render.roots_json(d.get_update()) == expected["json"]


def test_xml_roots_are_inferred_and_exported(js: RichtextWorker) -> None:
    built = js.pm(BASIC_DOCS["everything"], fragment="default")
    quill = js.call("text", ops=QUILL_EDITS["formats"], name="quill", base=[built["update"]])
    exported = render.export_update(ydoc(quill["update"]).get_update())
    assert (exported.root, exported.kind, exported.format) == ("default", "xml", "html")
    assert exported.data.decode() == built["html"]
    assert exported.media_type == "text/html; charset=utf-8"
    markdown = render.export_update(ydoc(quill["update"]).get_update(), "default", "markdown")
    assert markdown.data.decode() == built["markdown"]
    delta = render.export_update(ydoc(quill["update"]).get_update(), "quill", "delta")
    assert json.loads(delta.data) == quill["delta"] and delta.media_type == "application/json"
    with pytest.raises(render.RenderError, match="exports as"):
        render.export_update(ydoc(quill["update"]).get_update(), "quill", "html")
