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
from typing import Any

from collab.document import DEFAULT_TEXT, Document, delete_text, insert_text

__all__ = ["restore_into", "text_diff"]


def _edit_text(text: Any, current: str, target: str) -> None:
    """Turn ``current`` into ``target`` with minimal delete/insert runs (code points)."""
    matcher = difflib.SequenceMatcher(a=current, b=target, autojunk=False)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag in ("delete", "replace"):
            delete_text(text, i1, i2 - i1)
        if tag in ("insert", "replace"):
            insert_text(text, i1, target[j1:j2])


def restore_into(document: Document, old: Document, text_name: str = DEFAULT_TEXT) -> None:
    """Edit ``document`` (one transaction, origin ``"restore"``) until it matches ``old``.

    Example:
        >>> now, then = Document(), Document()
        >>> then.text().insert(0, "first draft")
        >>> now.text().insert(0, "second draft!")
        >>> restore_into(now, then); str(now.text())
        'first draft'
    """
    kinds = dict(old.roots)
    kinds.setdefault(text_name, "text")
    for name, kind in document.roots.items():
        kinds.setdefault(name, kind)
    with document.transaction(origin="restore"):
        for name, kind in sorted(kinds.items()):
            if kind == "text":
                _edit_text(document.text(name), str(document.text(name)), str(old.text(name)))
            elif kind == "map":
                target, wanted = document.map(name), old.map(name).to_py() or {}
                for key in [k for k in (target.to_py() or {}) if k not in wanted]:
                    del target[key]
                for key, value in wanted.items():
                    if key not in target or target.get(key) != value:
                        target[key] = value
            else:
                array, items = document.array(name), old.array(name).to_py() or []
                if array.to_py() != items:
                    del array[0 : len(array)]
                    array.extend(items)


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
