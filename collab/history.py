"""Document history helpers: restore a document to an older state as a new change, and diff texts.

Pure functions over :class:`collab.document.Document` (no network, no storage), used by the
archival replica's restore and by the offline ``collab restore``/``collab diff`` commands.

Example:
    >>> now, then = Document(), Document()
    >>> then.text().insert(0, "first draft")
    >>> now.text().insert(0, "second draft!")
    >>> restore_into(now, then); str(now.text())
    'first draft'
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import anyio
import anyio.to_thread
import pycrdt

from collab import render
from collab.document import DEFAULT_TEXT, Document, RootKind
from collab.errors import NotFoundError, ProtocolError
from collab.render import MAX_DEPTH, RenderError, to_json
from collab.storage.base import Version

__all__ = [
    "DIFF_BUDGET",
    "BoundedMatcher",
    "DiffBudget",
    "RootDiff",
    "apply_text_edits",
    "diff_root",
    "find_version",
    "plan_text_edits",
    "restore_into",
    "restore_into_async",
    "text_diff",
]


REFINE_LIMIT = 4000
"""Changed line blocks up to this many characters are refined to character-level edits."""

DIFF_BUDGET = 2_000_000
"""Most element comparisons one diff (all its :class:`BoundedMatcher` s) may spend, ~1-2 s of
one core (a 200,000-line text with a few scattered changes needs ~0.7 million). ``difflib``
is quadratic on repeated elements (20,000 identical lines: ~70 s) and superlinear on nested
blocks; documents are peer input, so past the budget a diff falls back to replacing the
whole changed middle (still exact, only less minimal)."""

RESTORE_BUDGET = 200_000
"""The budget of the edits a restore plans on the event loop (nested texts, arrays, XML
children): ~0.1-0.2 s at most, then whole runs are replaced."""


class DiffBudget:
    """Element comparisons left to the matchers of one diff (shared between them).

    Example:
        >>> budget = DiffBudget(10)
        >>> budget.charge(4); budget.left
        6
    """

    def __init__(self, limit: int = DIFF_BUDGET) -> None:
        self.left = limit
        self.exhausted = False
        "Some matcher ran out and fell back to a coarse diff."

    def charge(self, cost: int) -> None:
        """Spend ``cost``; raises :class:`_OverBudget` once the budget is gone."""
        self.left -= cost
        if self.left < 0:
            self.exhausted = True
            raise _OverBudget


class _OverBudget(Exception):
    """Internal: a matcher ran out of budget (caught by :class:`BoundedMatcher`)."""


_BUDGET: ContextVar[DiffBudget | None] = ContextVar("collab_history_budget", default=None)
"""The budget of the restore being planned (see :func:`_restore`)."""

Opcode = tuple[Literal["replace", "delete", "insert", "equal"], int, int, int, int]


class BoundedMatcher(difflib.SequenceMatcher[Any]):
    """``difflib.SequenceMatcher`` whose :meth:`get_opcodes` costs at most a budget.

    The common prefix and suffix are matched first (linear); the middle is matched by difflib
    while every ``find_longest_match`` is charged its inner-loop work up front. Out of budget,
    the middle becomes one ``replace``: the opcodes still turn ``a`` into ``b`` exactly. Only
    :meth:`get_opcodes` and :meth:`get_grouped_opcodes` are meant to be used.

    Example:
        >>> m = BoundedMatcher(["x"] * 3000 + ["a"], ["b"] + ["x"] * 3000, DiffBudget(10_000))
        >>> m.get_opcodes(), m.coarse  # difflib alone: 9 million steps
        ([('replace', 0, 3001, 0, 3001)], True)
        >>> BoundedMatcher("one two", "one 2").get_opcodes()
        [('equal', 0, 4, 0, 4), ('replace', 4, 7, 4, 5)]
    """

    def __init__(
        self,
        a: Sequence[Any],
        b: Sequence[Any],
        budget: DiffBudget | None = None,
        autojunk: bool = False,
    ) -> None:
        self.budget = budget or _BUDGET.get() or DiffBudget()
        self.coarse = False
        "The budget ran out: the changed middle is one replace."
        end = min(len(a), len(b))
        prefix = 0
        while prefix < end and a[prefix] == b[prefix]:
            prefix += 1
        suffix = 0
        while suffix < end - prefix and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]:
            suffix += 1
        self._sizes = (len(a), len(b), prefix, suffix)
        self._full: list[Opcode] | None = None
        mid_a, mid_b = a[prefix : len(a) - suffix], b[prefix : len(b) - suffix]
        try:
            self.budget.charge(len(mid_a) + len(mid_b))  # building b2j
        except _OverBudget:
            self.coarse = True
            mid_a, mid_b = [], []  # never matched
        self._mid = (len(a) - prefix - suffix, len(b) - prefix - suffix)
        super().__init__(None, mid_a, mid_b, autojunk)

    def find_longest_match(
        self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
    ) -> difflib.Match:
        a: Sequence[Any] = getattr(self, "a")  # noqa: B009 - set by difflib, untyped
        b2j: dict[Any, list[int]] = getattr(self, "b2j")  # noqa: B009
        ahi = len(a) if ahi is None else ahi
        bhi = len(getattr(self, "b")) if bhi is None else bhi  # noqa: B009
        # an upper bound of difflib's inner loop: every b position of every a element
        self.budget.charge(ahi - alo + sum(map(len, filter(None, map(b2j.get, a[alo:ahi])))))
        return super().find_longest_match(alo, ahi, blo, bhi)

    def get_opcodes(self) -> list[Opcode]:
        if self._full is not None:
            return self._full
        _, _, prefix, suffix = self._sizes
        mid_a, mid_b = self._mid
        inner: list[Opcode] = []
        if not self.coarse:
            try:
                inner = list(super().get_opcodes())
            except _OverBudget:
                self.coarse = True
        if self.coarse:
            tag: Literal["replace", "delete", "insert"] = (
                "replace" if mid_a and mid_b else "delete" if mid_a else "insert"
            )
            inner = [(tag, 0, mid_a, 0, mid_b)] if mid_a or mid_b else []
        out: list[Opcode] = []

        def add(op: Opcode) -> None:
            if op[1] == op[2] and op[3] == op[4]:
                return
            if out and op[0] == "equal" and out[-1][0] == "equal":
                last = out[-1]
                out[-1] = ("equal", last[1], op[2], last[3], op[4])
            else:
                out.append(op)

        add(("equal", 0, prefix, 0, prefix))
        for op, i1, i2, j1, j2 in inner:
            add((op, i1 + prefix, i2 + prefix, j1 + prefix, j2 + prefix))
        add(
            (
                "equal",
                prefix + mid_a,
                prefix + mid_a + suffix,
                prefix + mid_b,
                prefix + mid_b + suffix,
            )
        )
        self._full = out
        return out


TextEdit = tuple[int, int, str]
"""``(start, end, replacement)`` in code points of the current text."""


def plan_text_edits(current: str, target: str, budget: DiffBudget | None = None) -> list[TextEdit]:
    """Edits turning ``current`` into ``target``, last first (so earlier offsets stay valid).

    Lines are matched first (cheap even for large texts); changed blocks of modest size are
    refined by characters, so a one-word change stays a one-word edit. All of it costs at most
    ``budget`` (:data:`DIFF_BUDGET`): past it, changed blocks are replaced whole.

    Example:
        >>> plan_text_edits("one\\ntwo\\n", "one\\nTWO!\\n")
        [(4, 7, 'TWO!')]
    """
    a_lines = current.splitlines(keepends=True)
    b_lines = target.splitlines(keepends=True)
    offsets = [0]
    for line in a_lines:
        offsets.append(offsets[-1] + len(line))
    edits: list[TextEdit] = []
    lines = BoundedMatcher(a_lines, b_lines, budget)
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        if tag == "equal":
            continue
        start, end = offsets[i1], offsets[i2]
        old_block, new_block = current[start:end], "".join(b_lines[j1:j2])
        if tag == "replace" and len(old_block) + len(new_block) <= REFINE_LIMIT:
            chars = BoundedMatcher(old_block, new_block, lines.budget)
            for t2, k1, k2, l1, l2 in chars.get_opcodes():
                if t2 != "equal":
                    edits.append((start + k1, start + k2, new_block[l1:l2]))
        else:
            edits.append((start, end, new_block))
    edits.sort(key=lambda edit: edit[0], reverse=True)
    return edits


def apply_text_edits(
    text: pycrdt.Text | pycrdt.XmlText, current: str, edits: list[TextEdit]
) -> None:
    """Apply :func:`plan_text_edits` output to a pycrdt text holding ``current``.

    pycrdt indexes text by UTF-8 bytes; the byte offsets of every edit are computed in one pass.
    """
    positions = sorted({p for start, end, _ in edits for p in (start, end)})
    byte_at: dict[int, int] = {}
    done, total = 0, 0
    for position in positions:
        total += len(current[done:position].encode("utf-8", "surrogatepass"))
        byte_at[position] = total
        done = position
    for start, end, replacement in edits:  # last first
        if end > start:
            del text[byte_at[start] : byte_at[end]]
        if replacement:
            text.insert(byte_at[start], replacement)


def _byte_offsets(s: str, positions: list[int]) -> dict[int, int]:
    """UTF-8 byte offset of each code-point position (pycrdt indexes text in bytes)."""
    out: dict[int, int] = {}
    done, total = 0, 0
    for position in sorted(set(positions)):
        total += len(s[done:position].encode("utf-8", "surrogatepass"))
        out[position] = total
        done = position
    return out


Runs = list[tuple[Any, dict[str, Any]]]
"""A text's content as ``(str or embed, formatting attributes)`` runs (``Text.diff()``)."""


