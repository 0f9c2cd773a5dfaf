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
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import pycrdt

from collab.document import DEFAULT_TEXT, Document, RootKind
from collab.errors import NotFoundError
from collab.storage.base import Version

__all__ = [
    "apply_text_edits",
    "find_version",
    "plan_text_edits",
    "restore_into",
    "restore_into_async",
    "text_diff",
]


REFINE_LIMIT = 4000
"""Changed line blocks up to this many characters are refined to character-level edits."""

TextEdit = tuple[int, int, str]
"""``(start, end, replacement)`` in code points of the current text."""


def plan_text_edits(current: str, target: str) -> list[TextEdit]:
    """Edits turning ``current`` into ``target``, last first (so earlier offsets stay valid).

    Lines are matched first (cheap even for large texts); changed blocks of modest size are
    refined by characters, so a one-word change stays a one-word edit.

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
    lines = difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        if tag == "equal":
            continue
        start, end = offsets[i1], offsets[i2]
        old_block, new_block = current[start:end], "".join(b_lines[j1:j2])
        if tag == "replace" and len(old_block) + len(new_block) <= REFINE_LIMIT:
            chars = difflib.SequenceMatcher(a=old_block, b=new_block, autojunk=False)
            for t2, k1, k2, l1, l2 in chars.get_opcodes():
                if t2 != "equal":
                    edits.append((start + k1, start + k2, new_block[l1:l2]))
        else:
            edits.append((start, end, new_block))
    edits.sort(key=lambda edit: edit[0], reverse=True)
    return edits


def apply_text_edits(text: pycrdt.Text, current: str, edits: list[TextEdit]) -> None:
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


def _prelim(value: Any) -> Any:
    """A fresh copy of a value read from another document (nested Y types stay Y types)."""
    if isinstance(value, pycrdt.Map):
        return pycrdt.Map({key: _prelim(item) for key, item in value.items()})
    if isinstance(value, pycrdt.Array):
        return pycrdt.Array([_prelim(item) for item in value])
    if isinstance(value, pycrdt.Text):
        return pycrdt.Text(str(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, pycrdt.Map | pycrdt.Array):
        return value.to_py()
    if isinstance(value, pycrdt.Text):
        return str(value)
    return value


def _root_kinds(document: Document, old: Document, text_name: str) -> dict[str, RootKind]:
    kinds: dict[str, RootKind] = dict(old.roots)
    kinds.setdefault(text_name, "text")
    for name, kind in document.roots.items():
        kinds.setdefault(name, kind)
    return kinds


def _restore(
    document: Document,
    old: Document,
    kinds: dict[str, RootKind],
    plans: dict[str, tuple[str, list[TextEdit]]],
) -> None:
    with document.transaction(origin="restore"):
        for name, kind in sorted(kinds.items()):
            if kind == "text":
                current, edits = plans[name]
                apply_text_edits(document.text(name), current, edits)
            elif kind == "map":
                target, source = document.map(name), old.map(name)
                wanted = dict(source.items())
                for key in [k for k in target.keys() if k not in wanted]:  # noqa: SIM118
                    del target[key]
                for key, value in wanted.items():
                    if key not in target or _plain(target.get(key)) != _plain(value):
                        target[key] = _prelim(value)
            else:
                array, source_array = document.array(name), old.array(name)
                if array.to_py() != source_array.to_py():
                    del array[0 : len(array)]
                    array.extend([_prelim(item) for item in source_array])


def restore_into(document: Document, old: Document, text_name: str = DEFAULT_TEXT) -> None:
    """Edit ``document`` (one transaction, origin ``"restore"``) until it matches ``old``.

    Texts get minimal edits (formatting attributes are not restored); maps get the old keys
    (unchanged values, including nested Y types, are left alone); arrays that differ get the
    old items. Roots of other kinds (e.g. XML fragments) are not restored.

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
    """:func:`restore_into` with the text diffs computed in a worker thread (large documents
    never stall the event loop); the edits are applied on the caller's thread."""
    kinds = _root_kinds(document, old, text_name)
    texts = {
        name: (str(document.text(name)), str(old.text(name)))
        for name, kind in kinds.items()
        if kind == "text"
    }

    def plan_all() -> dict[str, tuple[str, list[TextEdit]]]:
        return {name: (a, plan_text_edits(a, b)) for name, (a, b) in texts.items()}

    plans = await anyio.to_thread.run_sync(plan_all)
    for name, (current, _) in plans.items():
        if str(document.text(name)) != current:  # edited meanwhile: plan again, on this thread
            plans[name] = (
                str(document.text(name)),
                plan_text_edits(str(document.text(name)), texts[name][1]),
            )
    _restore(document, old, kinds, plans)


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


def text_diff(before: str, after: str, before_label: str, after_label: str) -> str:
    """A unified diff of two texts.

    Example:
        >>> print(text_diff("a\\nb\\n", "a\\nc\\n", "v1", "v2"), end="")
        --- v1
        +++ v2
        @@ -1,2 +1,2 @@
         a
        -b
        +c
    """
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=before_label,
            tofile=after_label,
        )
    )
