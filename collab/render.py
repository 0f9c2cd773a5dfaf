"""Render any Yjs root type: JSON, Quill deltas, and ProseMirror documents as HTML or Markdown.

Yjs does not record root types; :func:`root_kinds` infers them from a document's items
(:func:`infer_kinds`) and :func:`root_of` reads a root as that kind from a
*fresh* ``pycrdt.Doc`` (reading a root declares it, so never do this on a live document).

* ``Y.Text`` (Quill, CodeMirror): ``text``, ``delta`` (``ytext.toDelta()``), ``markdown``
  (inline formatting bold/italic/code/strike/link, Quill line formats header/list/blockquote),
  ``json`` (the string, as ``toJSON()``).
* ``Y.XmlFragment`` as y-prosemirror stores it (TipTap, BlockNote, plain ProseMirror): element
  ``nodeName`` = node type, attributes = node attrs, ``XmlText`` formatting attributes = marks
  (``name`` or ``name--hash`` for overlapping marks, value = the mark's attrs). Rendered through
  a ProseMirror-shaped tree (:func:`prosemirror_json`, like ``node.toJSON()``) to ``html`` (what
  ProseMirror's ``DOMSerializer`` gives for the basic + list schema), ``markdown`` (a port of
  prosemirror-markdown's ``defaultMarkdownSerializer``), ``text`` (``textBetween(…, "\\n",
  "\\n")``) and ``json``. TipTap's camelCase names (``bulletList``, ``bold``, …) render as their
  basic-schema twins; unknown nodes render their content only, unknown marks nothing.
* ``Y.Map`` / ``Y.Array`` (whiteboards): ``json`` (nested types included), like ``toJSON()``.

Everything that walks a tree is bounded by :data:`MAX_DEPTH` (a hostile document may nest
100 000 levels): deeper documents raise :class:`RenderError` instead of exhausting the stack.

Example:
    >>> doc = pycrdt.Doc()
    >>> doc["t"] = pycrdt.Text("hi")
    >>> doc["t"].insert(2, "!", {"bold": True})
    >>> kinds = root_kinds(doc)
    >>> render(doc, "t", kinds["t"], "delta")
    '[{"insert": "hi"}, {"insert": "!", "attributes": {"bold": true}}]'
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pycrdt

from collab.errors import NotFoundError, ProtocolError
from collab.lib0 import Decoder
from collab.yupdate import (
    BIT_PARENT_SUB,
    REF_DELETED,
    REF_EMBED,
    REF_FORMAT,
    REF_GC,
    REF_SKIP,
    REF_STRING,
    REF_TYPE,
    Struct,
    decode_update,
)

__all__ = [
    "FORMATS",
    "MAX_DEPTH",
    "MEDIA_TYPES",
    "Export",
    "ExportKind",
    "RenderError",
    "default_format",
    "delta_markdown",
    "export_update",
    "infer_kinds",
    "main_root",
    "pm_blocks",
    "pm_html",
    "pm_markdown",
    "pm_marked_runs",
    "pm_text",
    "prosemirror_json",
    "render",
    "root_kinds",
    "root_of",
    "roots_json",
    "text_delta",
    "to_json",
]

ExportKind = Literal["text", "map", "array", "xml"]
"""The root kinds Yjs apps use (``xml`` = ``Y.XmlFragment``)."""

MAX_DEPTH: Final = 100
"""Deepest nesting rendered (maps in maps, ProseMirror nodes); deeper raises RenderError."""

FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "text": ("text", "markdown", "delta", "json"),
    "xml": ("html", "markdown", "text", "json"),
    "map": ("json",),
    "array": ("json",),
}
"""Export formats each root kind supports (the first is the default)."""

MEDIA_TYPES: Final[dict[str, str]] = {
    "text": "text/plain; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "delta": "application/json",
    "json": "application/json",
    "yjs": "application/octet-stream",
}
"""The HTTP media type of each export format."""


class RenderError(ValueError):
    """A root cannot be rendered as asked (wrong format for its kind, or nested too deeply).

    ``code`` is ``"bad-format"`` or ``"too-deep"``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def default_format(kind: str) -> str:
    """The export format used when none is asked for.

    Example:
        >>> default_format("xml"), default_format("map")
        ('html', 'json')
    """
    return FORMATS.get(kind, ("json",))[0]


_ROOT_TYPES: Final[dict[str, Any]] = {
    "text": pycrdt.Text,
    "map": pycrdt.Map,
    "array": pycrdt.Array,
    "xml": pycrdt.XmlFragment,
}


_XML_TYPE_REFS: Final = frozenset({3, 4, 5, 6})  # XmlElement, XmlFragment, XmlHook, XmlText
_KIND_RANK: Final[dict[str, int]] = {"map": 3, "xml": 2, "text": 1, "array": 0}