def _runs(text: pycrdt.Text | pycrdt.XmlText) -> Runs:
    return [(content, dict(attrs or {})) for content, attrs in text.diff()]


def _has_embeds(runs: Runs) -> bool:
    return any(not isinstance(content, str) for content, _ in runs)


def _restore_formatting(text: pycrdt.Text | pycrdt.XmlText, target: Runs) -> None:
    """Format ``text`` (whose characters already equal ``target``'s) like ``target``: every
    range whose attributes differ gets the old values, and ``None`` (Yjs: remove) for
    attributes the old version did not have."""
    current = _runs(text)
    s = "".join(content for content, _ in current)
    cuts: set[int] = {0, len(s)}
    for runs in (current, target):
        at = 0
        for content, _ in runs:
            at += len(content)
            cuts.add(at)
    bounds = sorted(cuts)

    def attrs_at(runs: Runs) -> list[dict[str, Any]]:
        out, index, end = [], 0, 0
        for start in bounds[:-1]:
            while index < len(runs) and end + len(runs[index][0]) <= start:
                end += len(runs[index][0])
                index += 1
            out.append(runs[index][1] if index < len(runs) else {})
        return out

    patches: list[tuple[int, int, dict[str, Any]]] = []
    for start, stop, now, then in zip(
        bounds[:-1], bounds[1:], attrs_at(current), attrs_at(target), strict=True
    ):
        if now == then:
            continue
        patch = {k: v for k, v in then.items() if now.get(k) != v}
        patch.update({k: None for k in now if k not in then})
        if patches and patches[-1][1] == start and patches[-1][2] == patch:
            patches[-1] = (patches[-1][0], stop, patch)
        else:
            patches.append((start, stop, patch))
    offsets = _byte_offsets(s, [p for start, stop, _ in patches for p in (start, stop)])
    for start, stop, patch in patches:
        text.format(offsets[start], offsets[stop], patch)


