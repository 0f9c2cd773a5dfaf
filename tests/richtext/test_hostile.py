"""Hostile documents: 100 000 nested maps, or 20 000 nested XML elements, neither exhaust the
stack nor hang — every renderer, the diff and the restore refuse with ``too-deep`` beyond
``collab.render.MAX_DEPTH`` (the HTTP API answers 422, see test_http)."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest

from collab import render
from collab.document import Document
from collab.history import diff_root, restore_into
from tests.richtext.archive import deep_map_update


def _deep_xml(levels: int) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    current: Any = doc.get("default", type=pycrdt.XmlFragment)
    with doc.transaction():
        for _ in range(levels):
            current = current.children.append(pycrdt.XmlElement("blockquote"))
        current.children.append(pycrdt.XmlText("bottom"))
    return doc


def test_100k_nested_maps_are_refused() -> None:
    update = deep_map_update(100_000)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    root = render.root_of(doc, "deep", "map")
    with pytest.raises(render.RenderError) as refused:
        render.to_json(root)
    assert refused.value.code == "too-deep"
    with pytest.raises(render.RenderError):
        render.roots_json(update)
    old, now = Document(), Document()
    old.apply_update(update)
    with pytest.raises(ValueError, match="deeper than"):
        restore_into(now, old)
    assert now.get_update() == b"\x00\x00"  # nothing was edited


def test_deep_xml_is_refused_by_every_renderer() -> None:
    doc = _deep_xml(20_000)
    fragment = render.root_of(doc, "default", "xml")
    for renderer in (render.pm_html, render.pm_markdown, render.pm_text, render.prosemirror_json):
        with pytest.raises(render.RenderError, match="deeper than"):
            renderer(fragment)
    update = doc.get_update()
    for fmt in ("html", "markdown", "text", "json"):
        with pytest.raises(render.RenderError):
            render.export_update(update, "default", fmt)
    deep = Document()
    deep.apply_update(update)
    with pytest.raises(render.RenderError):
        diff_root(Document(), deep, "a", "b", "default")


def test_max_depth_itself_renders() -> None:
    # ProseMirror documents nest a handful of levels; MAX_DEPTH leaves room for real ones
    doc = _deep_xml(render.MAX_DEPTH - 2)
    fragment = render.root_of(doc, "default", "xml")
    assert render.pm_html(fragment).count("<blockquote>") == render.MAX_DEPTH - 2
    assert render.pm_markdown(fragment).endswith("bottom")


def test_restore_replaces_a_vandals_deep_nesting() -> None:
    """Restoring is how a room recovers from vandalism: deep nesting in the *current* version
    (maps and XML) is replaced, not a reason to refuse."""
    old = Document()
    old.map("board")["shape"] = pycrdt.Map({"x": 1.0})
    paragraph = old.xml("default").children.append(pycrdt.XmlElement("paragraph"))
    paragraph.children.append(pycrdt.XmlText("fine"))
    now = Document()
    now.apply_update(old.get_update())
    with now.transaction():
        current: Any = now.map("board")["shape"]
        for _ in range(render.MAX_DEPTH + 50):
            current["k"] = pycrdt.Map()
            current = current["k"]
        element: Any = now.xml("default")
        for _ in range(render.MAX_DEPTH + 50):
            element = element.children.append(pycrdt.XmlElement("blockquote"))
    restore_into(now, old)
    assert render.to_json(now.map("board")) == {"shape": {"x": 1}}
    assert render.pm_html(now.xml("default")) == "<p>fine</p>"