def infer_kinds(update: bytes) -> dict[str, ExportKind]:
    """Each root type's kind, from the items of a Yjs V1 update (Yjs does not record it).

    Every item is traced to its root: items carrying their parent name it; the others (which
    carry left/right origins instead) belong to their origin's parent, followed iteratively.
    A root with a map key (parentSub) is a map, with XML elements/texts an XML fragment, with
    strings/formats/embeds a text, with anything else an array. A root whose items are all
    garbage-collected has no kind (left out): it renders as nothing anyway.

    Raises:
        ProtocolError: if the update is malformed.

    Example:
        >>> d = pycrdt.Doc()
        >>> d["t"] = pycrdt.Text("hello")
        >>> del d["t"][0:1]  # the item naming the root is gone; "ello" still says "text"
        >>> infer_kinds(d.get_update())
        {'t': 'text'}
    """
    parsed = decode_update(update)
    data = parsed.data
    clocks: dict[int, list[int]] = {}
    items: dict[int, list[Struct]] = {}
    for section in parsed.clients:
        structs = [s for s in section.structs if s.ref not in (REF_GC, REF_SKIP)]
        items[section.client] = structs
        clocks[section.client] = [s.clock for s in structs]

    def locate(target: tuple[int, int] | None) -> Struct | None:
        if target is None or target[0] not in items:
            return None
        at = bisect.bisect_right(clocks[target[0]], target[1]) - 1
        if at < 0:
            return None
        found = items[target[0]][at]
        return found if found.clock + found.length > target[1] else None

    roots: dict[tuple[int, int], str | None] = {}  # (client, clock) of an item -> root name

    def root_of_item(struct: Struct, client: int) -> str | None:
        path: list[tuple[int, int]] = []
        key = (client, struct.clock)
        name: str | None = None
        current: Struct | None = struct
        while current is not None:
            if key in roots:
                name = roots[key]
                break
            path.append(key)
            if current.origin is None and current.right_origin is None:
                if current.parent_id is None:
                    r = Decoder(data, current.start + 1)
                    if r.read_var_uint() == 1:
                        name = r.read_var_string()
                break
            origin = current.origin
            following = locate(origin)
            if following is None:
                origin = current.right_origin
                following = locate(origin)
            if following is None or origin is None:
                break
            key = (origin[0], following.clock)
            if key in path:
                break
            current = following
        for visited in path:
            roots[visited] = name
        return name

    kinds: dict[str, ExportKind] = {}
    for client, structs in items.items():
        for struct in structs:
            name = root_of_item(struct, client)
            if name is None:
                continue
            kind: ExportKind | None = None
            if struct.info & BIT_PARENT_SUB:  # a map key (written even when origins replace it)
                kind = "map"
            elif struct.ref in (REF_STRING, REF_FORMAT, REF_EMBED):
                kind = "text"
            elif struct.ref == REF_TYPE:
                r = Decoder(data, struct.content_start)
                kind = "xml" if r.read_var_uint() in _XML_TYPE_REFS else "array"
            elif struct.ref != REF_DELETED:
                kind = "array"
            if kind is not None and _KIND_RANK[kind] > _KIND_RANK.get(kinds.get(name, ""), -1):
                kinds[name] = kind
    return kinds


def root_kinds(doc: pycrdt.Doc[Any]) -> dict[str, ExportKind]:
    """Every root of ``doc`` with its kind (:func:`infer_kinds`; empty roots are left out).

    Example:
        >>> d = pycrdt.Doc()
        >>> d["m"] = pycrdt.Map({"k": pycrdt.Array([1])})
        >>> root_kinds(d)
        {'m': 'map'}
    """
    try:
        return infer_kinds(doc.get_update())
    except ProtocolError:
        return {}


def root_of(doc: pycrdt.Doc[Any], name: str, kind: str) -> Any:
    """Read root ``name`` as ``kind`` (``text``, ``map``, ``array``, ``xml``).

    Raises:
        RenderError: ``bad-format`` for an unknown kind.
    """
    if kind not in _ROOT_TYPES:
        raise RenderError("bad-format", f"unknown root kind {kind!r}")
    return doc.get(name, type=_ROOT_TYPES[kind])