def _rewrite_text(text: pycrdt.Text | pycrdt.XmlText, target: Runs) -> None:
    """Replace the whole content with ``target`` runs (texts holding embeds)."""
    del text[0 : len(text)]
    for content, attrs in target:
        if isinstance(content, str):
            text.insert(len(text), content, attrs or None)
        else:
            text.insert_embed(len(text), _prelim(content), attrs or None)


def _restore_text(
    text: pycrdt.Text | pycrdt.XmlText, target: Runs, plan: tuple[str, list[TextEdit]] | None
) -> None:
    """Edit ``text`` into ``target`` (minimal character edits, then formatting)."""
    if _has_embeds(target) or _has_embeds(_runs(text)):
        if _runs(text) != target:
            _rewrite_text(text, target)
        return
    wanted = "".join(content for content, _ in target)
    current = "".join(content for content, _ in _runs(text))  # str(XmlText) is markup
    if plan is None or plan[0] != current:
        plan = (current, plan_text_edits(current, wanted))
    apply_text_edits(text, plan[0], plan[1])
    _restore_formatting(text, target)


def _check_depth(depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise RenderError("too-deep", f"document nested deeper than {MAX_DEPTH} levels")
    return depth + 1


def _prelim(value: Any, depth: int = 0) -> Any:
    """A fresh copy of a value read from another document (nested Y types stay Y types;
    a nested text keeps its characters, an XML fragment nested in a map is not copied)."""
    if isinstance(value, pycrdt.Map):
        inner = _check_depth(depth)
        return pycrdt.Map({key: _prelim(item, inner) for key, item in value.items()})
    if isinstance(value, pycrdt.Array):
        inner = _check_depth(depth)
        return pycrdt.Array([_prelim(item, inner) for item in value])
    if isinstance(value, pycrdt.Text):
        return pycrdt.Text(str(value))
    if isinstance(value, pycrdt.XmlFragment | pycrdt.XmlElement | pycrdt.XmlText):
        return None
    return value


def _signature(value: Any, depth: int = 0) -> str:
    """A comparable form of a value; a too-deep one (a vandal's) equals nothing."""
    try:
        return json.dumps(to_json(value, depth), sort_keys=True)
    except RenderError:
        return f"too-deep {id(value)}"


def _same(a: Any, b: Any) -> bool:
    return _signature(a) == _signature(b)


def _restore_map(target: pycrdt.Map[Any], source: pycrdt.Map[Any], depth: int = 0) -> None:
    inner = _check_depth(depth)
    wanted = dict(source.items())
    for key in [k for k in target.keys() if k not in wanted]:  # noqa: SIM118
        del target[key]
    for key, value in wanted.items():
        present = target.get(key) if key in target else _MISSING
        if present is not _MISSING and _same(present, value):
            continue
        if isinstance(present, pycrdt.Map) and isinstance(value, pycrdt.Map):
            _restore_map(present, value, inner)
        elif isinstance(present, pycrdt.Array) and isinstance(value, pycrdt.Array):
            _restore_array(present, value, inner)
        elif isinstance(present, pycrdt.Text) and isinstance(value, pycrdt.Text):
            _restore_text(present, _runs(value), None)
        else:
            target[key] = _prelim(value, inner)


_MISSING: Any = object()


def _restore_array(target: pycrdt.Array[Any], source: pycrdt.Array[Any], depth: int = 0) -> None:
    """Replace the runs of items that differ (unchanged items, nested types included, stay)."""
    inner = _check_depth(depth)
    have = [_signature(item, inner) for item in target]
    want_items = list(source)
    want = [_signature(item, inner) for item in want_items]
    matcher = BoundedMatcher(have, want)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        if i2 > i1:
            del target[i1:i2]
        # last first, each at i1: Yrs finds an index by walking the blocks before it, and a
        # run inserted front to back walks every item just inserted (20,000 items: ~44 s)
        for item in reversed(want_items[j1:j2]):
            target.insert(i1, _prelim(item, inner))


def _copy_xml(
    parent: pycrdt.XmlFragment | pycrdt.XmlElement, index: int, node: Any, depth: int
) -> None:
    """Insert a copy of XML node ``node`` (from another document) at ``parent.children[index]``."""
    inner = _check_depth(depth)
    if isinstance(node, pycrdt.XmlText):
        text = parent.children.insert(index, pycrdt.XmlText())
        for content, attrs in node.diff():
            if isinstance(content, str):
                text.insert(len(text), content, attrs or None)
        return
    if not isinstance(node, pycrdt.XmlElement):
        return
    element = parent.children.insert(index, pycrdt.XmlElement(node.tag or ""))
    for key, value in list(node.attributes.__iter__()):
        if value is not None:  # null/undefined: "unset" for y-prosemirror (it never stores null)
            element.attributes[key] = value
    for position, child in enumerate(node.children):
        _copy_xml(element, position, child, inner)


def _restore_children(
    target: pycrdt.XmlFragment | pycrdt.XmlElement,
    source: pycrdt.XmlFragment | pycrdt.XmlElement,
    depth: int,
) -> None:
    """Children that differ are edited in place when they pair up with an old child of the
    same shape (same element name: attributes and children restored recursively; texts: minimal
    edits and marks), else replaced by copies of the old ones. y-prosemirror applies the result
    like any remote change, and a collaborator's cursor in an unchanged node stays put."""
    inner = _check_depth(depth)
    have = [_signature(_wrap(child)) for child in target.children]
    old = list(source.children)
    want = [_signature(_wrap(child)) for child in old]
    matcher = BoundedMatcher(have, want)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for offset in reversed(range(i2 - i1)):
                _restore_child(target, i1 + offset, old[j1 + offset], inner)
            continue
        if i2 > i1:
            del target.children[i1:i2]
        for child in reversed(old[j1:j2]):  # last first, each at i1 (see _restore_array)
            _copy_xml(target, i1, child, inner)


def _restore_child(
    parent: pycrdt.XmlFragment | pycrdt.XmlElement, index: int, old: Any, depth: int
) -> None:
    current = parent.children[index]
    if isinstance(current, pycrdt.XmlText) and isinstance(old, pycrdt.XmlText):
        _restore_text(current, _runs(old), None)
    elif (
        isinstance(current, pycrdt.XmlElement)
        and isinstance(old, pycrdt.XmlElement)
        and current.tag == old.tag
    ):
        wanted = {k: v for k, v in list(old.attributes.__iter__()) if v is not None}
        for key, _ in list(current.attributes.__iter__()):
            if key not in wanted:
                del current.attributes[key]
        for key, value in wanted.items():
            if current.attributes.get(key) != value:
                current.attributes[key] = value
        _restore_children(current, old, depth)
    else:
        del parent.children[index]
        _copy_xml(parent, index, old, depth)


def _restore_xml(target: pycrdt.XmlFragment, source: pycrdt.XmlFragment) -> None:
    """Exact: see :func:`_restore_children`."""
    _restore_children(target, source, 0)


def _wrap(node: Any) -> Any:
    """A node's JSON signature: elements as ProseMirror JSON, texts as their formatted runs."""
    if isinstance(node, pycrdt.XmlText):
        return [[content, attrs] for content, attrs in _runs(node)]
    return node


def _infer(updates: list[bytes]) -> list[dict[str, RootKind]]:
    out: list[dict[str, RootKind]] = []
    for update in updates:
        try:
            out.append(dict(render.infer_kinds(update)))
        except ProtocolError:
            out.append({})  # our own documents decode; a bad one restores its declared roots
    return out


def _root_kinds(
    document: Document,
    old: Document,
    text_name: str,
    inferred: list[dict[str, RootKind]] | None = None,
) -> dict[str, RootKind]:
    if inferred is None:
        inferred = _infer([old.get_update(), document.get_update()])
    kinds: dict[str, RootKind] = {}
    for found in inferred:
        for name, kind in found.items():
            kinds.setdefault(name, kind)
    for doc in (old, document):
        for name, kind in doc.roots.items():
            kinds.setdefault(name, kind)
    kinds.setdefault(text_name, "text")
    return kinds


def _root(document: Document, name: str, kind: RootKind) -> Any:
    if kind == "xml":
        return document.xml(name)
    return getattr(document, kind)(name)


def _restore(
    document: Document,
    old: Document,
    kinds: dict[str, RootKind],
    plans: dict[str, tuple[str, list[TextEdit]]],
) -> None:
    # refuse too-deep versions before editing anything (a restore is all or nothing)
    for name, kind in kinds.items():
        if kind != "text":
            to_json(_root(old, name, kind))  # the current side may be deep: it is replaced
    token = _BUDGET.set(DiffBudget(RESTORE_BUDGET))  # the matchers below run on the caller's loop
    try:
        _edit(document, old, kinds, plans)
    finally:
        _BUDGET.reset(token)


def _edit(
    document: Document,
    old: Document,
    kinds: dict[str, RootKind],
    plans: dict[str, tuple[str, list[TextEdit]]],
) -> None:
    with document.transaction(origin="restore"):
        for name, kind in sorted(kinds.items()):
            target, source = _root(document, name, kind), _root(old, name, kind)
            if kind == "text":
                _restore_text(target, _runs(source), plans.get(name))
            elif kind == "map":
                _restore_map(target, source)
            elif kind == "array":
                _restore_array(target, source)
            else:
                _restore_xml(target, source)


def restore_into(document: Document, old: Document, text_name: str = DEFAULT_TEXT) -> None:
    """Edit ``document`` (one transaction, origin ``"restore"``) until it matches ``old``.

    Every root type is restored, whatever its kind (inferred from the items when not
    declared, see :func:`collab.render.infer_kinds`):

    * texts get minimal character edits, then their formatting attributes (Quill);
    * XML fragments (y-prosemirror: TipTap, ProseMirror) are edited node by node: a changed
      node that pairs with an old one of the same name gets its attributes and children
      restored (texts by minimal edits and marks), other runs are replaced by copies;
    * maps get the old keys, recursively (unchanged values, including nested Y types, stay);
    * arrays get the runs of items that differ replaced.

    Raises:
        ValueError: a root is declared with another kind than its items show.
        RenderError: (a ``ValueError``) the old version nests deeper than
            :data:`collab.render.MAX_DEPTH`.

    Example:
        >>> now, then = Document(), Document()
        >>> then.text().insert(0, "first draft")
        >>> now.text().insert(0, "second draft!")
        >>> restore_into(now, then); str(now.text())
        'first draft'
    """
    kinds = _root_kinds(document, old, text_name)
    plans = {}
    for name, kind in kinds.items():
        if kind == "text":
            current = str(document.text(name))
            plans[name] = (current, plan_text_edits(current, str(old.text(name))))
    _restore(document, old, kinds, plans)


async def restore_into_async(
    document: Document, old: Document, text_name: str = DEFAULT_TEXT
) -> None:
    """:func:`restore_into` with the root kinds and the text diffs computed in a worker thread
    (large documents never stall the event loop); the edits are applied on the caller's
    thread."""
    updates = [old.get_update(), document.get_update()]
    inferred = await anyio.to_thread.run_sync(_infer, updates)
    kinds = _root_kinds(document, old, text_name, inferred)
    texts = {
        name: (str(document.text(name)), str(old.text(name)))
        for name, kind in kinds.items()
        if kind == "text"
    }

    def plan_all() -> dict[str, tuple[str, list[TextEdit]]]:
        return {name: (a, plan_text_edits(a, b)) for name, (a, b) in texts.items()}

    plans = await anyio.to_thread.run_sync(plan_all)
    _restore(document, old, kinds, plans)  # a plan whose text moved meanwhile is redone


def find_version(versions: list[Version], room: str, at: str) -> Version:
    """A version by id (``"12"``) or the newest one at or before an ISO 8601 time.

    A ``+hh:mm`` offset that arrived as a space (an unencoded ``+`` in a query) is accepted.

    Raises:
        NotFoundError: no such version.
        ValueError: ``at`` is neither an id nor an ISO 8601 time.

    Example:
        >>> from collab.storage import Version
        >>> v = Version(3, "r", 10, 1700000000.0, "", [])
        >>> find_version([v], "r", "3").seq, find_version([v], "r", "2023-11-15T00:00Z").id
        (10, 3)
    """
    if at.isdigit():
        for version in versions:
            if version.id == int(at):
                return version
        raise NotFoundError("no-version", f"room {room!r} has no version {at}")
    text = at.strip().replace("Z", "+00:00")
    if len(text) > 6 and text[-6] == " " and text[-3] == ":":
        text = text[:-6] + "+" + text[-5:]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    when = moment.timestamp()
    earlier = [v for v in versions if v.created_at <= when]
    if not earlier:
        raise NotFoundError("no-version", f"room {room!r} has no version before {at}")
    return max(earlier, key=lambda v: (v.created_at, v.seq))


def text_diff(
    before: str,
    after: str,
    before_label: str,
    after_label: str,
    budget: DiffBudget | None = None,
) -> str:
    """A unified diff of two texts (``difflib.unified_diff``'s format), costing at most
    ``budget`` (:data:`DIFF_BUDGET`; past it the changed middle is shown replaced whole).

    Example:
        >>> print(text_diff("a\\nb\\n", "a\\nc\\n", "v1", "v2"), end="")
        --- v1
        +++ v2
        @@ -1,2 +1,2 @@
         a
        -b
        +c
        >>> print(text_diff("a\\nb", "a\\nc", "v1", "v2"), end="")
        --- v1
        +++ v2
        @@ -1,2 +1,2 @@
         a
        -b
        \\ No newline at end of file
        +c
        \\ No newline at end of file
    """
    a, b = _diff_lines(before), _diff_lines(after)
    out: list[str] = []

    def emit(prefix: str, lines: list[str]) -> None:
        for line in lines:
            out.append(prefix + line)
            if not line.endswith("\n"):  # only a text's last line: mark it as diff(1) does
                out.append("\n" + NO_NEWLINE)

    for group in BoundedMatcher(a, b, budget, autojunk=True).get_grouped_opcodes(3):
        if not out:
            out += [f"--- {before_label}\n", f"+++ {after_label}\n"]
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                emit(" ", a[i1:i2])
                continue
            emit("-", a[i1:i2])
            emit("+", b[j1:j2])
    return "".join(out)


NO_NEWLINE = "\\ No newline at end of file\n"
"""The marker a unified diff puts after a last line that has no newline (``patch`` reads it)."""


def _diff_lines(text: str) -> list[str]:
    """``text`` split after every ``\\n`` only (as diff(1) does; ``str.splitlines`` would also
    split at ``\\r``, form feeds and U+2028, which a diff line cannot show)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _range(start: int, stop: int) -> str:
    """A unified diff's range (``difflib._format_range_unified``)."""
    length = stop - start
    first = start + 1 if length else start
    return str(first) if length == 1 else f"{first},{length}"


_PLURALS: Final[dict[str, str]] = {
    "paragraph": "paragraphs",
    "heading": "headings",
    "code_block": "code blocks",
    "horizontal_rule": "rules",
    "image": "images",
}


@dataclass(frozen=True, slots=True)
class RootDiff:
    """What :func:`diff_root` found between two versions of one root."""

    root: str
    "The root compared."
    kind: str
    "Its kind (``text``, ``xml``, ``map``, ``array``)."
    diff: str
    "Unified diff of the rendered root (Markdown for XML, text, pretty JSON for maps/arrays)."
    summary: dict[str, Any]
    "Structural counts, e.g. ``{'paragraphs': {'added': 2, 'removed': 1}, 'marks_changed': 3}``."
    line: str
    "The summary in one line: ``paragraphs +2 -1, headings ~1, marks changed 3``."


def _fresh(document: Document | bytes) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(document if isinstance(document, bytes) else document.get_update())
    return doc


def _counted(a: list[Any], b: list[Any]) -> tuple[int, int]:
    """Items only in ``a`` and only in ``b`` (multisets)."""
    left, right = Counter(a), Counter(b)
    return sum((left - right).values()), sum((right - left).values())


def _block_summary(
    before: list[tuple[str, str]], after: list[tuple[str, str]], budget: DiffBudget
) -> dict[str, Any]:
    out: dict[str, dict[str, int]] = {}

    def bump(kind: str, what: str) -> None:
        name = _PLURALS.get(kind, kind.replace("_", " ") + "s")
        entry = out.setdefault(name, {"added": 0, "removed": 0, "changed": 0})
        entry[what] += 1

    matcher = BoundedMatcher(before, after, budget)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old, new = before[i1:i2], after[j1:j2]
        paired = min(len(old), len(new)) if tag == "replace" else 0
        for (old_kind, _), (new_kind, _) in zip(old[:paired], new[:paired], strict=True):
            if old_kind == new_kind:
                bump(old_kind, "changed")
            else:
                bump(old_kind, "removed")
                bump(new_kind, "added")
        for kind, _ in old[paired:]:
            bump(kind, "removed")
        for kind, _ in new[paired:]:
            bump(kind, "added")
    return dict(out)


def _summary_line(summary: dict[str, Any]) -> str:
    parts = []
    for name, value in summary.items():
        if isinstance(value, dict):
            signs = [
                f"{sign}{value[key]}"
                for key, sign in (("added", "+"), ("removed", "-"), ("changed", "~"))
                if value.get(key)
            ]
            if signs:
                parts.append(f"{name.replace('_', ' ')} {' '.join(signs)}")
        elif value:
            parts.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(parts) or "no changes"


def _text_summary(a: pycrdt.Text, b: pycrdt.Text, budget: DiffBudget) -> dict[str, Any]:
    before, after = str(a), str(b)
    edits = plan_text_edits(before, after, budget)
    lines_removed, lines_added = _counted(before.splitlines(), after.splitlines())
    runs_a = [json.dumps([c, f], sort_keys=True) for c, f in _runs(a) if f]
    runs_b = [json.dumps([c, f], sort_keys=True) for c, f in _runs(b) if f]
    gone, new = _counted(runs_a, runs_b)
    return {
        "characters": {
            "added": sum(len(replacement) for _, _, replacement in edits),
            "removed": sum(end - start for start, end, _ in edits),
        },
        "lines": {"added": lines_added, "removed": lines_removed},
        "formatting_changed": gone + new,
    }


def _map_summary(a: Any, b: Any) -> dict[str, Any]:
    old = a if isinstance(a, dict) else {}
    new = b if isinstance(b, dict) else {}
    return {
        "keys": {
            "added": len(new.keys() - old.keys()),
            "removed": len(old.keys() - new.keys()),
            "changed": sum(1 for k in old.keys() & new.keys() if old[k] != new[k]),
        }
    }


def _array_summary(a: Any, b: Any, budget: DiffBudget) -> dict[str, Any]:
    old = [json.dumps(x, sort_keys=True) for x in (a if isinstance(a, list) else [])]
    new = [json.dumps(x, sort_keys=True) for x in (b if isinstance(b, list) else [])]
    removed = added = 0
    matcher = BoundedMatcher(old, new, budget)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return {"items": {"added": added, "removed": removed}}


def diff_root(
    before: Document | bytes,
    after: Document | bytes,
    before_label: str,
    after_label: str,
    root: str | None = None,
    prefer: str = DEFAULT_TEXT,
) -> RootDiff:
    """Diff one root of two versions: a unified diff of its rendered form (Markdown for XML
    fragments, the text for texts, pretty JSON for maps and arrays) plus a structural summary
    (blocks added/removed/changed by type and marks changed for XML; characters, lines and
    formatting runs for texts; keys for maps; items for arrays).

    ``root=None`` picks the main root (:func:`collab.render.main_root`, ``prefer`` first).
    Versions may be given as Yjs V1 updates (then this runs fine in a worker thread).

    Raises:
        NotFoundError: ``no-root`` if neither version has ``root``.
        RenderError: (a ``ValueError``) a version nests too deeply to render.

    Example:
        >>> a, b = Document(), Document()
        >>> a.map("board")["x"] = 1.0
        >>> b.map("board")["x"] = 2.0
        >>> b.map("board")["y"] = 3.0
        >>> diff_root(a, b, "v1", "v2").line
        'keys +1 ~1'
    """
    old, new = _fresh(before), _fresh(after)
    budget = DiffBudget()
    kinds = {**render.root_kinds(old), **render.root_kinds(new)}
    if root is None:
        name, kind = render.main_root(kinds, prefer)
    elif root in kinds:
        name, kind = root, kinds[root]
    else:
        raise NotFoundError("no-root", f"neither version has a root named {root!r}")
    a, b = render.root_of(old, name, kind), render.root_of(new, name, kind)
    summary: dict[str, Any]
    if kind == "xml":
        rendered = render.pm_markdown(a), render.pm_markdown(b)
        summary = _block_summary(render.pm_blocks(a), render.pm_blocks(b), budget)
        gone, added = _counted(render.pm_marked_runs(a), render.pm_marked_runs(b))
        summary["marks_changed"] = gone + added
    elif kind == "text":
        rendered = str(a), str(b)
        summary = _text_summary(a, b, budget)
    else:
        json_a, json_b = render.to_json(a), render.to_json(b)
        rendered = (
            json.dumps(json_a, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            json.dumps(json_b, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
        )
        summary = (
            _map_summary(json_a, json_b)
            if kind == "map"
            else _array_summary(json_a, json_b, budget)
        )
    diff = text_diff(rendered[0], rendered[1], before_label, after_label, budget)
    return RootDiff(name, kind, diff, summary, _summary_line(summary))
