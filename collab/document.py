"""A Yjs document for the sync layer: a thin, strict wrapper around :class:`pycrdt.Doc`.

:class:`Document` owns one ``pycrdt.Doc`` created with a random **31-bit** client id (pycrdt's
default ~52-bit ids make every update ~30 % larger, see the performance notes). It adds what
the sync engine and the archival replica need:

* ``apply_update(update, origin)`` that maps pycrdt's errors (``ValueError`` and Rust panics)
  to :class:`collab.errors.ProtocolError` ``bad-update``;
* one observer API, :meth:`Document.observe`, that calls ``callback(update, origin)`` for every
  committed transaction that changed the document (remote or local). Yrs does not fire for
  no-op updates (duplicates), which is what makes relaying terminate;
* :meth:`Document.transaction` for batched local edits (keep them modest: tens to hundreds of
  edits; huge pycrdt transactions are pathological);
* root-type helpers (:meth:`text`, :meth:`map`, :meth:`array`) that remember which roots the
  document holds, so :meth:`to_json` can render every one of them for convergence checks;
* code-point text helpers (:func:`insert_text`, :func:`delete_text`, :func:`format_text`):
  **pycrdt indexes text in UTF-8 bytes** (Yjs in UTF-16 units, editing traces in code
  points); these helpers take code-point positions and convert.

Origins are tracked by this wrapper (not via pycrdt's hashed origins): anything passed as
``origin`` is handed back verbatim to observers; edits made outside :meth:`transaction` /
:meth:`apply_update` report origin ``None`` (local).

Example:
    >>> doc = Document()
    >>> seen = []
    >>> handle = doc.observe(lambda update, origin: seen.append(origin))
    >>> with doc.transaction(origin="me"):
    ...     doc.text().insert(0, "hi")
    >>> other = Document()
    >>> other.apply_update(doc.get_update(), origin="peer")
    >>> str(other.text()), seen
    ('hi', ['me'])
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal

import pycrdt

from collab.errors import ProtocolError

__all__ = [
    "Document",
    "Observer",
    "RootKind",
    "delete_text",
    "format_text",
    "insert_text",
    "random_client_id",
]

log = logging.getLogger(__name__)

DEFAULT_TEXT: Final = "codemirror"
"""Name of the shared text y-codemirror (and our web page) binds to."""

RootKind = Literal["text", "map", "array"]
"""The root types :class:`Document` knows how to render."""

Observer = Callable[[bytes, Any], None]
"""``callback(update, origin)``; must not raise (enqueue only)."""

_ROOT_TYPES: Final[dict[str, Any]] = {
    "text": pycrdt.Text,
    "map": pycrdt.Map,
    "array": pycrdt.Array,
}


def random_client_id() -> int:
    """A random non-zero 31-bit Yjs client id (what Yjs itself uses: ``random.uint32`` range).

    Example:
        >>> 0 < random_client_id() < 2**31
        True
    """
    return secrets.randbelow(2**31 - 1) + 1


def _is_panic(exc: BaseException) -> bool:
    # pyo3 turns Rust panics into pyo3_runtime.PanicException (a BaseException subclass).
    return type(exc).__name__ == "PanicException"


class Document:
    """One shared Yjs document (see the module docstring).

    Args:
        client_id: the Yjs client id; a random 31-bit id by default. Never reuse an id
            concurrently (and not after a restart unless every own update was persisted).
        roots: root types to declare up front, e.g. ``{"codemirror": "text"}``.

    Example:
        >>> doc = Document(roots={"codemirror": "text", "meta": "map"})
        >>> doc.map("meta")["title"] = "notes"
        >>> doc.to_json()
        {'codemirror': '', 'meta': {'title': 'notes'}}
    """

    def __init__(
        self, *, client_id: int | None = None, roots: dict[str, RootKind] | None = None
    ) -> None:
        self._ydoc: pycrdt.Doc[Any] = pycrdt.Doc(
            client_id=random_client_id() if client_id is None else client_id
        )
        self._roots: dict[str, RootKind] = {}
        self._observers: dict[int, Observer] = {}
        self._next_handle = 0
        self._origin: Any = None
        self._subscription = self._ydoc.observe(self._on_transaction)
        for name, kind in (roots or {}).items():
            self._declare(name, kind)

    # ------------------------------------------------------------------ identity / raw access

    @property
    def client_id(self) -> int:
        """This replica's Yjs client id."""
        return int(self._ydoc.client_id)

    @property
    def ydoc(self) -> pycrdt.Doc[Any]:
        """The wrapped ``pycrdt.Doc`` (edit through :meth:`transaction` to keep origins)."""
        return self._ydoc

    @property
    def roots(self) -> dict[str, RootKind]:
        """Declared root types, ``name -> kind`` (a copy)."""
        return dict(self._roots)

    # ------------------------------------------------------------------ updates

    def apply_update(self, update: bytes, origin: Any = None) -> None:
        """Apply a Yjs V1 update; observers see it with ``origin``.

        Duplicates and already-known updates are no-ops (no observer call). Updates whose
        dependencies are missing are kept pending by Yrs and integrate later.

        Raises:
            ProtocolError: ``bad-update`` if pycrdt cannot decode or integrate it. Note that
                pycrdt ignores trailing bytes after a valid update.

        Example:
            >>> a, b = Document(), Document()
            >>> a.text().insert(0, "x")
            >>> b.apply_update(a.get_update())
            >>> str(b.text())
            'x'
        """
        previous = self._origin
        self._origin = origin
        try:
            with self._ydoc.transaction():
                self._ydoc.apply_update(bytes(update))
        except ValueError as e:
            raise ProtocolError("bad-update", str(e)) from None
        except BaseException as e:
            if _is_panic(e):
                raise ProtocolError("bad-update", f"pycrdt panicked: {e}") from None
            raise
        finally:
            self._origin = previous

    def get_update(self, state_vector: bytes | None = None) -> bytes:
        """Everything this document has that a peer with ``state_vector`` lacks.

        Raises:
            ProtocolError: ``bad-state-vector`` if pycrdt rejects ``state_vector``.
        """
        try:
            return bytes(self._ydoc.get_update(state_vector))
        except ValueError as e:
            raise ProtocolError("bad-state-vector", str(e)) from None
        except BaseException as e:
            if _is_panic(e):
                raise ProtocolError("bad-state-vector", f"pycrdt panicked: {e}") from None
            raise

    def state_vector(self) -> bytes:
        """The encoded Yjs state vector."""
        return bytes(self._ydoc.get_state())

    @contextmanager
    def transaction(self, origin: Any = None) -> Iterator[None]:
        """Batch local edits into one transaction (one update, one observer call).

        Nested use joins the outer transaction (and its origin).

        Example:
            >>> doc = Document()
            >>> with doc.transaction(origin="typing"):
            ...     doc.text().insert(0, "a")
            ...     doc.text().insert(1, "b")
        """
        if self._ydoc._txn is not None:  # nested: pycrdt reuses the open transaction
            with self._ydoc.transaction():
                yield
            return
        previous = self._origin
        self._origin = origin
        try:
            with self._ydoc.transaction():
                yield
        finally:
            self._origin = previous

    # ------------------------------------------------------------------ observers

    def observe(self, callback: Observer) -> int:
        """Call ``callback(update, origin)`` after every transaction that changed the doc.

        The callback runs inside the commit: it must not raise and must not edit the
        document (enqueue the update and return). Exceptions are logged and re-raised by
        pycrdt from the edit that triggered them.

        Returns:
            A handle for :meth:`unobserve`.
        """
        handle = self._next_handle
        self._next_handle += 1
        self._observers[handle] = callback
        return handle

    def unobserve(self, handle: int) -> None:
        """Remove an observer added by :meth:`observe` (unknown handles are ignored)."""
        self._observers.pop(handle, None)

    def _on_transaction(self, event: pycrdt.TransactionEvent) -> None:
        update = event.update
        if update == b"\x00\x00":
            return
        origin = self._origin
        for callback in list(self._observers.values()):
            try:
                callback(update, origin)
            except Exception:
                log.exception("document observer %r failed", callback)
                raise

    # ------------------------------------------------------------------ root types

    def _declare(self, name: str, kind: RootKind) -> Any:
        known = self._roots.get(name)
        if known is not None and known != kind:
            raise ValueError(f"root {name!r} is a {known}, not a {kind}")
        self._roots[name] = kind
        return self._ydoc.get(name, type=_ROOT_TYPES[kind])

    def text(self, name: str = DEFAULT_TEXT) -> pycrdt.Text:
        """The root ``Text`` called ``name`` (created/declared on first use).

        Remember pycrdt indexes are UTF-8 byte offsets; see :func:`insert_text`.
        """
        text: pycrdt.Text = self._declare(name, "text")
        return text

    def map(self, name: str) -> pycrdt.Map[Any]:
        """The root ``Map`` called ``name``."""
        m: pycrdt.Map[Any] = self._declare(name, "map")
        return m

    def array(self, name: str) -> pycrdt.Array[Any]:
        """The root ``Array`` called ``name``."""
        a: pycrdt.Array[Any] = self._declare(name, "array")
        return a

    def to_json(self) -> dict[str, Any]:
        """JSON of every declared root: text as ``str``, maps/arrays via ``to_py()``.

        Roots that arrived in updates but were never declared are skipped (their type is
        unknown until someone declares it, exactly as in Yjs).
        """
        out: dict[str, Any] = {}
        for name, kind in sorted(self._roots.items()):
            root = self._ydoc.get(name, type=_ROOT_TYPES[kind])
            out[name] = str(root) if kind == "text" else root.to_py()
        return out