def _deeper(depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise RenderError("too-deep", f"document nested deeper than {MAX_DEPTH} levels")
    return depth + 1


def _number(value: float) -> int | float | None:
    # JavaScript has one number type: Yjs' 2 arrives in pycrdt as 2.0, and JSON.stringify
    # writes it as 2; NaN and infinities become null
    if math.isnan(value) or math.isinf(value):
        return None
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def to_json(value: Any, depth: int = 0) -> Any:
    """Plain JSON of a value read from a document: nested maps/arrays/texts included, like
    Yjs ``toJSON()`` (numbers as JavaScript writes them, binary as base64, XML fragments as
    their ProseMirror JSON, sub-documents as ``null``).

    Raises:
        RenderError: ``too-deep`` beyond :data:`MAX_DEPTH`.

    Example:
        >>> d = pycrdt.Doc()
        >>> d["m"] = pycrdt.Map({"shape": pycrdt.Map({"x": 1.0, "tags": pycrdt.Array(["a"])})})
        >>> to_json(d["m"])
        {'shape': {'tags': ['a'], 'x': 1}}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    inner = _deeper(depth)
    if isinstance(value, pycrdt.Map):
        return {key: to_json(value[key], inner) for key in sorted(value.keys())}
    if isinstance(value, pycrdt.Array):
        return [to_json(item, inner) for item in value]
    if isinstance(value, pycrdt.Text | pycrdt.XmlText):
        return str(value)
    if isinstance(value, pycrdt.XmlFragment | pycrdt.XmlElement):
        return prosemirror_json(value, inner)
    if isinstance(value, dict):
        return {str(key): to_json(item, inner) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item, inner) for item in value]
    return None  # sub-documents and anything else without a JSON form


def text_delta(text: pycrdt.Text | pycrdt.XmlText) -> list[dict[str, Any]]:
    """The text as a Quill delta, like Yjs ``ytext.toDelta()``.

    Example:
        >>> d = pycrdt.Doc()
        >>> d["t"] = pycrdt.Text("ab")
        >>> d["t"].format(1, 2, {"italic": True})
        >>> text_delta(d["t"])
        [{'insert': 'a'}, {'insert': 'b', 'attributes': {'italic': True}}]
    """
    out: list[dict[str, Any]] = []
    for content, attrs in text.diff():
        op: dict[str, Any] = {"insert": content if isinstance(content, str) else to_json(content)}
        if attrs:
            op["attributes"] = to_json(attrs)
        out.append(op)
    return out


# ---------------------------------------------------------------------- Quill delta -> Markdown


def _inline_markdown(content: str, attrs: dict[str, Any]) -> str:
    if not attrs or not content.strip():
        return content
    lead = content[: len(content) - len(content.lstrip())]
    trail = content[len(content.rstrip()) :]
    core = content.strip()
    if attrs.get("code"):
        core = f"`{core}`"
    if attrs.get("bold"):
        core = f"**{core}**"
    if attrs.get("italic"):
        core = f"_{core}_"
    if attrs.get("strike"):
        core = f"~~{core}~~"
    link = attrs.get("link")
    if isinstance(link, str):
        core = f"[{core}]({link})"
    return lead + core + trail


def _line_prefix(attrs: dict[str, Any], number: int) -> str:
    header = attrs.get("header")
    if isinstance(header, int | float) and 1 <= header <= 6:
        return "#" * int(header) + " "
    if attrs.get("list") == "bullet":
        return "- "
    if attrs.get("list") == "ordered":
        return f"{number}. "
    if attrs.get("blockquote"):
        return "> "
    return ""


def delta_markdown(delta: list[dict[str, Any]]) -> str:
    """A Quill delta as Markdown: inline bold/italic/code/strike/link, and Quill's line
    formats (``header``, ``list``, ``blockquote`` on the ``"\\n"`` ending a line).

    Example:
        >>> delta_markdown([{"insert": "Title"}, {"insert": "\\n", "attributes": {"header": 1}},
        ...                 {"insert": "so "}, {"insert": "bold", "attributes": {"bold": True}}])
        '# Title\\nso **bold**'
    """
    lines: list[str] = []
    current: list[str] = []
    number = 0
    for op in delta:
        content, attrs = op.get("insert"), op.get("attributes") or {}
        if not isinstance(content, str):
            continue  # embeds have no Markdown form
        pieces = content.split("\n")
        for index, piece in enumerate(pieces):
            if piece:
                current.append(_inline_markdown(piece, attrs))
            if index < len(pieces) - 1:  # a newline ends the line; its attrs format the line
                number = number + 1 if attrs.get("list") == "ordered" else 0
                lines.append(_line_prefix(attrs, number) + "".join(current))
                current = []
    lines.append("".join(current))
    return "\n".join(lines)


# ---------------------------------------------------------------------- ProseMirror tree


@dataclass(frozen=True, slots=True)
class _Mark:
    type: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def eq(self, other: _Mark) -> bool:
        return self.type == other.type and self.attrs == other.attrs


@dataclass(slots=True)
class _Node:
    type: str
    attrs: dict[str, Any] = field(default_factory=dict)
    content: list[_Node] = field(default_factory=list)
    text: str | None = None
    marks: list[_Mark] = field(default_factory=list)

    @property
    def is_text(self) -> bool:
        return self.text is not None

    @property
    def text_content(self) -> str:
        if self.text is not None:
            return self.text
        parts, stack = [], list(reversed(self.content))
        while stack:
            node = stack.pop()
            if node.text is not None:
                parts.append(node.text)
            else:
                stack.extend(reversed(node.content))
        return "".join(parts)


# TipTap's names for the basic schema's nodes and marks
_ALIASES: Final[dict[str, str]] = {
    "bulletList": "bullet_list",
    "orderedList": "ordered_list",
    "listItem": "list_item",
    "codeBlock": "code_block",
    "horizontalRule": "horizontal_rule",
    "hardBreak": "hard_break",
    "bold": "strong",
    "italic": "em",
    "s": "strike",
}
_MARK_RANK: Final[dict[str, int]] = {"link": 0, "em": 1, "strong": 2, "strike": 3, "code": 4}
"""Mark order (ProseMirror sorts a node's marks by schema rank: the basic schema's order, with
GFM strike before code, which must stay innermost)."""
_TIPTAP_MARK_RANK: Final[dict[str, int]] = {
    "link": 0,
    "bold": 1,
    "code": 2,
    "italic": 3,
    "strike": 4,
}
"""Marks named the TipTap way (``bold``, ``italic``, ``strike``) rank as StarterKit orders
them (Link, priority 1000, first)."""
_TIPTAP_ONLY: Final = frozenset({"bold", "italic", "strike"})
_INLINE_LEAVES: Final = frozenset({"hard_break", "image"})
_BLOCK_LEAVES: Final = frozenset({"horizontal_rule"})
_TEXTBLOCKS: Final = frozenset({"paragraph", "heading", "code_block"})
_HASHED_MARK = re.compile(r"(.*)(--[a-zA-Z0-9+/=]{8})$", re.DOTALL)


def _canonical(name: str) -> str:
    return _ALIASES.get(name, name)


def _sorted_marks(marks: list[_Mark]) -> list[_Mark]:
    ranks = _TIPTAP_MARK_RANK if any(m.type in _TIPTAP_ONLY for m in marks) else _MARK_RANK
    last = len(ranks)
    return sorted(
        marks, key=lambda m: (ranks.get(m.type, ranks.get(_canonical(m.type), last)), m.type)
    )


def _marks(attrs: dict[str, Any] | None) -> list[_Mark]:
    out = []
    for key, value in (attrs or {}).items():
        match = _HASHED_MARK.match(key)
        name = match.group(1) if match else key
        mark_attrs = to_json(value) if isinstance(value, dict) else {}
        out.append(_Mark(name, mark_attrs))
    return _sorted_marks(out)


def _tree(node: Any, depth: int) -> _Node:
    """A y-prosemirror fragment/element as a ProseMirror-shaped tree (``depth`` bounded)."""
    inner = _deeper(depth)
    if isinstance(node, pycrdt.XmlElement):
        pairs = list(node.attributes.__iter__())  # typed Iterable, not Iterator, in pycrdt
        # None: null or undefined (TipTap's unset attrs) -- ProseMirror JSON would drop these
        attrs = {key: to_json(value, inner) for key, value in pairs if value is not None}
        out = _Node(node.tag or "", {k: attrs[k] for k in sorted(attrs)})
    else:
        out = _Node("doc")
    for child in node.children:
        if isinstance(child, pycrdt.XmlText):
            for content, formats in child.diff():
                if not isinstance(content, str) or not content:
                    continue  # y-prosemirror never embeds in XmlText
                marks = _marks(formats)
                last = out.content[-1] if out.content else None
                if last is not None and last.is_text and last.marks == marks:
                    last.text = (last.text or "") + content  # ProseMirror joins equal text nodes
                else:
                    out.content.append(_Node("text", text=content, marks=marks))
        elif isinstance(child, pycrdt.XmlElement):
            out.content.append(_tree(child, inner))
    return out


def _node_json(node: _Node) -> dict[str, Any]:
    out: dict[str, Any] = {"type": node.type}
    if node.attrs:
        out["attrs"] = node.attrs
    if node.content:
        out["content"] = [_node_json(child) for child in node.content]
    if node.marks:
        out["marks"] = [
            {"type": m.type, "attrs": m.attrs} if m.attrs else {"type": m.type} for m in node.marks
        ]
    if node.text is not None:
        out["text"] = node.text
    return out


def prosemirror_json(fragment: pycrdt.XmlFragment | pycrdt.XmlElement, depth: int = 0) -> Any:
    """The ProseMirror JSON of a y-prosemirror fragment, like
    ``yXmlFragmentToProseMirrorRootNode(fragment, schema).toJSON()`` (attributes as stored:
    y-prosemirror stores every non-null attr, so schema defaults are present; marks sorted by
    the basic schema's rank).

    Raises:
        RenderError: ``too-deep`` beyond :data:`MAX_DEPTH`.

    Example:
        >>> d = pycrdt.Doc()
        >>> f = d.get("prosemirror", type=pycrdt.XmlFragment)
        >>> p = f.children.append(pycrdt.XmlElement("paragraph"))
        >>> t = p.children.append(pycrdt.XmlText("hi"))
        >>> prosemirror_json(f)["content"]
        [{'type': 'paragraph', 'content': [{'type': 'text', 'text': 'hi'}]}]
    """
    return _node_json(_tree(fragment, depth))


def _is_textblock(node: _Node) -> bool:
    name = _canonical(node.type)
    if name in _TEXTBLOCKS:
        return True
    if name in _INLINE_LEAVES or name in _BLOCK_LEAVES or node.is_text:
        return False
    return any(c.is_text or _canonical(c.type) in _INLINE_LEAVES for c in node.content)


def _is_inline(node: _Node) -> bool:
    return node.is_text or _canonical(node.type) in _INLINE_LEAVES


# ---------------------------------------------------------------------- HTML (DOMSerializer)


def _esc_text(s: str) -> str:
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")
    )


def _esc_attr(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")


def _js_string(value: Any) -> str:
    """``String(value)`` as JavaScript would write an attribute value."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        value = _number(value)
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join("" if v is None else _js_string(v) for v in value)
    return str(value)


def _open_tag(tag: str, attrs: dict[str, Any] | None = None) -> str:
    rendered = "".join(
        f' {name}="{_esc_attr(_js_string(value))}"'
        for name, value in (attrs or {}).items()
        if value is not None
    )
    return f"<{tag}{rendered}>"


def _heading_level(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= 6:
        return int(value)
    return 1


def _node_tags(node: _Node) -> tuple[str, str] | None:
    """Open and close tags of a node (basic + list schema, TipTap names too); None: content only."""
    name = _canonical(node.type)
    if name == "paragraph":
        return "<p>", "</p>"
    if name == "heading":
        level = _heading_level(node.attrs.get("level"))
        return f"<h{level}>", f"</h{level}>"
    if name == "blockquote":
        return "<blockquote>", "</blockquote>"
    if name == "code_block":
        language = node.attrs.get("language")
        code = _open_tag("code", {"class": f"language-{language}"} if language else None)
        return "<pre>" + code, "</code></pre>"
    if name == "bullet_list":
        return "<ul>", "</ul>"
    if name == "ordered_list":
        order = node.attrs.get("order", node.attrs.get("start", 1))
        return (_open_tag("ol", {"start": order}) if order != 1 else "<ol>"), "</ol>"
    if name == "list_item":
        return "<li>", "</li>"
    return None


def _leaf_html(node: _Node) -> str | None:
    name = _canonical(node.type)
    if name == "horizontal_rule":
        return "<hr>"
    if name == "hard_break":
        return "<br>"
    if name == "image":
        a = node.attrs
        return _open_tag("img", {"src": a.get("src"), "alt": a.get("alt"), "title": a.get("title")})
    return None


_SCRIPT_URL = re.compile(r"(?:java|vb)script:|data:(?!image/)", re.IGNORECASE)
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")


def _safe_href(href: Any) -> Any:
    """A link target as TipTap's Link renders it: ``''`` for a script URL (``javascript:``,
    ``vbscript:``, a non-image ``data:``; browsers ignore ASCII whitespace and controls inside
    the scheme), so an exported page opened outside our sandbox runs nothing on a click.

    Example:
        >>> _safe_href(" jav\tascript:alert(1)"), _safe_href("https://example.com/")
        ('', 'https://example.com/')
    """
    if isinstance(href, str) and _SCRIPT_URL.match(_URL_NOISE.sub("", href)):
        return ""
    return href


def _mark_tags(mark: _Mark) -> tuple[str, str] | None:
    name = _canonical(mark.type)
    if name == "link":
        attrs = {"href": _safe_href(mark.attrs.get("href")), "title": mark.attrs.get("title")}
        return _open_tag("a", attrs), "</a>"
    simple = {"em": "em", "strong": "strong", "code": "code", "strike": "s", "underline": "u"}
    if name in simple:
        return f"<{simple[name]}>", f"</{simple[name]}>"
    return None


def _html_fragment(nodes: list[_Node], out: list[str]) -> None:
    # DOMSerializer.serializeFragment: marks shared with the previous node stay open
    active: list[tuple[_Mark, str]] = []
    for node in nodes:
        if active or node.marks:
            keep = rendered = 0
            while keep < len(active) and rendered < len(node.marks):
                following = node.marks[rendered]
                if _mark_tags(following) is None:
                    rendered += 1
                    continue
                if not following.eq(active[keep][0]):
                    break
                keep += 1
                rendered += 1
            while keep < len(active):
                out.append(active.pop()[1])
            while rendered < len(node.marks):
                add = node.marks[rendered]
                rendered += 1
                tags = _mark_tags(add)
                if tags is not None:
                    active.append((add, tags[1]))
                    out.append(tags[0])
        if node.is_text:
            out.append(_esc_text(node.text or ""))
            continue
        leaf = _leaf_html(node)
        if leaf is not None:
            out.append(leaf)
            continue
        tags = _node_tags(node)
        if tags is not None:
            out.append(tags[0])
        _html_fragment(node.content, out)
        if tags is not None:
            out.append(tags[1])
    while active:
        out.append(active.pop()[1])


def pm_html(fragment: pycrdt.XmlFragment) -> str:
    """HTML of a y-prosemirror fragment, as ProseMirror's ``DOMSerializer.serializeFragment``
    writes it for the basic + list schema (TipTap names map to the same tags; ``strike`` is
    ``<s>``, a code block's ``language`` becomes ``class="language-…"``, as TipTap does).

    Raises:
        RenderError: ``too-deep`` beyond :data:`MAX_DEPTH`.

    Example:
        >>> d = pycrdt.Doc()
        >>> f = d.get("default", type=pycrdt.XmlFragment)
        >>> h = f.children.append(pycrdt.XmlElement("heading", {"level": 2.0}))
        >>> h.children.append(pycrdt.XmlText("A & B")).format(0, 1, {"bold": {}})
        >>> pm_html(f)
        '<h2><strong>A</strong> &amp; B</h2>'
    """
    out: list[str] = []
    _html_fragment(_tree(fragment, 0).content, out)
    return "".join(out)


# ---------------------------------------------------------------------- plain text


def pm_text(fragment: pycrdt.XmlFragment) -> str:
    """Plain text, as ProseMirror's ``doc.textBetween(0, doc.content.size, "\\n", "\\n")``.

    Example:
        >>> d = pycrdt.Doc()
        >>> f = d.get("default", type=pycrdt.XmlFragment)
        >>> for word in ("one", "two"):
        ...     _ = f.children.append(pycrdt.XmlElement("paragraph", None, [pycrdt.XmlText(word)]))
        >>> pm_text(f)
        'one\\ntwo'
    """
    parts: list[str] = []
    first = True
    stack = list(reversed(_tree(fragment, 0).content))
    while stack:
        node = stack.pop()
        if node.is_text:
            parts.append(node.text or "")
            continue
        leaf = not node.content and (
            _canonical(node.type) in _INLINE_LEAVES or _canonical(node.type) in _BLOCK_LEAVES
        )
        text = "\n" if leaf else ""
        block = not _is_inline(node)
        if block and (leaf or _is_textblock(node)):
            if first:
                first = False
            else:
                parts.append("\n")
        parts.append(text)
        stack.extend(reversed(node.content))
    return "".join(parts)


# ---------------------------------------------------------------------- Markdown


_WORD: Final = re.compile(r"[A-Za-z0-9_]")


def _repeat(s: str, n: Any) -> str:
    count = _number(float(n)) if isinstance(n, int | float) and not isinstance(n, bool) else 0
    return s * max(0, min(int(count or 0), 6))


def _backticks_for(node: _Node, side: int) -> str:
    length = 0
    if node.is_text:
        for match in re.finditer(r"`+", node.text or ""):
            length = max(length, len(match.group(0)))
    result = " `" if length > 0 and side > 0 else "`"
    result += "`" * length
    if length > 0 and side < 0:
        result += " "
    return result


def _is_plain_url(link: _Mark, parent: _Node, index: int) -> bool:
    href = link.attrs.get("href")
    if (
        link.attrs.get("title")
        or not isinstance(href, str)
        or not re.match(r"[A-Za-z0-9_]+:", href)
    ):
        return False
    content = parent.content[index]
    if (
        not content.is_text
        or content.text != href
        or not content.marks
        or content.marks[-1] != link
    ):
        return False
    return index == len(parent.content) - 1 or not any(
        m.eq(link) for m in parent.content[index + 1].marks
    )


_Open = Callable[["_Markdown", _Mark, _Node, int], str]


@dataclass(frozen=True, slots=True)
class _MarkSpec:
    open: str | _Open
    close: str | _Open
    mixable: bool = False
    expel: bool = False
    escape: bool = True


def _link_open(state: _Markdown, mark: _Mark, parent: _Node, index: int) -> str:
    state.in_autolink = _is_plain_url(mark, parent, index)
    return "<" if state.in_autolink else "["


def _link_close(state: _Markdown, mark: _Mark, parent: _Node, index: int) -> str:
    in_autolink = state.in_autolink
    state.in_autolink = None
    if in_autolink:
        return ">"
    href = re.sub(r'[()"]', lambda m: "\\" + m.group(0), _js_string(mark.attrs.get("href")))
    title = mark.attrs.get("title")
    titled = f' "{_js_string(title).replace(chr(34), chr(92) + chr(34))}"' if title else ""
    return "](" + href + titled + ")"


_MARKS: Final[dict[str, _MarkSpec]] = {
    "em": _MarkSpec("*", "*", mixable=True, expel=True),
    "strong": _MarkSpec("**", "**", mixable=True, expel=True),
    "strike": _MarkSpec("~~", "~~", mixable=True, expel=True),
    "link": _MarkSpec(_link_open, _link_close, mixable=True),
    "code": _MarkSpec(
        lambda _s, _m, parent, index: _backticks_for(parent.content[index], -1),
        lambda _s, _m, parent, index: _backticks_for(parent.content[index - 1], 1),
        escape=False,
    ),
}
_BLANK_MARK: Final = _MarkSpec("", "", mixable=True)


class _Markdown:
    """A port of prosemirror-markdown's ``MarkdownSerializerState`` (1.13) with the
    ``defaultMarkdownSerializer`` node table; unknown nodes and marks are not strict (their
    content is rendered, the mark ignored)."""

    def __init__(self) -> None:
        self.delim = ""
        self.out = ""
        self.closed: _Node | None = None
        self.in_autolink: bool | None = None
        self.at_block_start = False
        self.in_tight_list = False
        self.tight_lists = False

    def mark(self, name: str) -> _MarkSpec:
        return _MARKS.get(_canonical(name), _BLANK_MARK)

    def flush_close(self, size: int = 2) -> None:
        if self.closed is not None:
            if not self.at_blank():
                self.out += "\n"
            if size > 1:
                delim_min = self.delim.rstrip()
                for _ in range(1, size):
                    self.out += delim_min + "\n"
            self.closed = None

    def wrap_block(self, delim: str, first: str | None, node: _Node, f: Callable[[], None]) -> None:
        old = self.delim
        self.write(first if first is not None else delim)
        self.delim += delim
        f()
        self.delim = old
        self.close_block(node)

    def at_blank(self) -> bool:
        return not self.out or self.out[-1] == "\n"

    def write(self, content: str = "") -> None:
        self.flush_close()
        if self.delim and self.at_blank():
            self.out += self.delim
        self.out += content

    def close_block(self, node: _Node) -> None:
        self.closed = node

    def text(self, text: str, escape: bool = True) -> None:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            self.write()
            if not escape and line[:1] == "[" and re.search(r"(^|[^\\])!$", self.out[-2:]):
                self.out = self.out[:-1] + "\\!"
            self.out += self.esc(line, self.at_block_start) if escape else line
            if i != len(lines) - 1:
                self.out += "\n"

    def esc(self, s: str, start_of_line: bool = False) -> str:
        def one(m: re.Match[str]) -> str:
            ch, i = m.group(0), m.start()
            if ch == "_" and 0 < i < len(s) - 1 and _WORD.match(s[i - 1]) and _WORD.match(s[i + 1]):
                return ch
            return "\\" + ch

        s = re.sub(r"[`*\\~\[\]_]", one, s)
        if start_of_line:
            s = re.sub(r"^(\+ |[\-*>])", lambda m: "\\" + m.group(0), s, count=1)
            s = re.sub(r"^(\s*)(#{1,6})(\s|\Z)", r"\1\\\2\3", s, count=1)
            s = re.sub(r"^(\s*[0-9]+)\.\s", r"\1\\. ", s, count=1)
        return s

    def render(self, node: _Node, parent: _Node, index: int, depth: int) -> None:
        inner = _deeper(depth)
        name = _canonical(node.type)
        attrs = node.attrs
        if name == "blockquote":
            self.wrap_block("> ", None, node, lambda: self.render_content(node, inner))
        elif name == "code_block":
            text = node.text_content
            runs = sorted(re.findall(r"`{3,}", text))
            fence = runs[-1] + "`" if runs else "```"
            params = attrs.get("params") or attrs.get("language") or ""
            self.write(fence + _js_string(params) + "\n")
            self.text(text, False)
            self.write("\n")
            self.write(fence)
            self.close_block(node)
        elif name == "heading":
            self.write(_repeat("#", attrs.get("level")) + " ")
            self.render_inline(node, False)
            self.close_block(node)
        elif name == "horizontal_rule":
            self.write(_js_string(attrs.get("markup") or "---"))
            self.close_block(node)
        elif name == "bullet_list":
            bullet = _js_string(attrs.get("bullet") or "*")
            self.render_list(node, "  ", lambda _i: bullet + " ", inner)
        elif name == "ordered_list":
            start_value = attrs.get("order", attrs.get("start"))
            start = int(start_value) if isinstance(start_value, int | float) else 1
            width = len(str(start + len(node.content) - 1))
            space = " " * (width + 2)

            def number(i: int) -> str:
                n = str(start + i)
                return " " * (width - len(n)) + n + ". "

            self.render_list(node, space, number, inner)
        elif name == "list_item":
            self.render_content(node, inner)
        elif name == "paragraph":
            self.render_inline(node)
            self.close_block(node)
        elif name == "image":
            src = re.sub(r"[()]", lambda m: "\\" + m.group(0), _js_string(attrs.get("src") or ""))
            title = attrs.get("title")
            titled = f' "{_js_string(title).replace(chr(34), chr(92) + chr(34))}"' if title else ""
            alt = self.esc(_js_string(attrs.get("alt") or ""))
            self.write("![" + alt + "](" + src + titled + ")")
        elif name == "hard_break":
            for following in parent.content[index + 1 :]:
                if following.type != node.type:
                    self.write("\\\n")
                    return
        elif node.is_text:
            self.text(node.text or "", not self.in_autolink)
        elif name not in _INLINE_LEAVES and name not in _BLOCK_LEAVES:
            if _is_textblock(node):
                self.render_inline(node)
            else:
                self.render_content(node, inner)
            if not _is_inline(node):
                self.close_block(node)

    def render_content(self, parent: _Node, depth: int) -> None:
        for i, node in enumerate(parent.content):
            self.render(node, parent, i, depth)

    def render_list(self, node: _Node, delim: str, first: Callable[[int], str], depth: int) -> None:
        if self.closed is not None and self.closed.type == node.type:
            self.flush_close(3)
        elif self.in_tight_list:
            self.flush_close(1)
        tight = attrs_tight if isinstance(attrs_tight := node.attrs.get("tight"), bool) else None
        is_tight = tight if tight is not None else self.tight_lists
        previous = self.in_tight_list
        self.in_tight_list = is_tight
        for i, child in enumerate(node.content):
            if i and is_tight:
                self.flush_close(1)

            def item(child: _Node = child, i: int = i) -> None:
                self.render(child, node, i, depth)

            self.wrap_block(delim, first(i), node, item)
        self.in_tight_list = previous

    def mark_string(self, mark: _Mark, opening: bool, parent: _Node, index: int) -> str:
        spec = self.mark(mark.type)
        value = spec.open if opening else spec.close
        return value if isinstance(value, str) else value(self, mark, parent, index)

    def is_mark_ahead(self, parent: _Node, index: int, marks: list[_Mark]) -> bool:
        while True:
            if index >= len(parent.content):
                return False
            following = parent.content[index]
            if _canonical(following.type) != "hard_break":
                return len(following.marks) >= len(marks) and all(
                    a.eq(b) for a, b in zip(following.marks, marks, strict=False)
                )
            index += 1

    def render_inline(self, parent: _Node, from_block_start: bool = True) -> None:
        self.at_block_start = from_block_start
        active: list[_Mark] = []
        trailing = ""
        count = len(parent.content)

        def progress(node: _Node | None, index: int) -> None:
            nonlocal trailing, active
            marks = list(node.marks) if node is not None else []
            if node is not None and _canonical(node.type) == "hard_break":

                def stays(m: _Mark) -> bool:
                    if index + 1 == count:
                        return False
                    following = parent.content[index + 1]
                    return any(m.eq(x) for x in following.marks) and (
                        not following.is_text or bool(re.search(r"\S", following.text or ""))
                    )

                marks = [m for m in marks if stays(m)]
            inner = marks[-1] if marks else None
            no_esc = inner is not None and not self.mark(inner.type).escape
            length = len(marks) - (1 if no_esc else 0)

            i = 0
            while i < length:  # reorder mixable marks to match the open ones
                mark = marks[i]
                if not self.mark(mark.type).mixable:
                    break
                for j, other in enumerate(active):
                    if not self.mark(other.type).mixable:
                        break
                    if mark.eq(other):
                        if i > j:
                            marks = [*marks[:j], mark, *marks[j:i], *marks[i + 1 : length]]
                        elif j > i:
                            marks = [*marks[:i], *marks[i + 1 : j], mark, *marks[j:length]]
                        break
                i += 1

            keep = 0
            while keep < min(len(active), length) and marks[keep].eq(active[keep]):
                keep += 1

            leading = trailing
            trailing = ""
            if (
                node is not None
                and node.is_text
                and any(
                    self.mark(m.type).expel and not any(a.eq(m) for a in active[:keep])
                    for m in marks
                )
            ):
                found = re.match(r"^(\s*)(.*)$", node.text or "", re.M)
                lead, rest = (found.group(1), found.group(2)) if found else ("", node.text or "")
                if lead:
                    leading += lead
                    node = _Node("text", text=rest, marks=node.marks) if rest else None
                    if node is None:
                        marks = active
            if (
                node is not None
                and node.is_text
                and any(
                    self.mark(m.type).expel
                    and not self.is_mark_ahead(parent, index + 1, marks[: k + 1])
                    for k, m in enumerate(marks)
                )
            ):
                found = re.match(r"^(.*?)(\s*)$", node.text or "", re.M)
                rest, trail = (found.group(1), found.group(2)) if found else (node.text or "", "")
                if trail:
                    trailing = trail
                    node = _Node("text", text=rest, marks=node.marks) if rest else None
                    if node is None:
                        marks = active

            if node is not None or index == count:
                while keep < len(active):
                    self.text(self.mark_string(active.pop(), False, parent, index), False)
            if leading:
                self.text(leading)
            if node is not None:
                while len(active) < length:
                    add = marks[len(active)]
                    active.append(add)
                    self.text(self.mark_string(add, True, parent, index), False)
                    self.at_block_start = False
                if no_esc and node.is_text and inner is not None:
                    self.text(
                        self.mark_string(inner, True, parent, index)
                        + (node.text or "")
                        + self.mark_string(inner, False, parent, index + 1),
                        False,
                    )
                else:
                    self.render(node, parent, index, 0)
                self.at_block_start = False

        for index, node in enumerate(parent.content):
            progress(node, index)
        progress(None, count)
        self.at_block_start = False


def pm_markdown(fragment: pycrdt.XmlFragment, *, tight_lists: bool = False) -> str:
    """Markdown of a y-prosemirror fragment, as prosemirror-markdown's
    ``defaultMarkdownSerializer.serialize(doc)`` writes it (plus ``strike`` as GFM ``~~``).

    Raises:
        RenderError: ``too-deep`` beyond :data:`MAX_DEPTH`.

    Example:
        >>> d = pycrdt.Doc()
        >>> f = d.get("default", type=pycrdt.XmlFragment)
        >>> p = f.children.append(pycrdt.XmlElement("paragraph"))
        >>> p.children.append(pycrdt.XmlText("so bold")).format(3, 7, {"strong": {}})
        >>> pm_markdown(f)
        'so **bold**'
    """
    state = _Markdown()
    state.tight_lists = tight_lists
    doc = _tree(fragment, 0)
    stack = [doc]
    while stack:  # Markdown needs code innermost: the basic schema's mark order, always
        node = stack.pop()
        node.marks.sort(key=lambda m: (_MARK_RANK.get(_canonical(m.type), len(_MARK_RANK)), m.type))
        stack.extend(node.content)
    state.render_content(doc, 0)
    return state.out


# ---------------------------------------------------------------------- one entry point


def render(doc: pycrdt.Doc[Any], name: str, kind: str, fmt: str) -> str:
    """Render root ``name`` (of ``kind``) of a fresh ``doc`` in ``fmt`` (see :data:`FORMATS`).

    Raises:
        RenderError: ``bad-format`` if ``kind`` has no such format; ``too-deep``.

    Example:
        >>> d = pycrdt.Doc()
        >>> d["m"] = pycrdt.Map({"a": pycrdt.Array([1.0, "x"])})
        >>> render(d, "m", "map", "json")
        '{\\n  "a": [\\n    1,\\n    "x"\\n  ]\\n}\\n'
    """
    if fmt not in FORMATS.get(kind, ()):
        choices = ", ".join(FORMATS.get(kind, ()))
        raise RenderError("bad-format", f"a {kind} root exports as {choices}, not {fmt}")
    root = root_of(doc, name, kind)
    if kind == "text":
        if fmt == "text":
            return str(root)
        if fmt == "markdown":
            return delta_markdown(text_delta(root))
        if fmt == "delta":
            return json.dumps(text_delta(root), ensure_ascii=False)
        return json.dumps(str(root), ensure_ascii=False) + "\n"
    if kind == "xml":
        if fmt == "html":
            return pm_html(root)
        if fmt == "markdown":
            return pm_markdown(root)
        if fmt == "text":
            return pm_text(root)
    return json.dumps(to_json(root), ensure_ascii=False, indent=2) + "\n"


def main_root(kinds: dict[str, ExportKind], prefer: str = "codemirror") -> tuple[str, ExportKind]:
    """The root an export shows when none is named: ``prefer`` (the page's shared text) if the
    document has it, else TipTap's ``default`` or y-prosemirror's ``prosemirror`` fragment,
    else the first XML fragment, text, map, array (by name); ``prefer`` as text when empty.

    Example:
        >>> main_root({"default": "xml", "meta": "map"})
        ('default', 'xml')
    """
    if prefer in kinds:
        return prefer, kinds[prefer]
    for name in ("default", "prosemirror"):
        if kinds.get(name) == "xml":
            return name, "xml"
    for kind in ("xml", "text", "map", "array"):
        names = sorted(n for n, k in kinds.items() if k == kind)
        if names:
            return names[0], kind
    return prefer, "text"


@dataclass(frozen=True, slots=True)
class Export:
    """What :func:`export_update` rendered."""

    data: bytes
    "The rendered root."
    media_type: str
    "Its HTTP media type (:data:`MEDIA_TYPES`)."
    root: str
    "The root rendered."
    kind: ExportKind
    "Its inferred kind."
    format: str
    "The format used."


def export_update(
    update: bytes, root: str | None = None, fmt: str | None = None, prefer: str = "codemirror"
) -> Export:
    """Render one root of a document given as a Yjs V1 update (``fmt`` ``yjs`` gives the
    update back). Pure and thread-safe: it loads its own ``pycrdt.Doc``.

    Raises:
        NotFoundError: ``no-root`` if ``root`` is not in the document.
        RenderError: ``bad-format``, ``too-deep``.
        ProtocolError: ``bad-update``.

    Example:
        >>> d = pycrdt.Doc()
        >>> d["notes"] = pycrdt.Text("hello")
        >>> e = export_update(d.get_update())
        >>> e.root, e.kind, e.format, e.data
        ('notes', 'text', 'text', b'hello')
    """
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    try:
        doc.apply_update(update)
    except ValueError as exc:
        raise ProtocolError("bad-update", str(exc)) from None
    kinds = root_kinds(doc)
    if root is None:
        name, kind = main_root(kinds, prefer)
    elif root in kinds:
        name, kind = root, kinds[root]
    else:
        raise NotFoundError("no-root", f"the document has no root named {root!r}")
    fmt = fmt or default_format(kind)
    if fmt == "yjs":
        return Export(bytes(update), MEDIA_TYPES["yjs"], name, kind, fmt)
    if fmt not in MEDIA_TYPES:
        raise RenderError("bad-format", f"unknown format {fmt!r}: {', '.join(MEDIA_TYPES)}")
    text = render(doc, name, kind, fmt)
    return Export(text.encode("utf-8", "surrogatepass"), MEDIA_TYPES[fmt], name, kind, fmt)


def pm_blocks(fragment: pycrdt.XmlFragment) -> list[tuple[str, str]]:
    """The fragment's text blocks and block leaves as ``(type, text)``, in document order
    (TipTap names canonical: ``bulletList`` → ``bullet_list``); a list item or blockquote counts
    through its paragraphs. For diff summaries.

    Example:
        >>> d = pycrdt.Doc()
        >>> f = d.get("default", type=pycrdt.XmlFragment)
        >>> _ = f.children.append(pycrdt.XmlElement("paragraph", None, [pycrdt.XmlText("hi")]))
        >>> _ = f.children.append(pycrdt.XmlElement("horizontalRule"))
        >>> pm_blocks(f)
        [('paragraph', 'hi'), ('horizontal_rule', '')]
    """
    out: list[tuple[str, str]] = []
    stack = list(reversed(_tree(fragment, 0).content))
    while stack:
        node = stack.pop()
        if _is_inline(node):
            continue
        if _is_textblock(node) or not node.content:
            out.append((_canonical(node.type), node.text_content))
        else:
            stack.extend(reversed(node.content))
    return out


def pm_marked_runs(fragment: pycrdt.XmlFragment) -> list[tuple[str, tuple[str, ...]]]:
    """Every text run carrying marks, as ``(text, mark descriptions)``. For diff summaries."""
    out: list[tuple[str, tuple[str, ...]]] = []
    stack = [_tree(fragment, 0)]
    while stack:
        node = stack.pop()
        if node.is_text and node.marks:
            described = tuple(
                json.dumps([_canonical(m.type), m.attrs], sort_keys=True) for m in node.marks
            )
            out.append((node.text or "", described))
        stack.extend(reversed(node.content))
    return out


def roots_json(update: bytes, declared: dict[str, str] | None = None) -> dict[str, Any]:
    """JSON of every root of a document given as a Yjs V1 update: the ``declared`` roots
    (``name -> kind``, e.g. the page's shared text) and those inferred from the items. Texts
    are strings, maps/arrays JSON, XML fragments ProseMirror JSON. Pure and thread-safe.

    Raises:
        RenderError: ``too-deep`` beyond :data:`MAX_DEPTH`.

    Example:
        >>> d = pycrdt.Doc()
        >>> d["meta"] = pycrdt.Map({"n": 1.0})
        >>> roots_json(d.get_update(), {"codemirror": "text"})
        {'codemirror': '', 'meta': {'n': 1}}
    """
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    kinds: dict[str, str] = dict(declared or {})
    kinds.update(root_kinds(doc))
    return {
        name: to_json(root_of(doc, name, kind))
        for name, kind in sorted(kinds.items())
        if kind in _ROOT_TYPES
    }