# ---------------------------------------------------------------------- code-point text edits


def _byte_offset(s: str, index: int) -> int:
    if index < 0 or index > len(s):
        raise IndexError(f"text index {index} out of range 0..{len(s)}")
    if s.isascii():
        return index
    return len(s[:index].encode("utf-8"))


def insert_text(
    text: pycrdt.Text, index: int, value: str, attrs: dict[str, Any] | None = None
) -> None:
    """Insert ``value`` at code-point ``index`` (pycrdt itself counts UTF-8 bytes).

    Example:
        >>> doc = Document()
        >>> insert_text(doc.text(), 0, "a😀b")
        >>> insert_text(doc.text(), 2, "X")
        >>> str(doc.text())
        'a😀Xb'
    """
    text.insert(_byte_offset(str(text), index), value, attrs)


def delete_text(text: pycrdt.Text, index: int, length: int) -> None:
    """Delete ``length`` code points starting at code-point ``index``.

    Example:
        >>> doc = Document()
        >>> insert_text(doc.text(), 0, "a😀b")
        >>> delete_text(doc.text(), 1, 1)
        >>> str(doc.text())
        'ab'
    """
    s = str(text)
    start = _byte_offset(s, index)
    stop = _byte_offset(s, index + length)
    if stop > start:
        del text[start:stop]


def format_text(text: pycrdt.Text, index: int, length: int, attrs: dict[str, Any]) -> None:
    """Apply formatting ``attrs`` to ``length`` code points from code-point ``index``."""
    s = str(text)
    start = _byte_offset(s, index)
    stop = _byte_offset(s, index + length)
    if stop > start:
        text.format(start, stop, attrs)
