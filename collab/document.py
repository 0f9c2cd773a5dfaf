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
    >>> other.apply_update(doc.get_update(), origin="peer")  # integrated: True
    True
    >>> str(other.text()), seen
    ('hi', ['me'])
"""

from __future__ import annotations

import heapq
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pycrdt

from collab.errors import ProtocolError
from collab.lib0 import Decoder, write_var_uint
from collab.observers import Observers
from collab.yupdate import REF_SKIP, decode_structs, decode_update, read_state_vector

__all__ = [
    "Document",
    "Observer",
    "RootKind",
    "UpdateScan",
    "delete_text",
    "format_text",
    "insert_text",
    "random_client_id",
    "scan_update",
]

log = logging.getLogger(__name__)

DEFAULT_TEXT: Final = "codemirror"
"""Name of the shared text y-codemirror (and our web page) binds to."""

MAX_PARKED_UPDATES: Final = 10_000
"""Cap on the number of updates parked while waiting for missing dependencies (the sync layer
also bounds their bytes per room and per connection, see :class:`collab.sync.SyncOptions`)."""

RootKind = Literal["text", "map", "array", "xml"]
"""The root types :class:`Document` knows how to render (``xml``: ``Y.XmlFragment``)."""

Observer = Callable[[bytes, Any], None]
"""``callback(update, origin)``; must not raise (enqueue only)."""

_ROOT_TYPES: Final[dict[str, Any]] = {
    "text": pycrdt.Text,
    "map": pycrdt.Map,
    "array": pycrdt.Array,
    "xml": pycrdt.XmlFragment,
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


class _PycrdtErrors:
    """``with _PycrdtErrors(code):`` — pycrdt's ``ValueError`` and Rust panics become
    ``ProtocolError(code)``: the one place that knows how pycrdt fails (a class, not a
    generator-based context manager: it is on the per-update path)."""

    __slots__ = ("code",)

    def __init__(self, code: str) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, ValueError):
            raise ProtocolError(self.code, str(exc)) from None
        if _is_panic(exc):
            raise ProtocolError(self.code, f"pycrdt panicked: {exc}") from None


_BAD_UPDATE = _PycrdtErrors("bad-update")
_BAD_STATE_VECTOR = _PycrdtErrors("bad-state-vector")


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
        self._observers: Observers[Observer] = Observers()
        self._origin: Any = None
        self._changes = 0
        self._parked: dict[int, tuple[bytes, UpdateScan, Any]] = {}
        self._parked_bytes = 0
        self._parked_by_origin: dict[int, int] = {}
        self._park_counter = 0
        self._waiting: dict[int, list[tuple[int, int]]] = {}
        self._ready: list[int] = []
        self.stuck = 0
        "Parked updates given up on although all their dependencies were present."
        self.parked_dropped = 0
        "Parked updates dropped because of :data:`MAX_PARKED_UPDATES` (a counter)."
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

    def apply_update(
        self, update: bytes, origin: Any = None, *, scan: UpdateScan | None = None
    ) -> bool:
        """Apply a Yjs V1 update; observers see it with ``origin``. Returns False when (part
        of) it could not integrate yet and was parked.

        ``scan`` is the update's :func:`scan_update`, when the caller already has it (the sync
        layer scans large updates in a worker thread): it is then not scanned again.

        Duplicates and already-known updates are no-ops (no observer call). Updates whose
        dependencies are missing stay pending and integrate once the gap is filled.

        Yrs (pycrdt 0.14.13) sometimes never integrates its pending structs when several
        pending updates wait for the same gap (found by ``tests/sync/test_order.py``, e.g. one
        client's updates 0, 2, 3, 1 with 3 on another root type). So we also *park* every
        update that is not fully covered by our state vector after applying it, and re-apply
        parked updates whenever something new integrates (re-applying is idempotent).

        Raises:
            ProtocolError: ``bad-update`` if Yrs cannot decode it, or if it carries trailing
                bytes (pycrdt would ignore them): an update that Yrs does not re-encode to
                the same length is checked by the strict :func:`scan_update`.

        Example:
            >>> a, b = Document(), Document()
            >>> a.text().insert(0, "x")
            >>> b.apply_update(a.get_update())
            True
            >>> str(b.text())
            'x'
        """
        update = bytes(update)
        if scan is None:
            with _BAD_UPDATE:
                canonical = self._ydoc_reencode(update)
            if canonical != len(update):
                scan = scan_update(update)  # not canonical: check strictly (trailing bytes)
        changed = self._apply(update, origin)
        if changed and self._parked:
            self._retry_parked()
        if pycrdt.get_update(update, self.state_vector())[:1] != b"\x00":
            self._park(update, scan if scan is not None else scan_update(update), origin)
            return False
        return True

    def holds(self, update: bytes, state_vector: bytes | None = None) -> bool:
        """True when applying ``update`` would change nothing: every struct it carries is
        already integrated and it has no delete set (one Yrs call, no apply, no observers).

        The sync layer drops such updates on arrival (y-webrtc floods: every peer re-sends
        every update to all its connections). ``state_vector`` is ours, if already at hand.

        Raises:
            ProtocolError: ``bad-update`` if Yrs cannot decode it or it carries trailing
                bytes (the same strictness as :meth:`apply_update`).

        Example:
            >>> a, b = Document(), Document()
            >>> a.text().insert(0, "x")
            >>> b.holds(a.get_update()), a.holds(a.get_update())
            (False, True)
        """
        sv = self.state_vector() if state_vector is None else state_vector
        with _BAD_UPDATE:
            if pycrdt.get_update(update, sv) != b"\x00\x00":
                return False
            canonical = self._ydoc_reencode(update)
        if canonical != len(update):
            scan_update(update)  # not canonical: raises for trailing bytes
        return True

    def _state_dict(self) -> dict[int, int]:
        decoder = Decoder(self.state_vector())
        count = decoder.read_var_uint()
        return {decoder.read_var_uint(): decoder.read_var_uint() for _ in range(count)}

    @staticmethod
    def _ydoc_reencode(update: bytes) -> int:
        # Yrs decodes and re-encodes the whole update (fast, in Rust); a canonical update
        # comes back with the same length, so trailing garbage shows up as a difference.
        return len(pycrdt.get_update(update, b"\x00"))

    def _apply(self, update: bytes, origin: Any) -> bool:
        previous = self._origin
        self._origin = origin
        before = self._changes
        try:
            with _BAD_UPDATE:
                self._ydoc.apply_update(update)
        finally:
            self._origin = previous
        return self._changes != before

    def _covers(self, wanted: dict[int, int], have: dict[int, int] | None = None) -> bool:
        if not wanted:
            return True
        if have is None:
            have = self._state_dict()
        return all(have.get(client, 0) >= clock for client, clock in wanted.items())

    def _park(self, update: bytes, scan: UpdateScan, origin: Any) -> None:
        if len(self._parked) >= MAX_PARKED_UPDATES:
            self._unpark(min(self._parked))
            self.parked_dropped += 1
            log.warning("document: %d parked updates, dropped the oldest", MAX_PARKED_UPDATES)
        key = self._park_counter
        self._park_counter += 1
        self._parked[key] = (update, scan, origin)
        self._parked_bytes += len(update)
        self._parked_by_origin[id(origin)] = self._parked_by_origin.get(id(origin), 0) + len(update)
        self._wait(key, scan, self._state_dict())

    def _unpark(self, key: int) -> None:
        entry = self._parked.pop(key, None)
        if entry is None:
            return
        update, _scan, origin = entry
        self._parked_bytes -= len(update)
        left = self._parked_by_origin.get(id(origin), 0) - len(update)
        if left > 0:
            self._parked_by_origin[id(origin)] = left
        else:
            self._parked_by_origin.pop(id(origin), None)

    @property
    def parked_bytes(self) -> int:
        """Bytes of updates parked while waiting for missing dependencies."""
        return self._parked_bytes

    def parked_bytes_of(self, origin: Any) -> int:
        """Bytes parked that arrived with ``origin`` (e.g. one connection)."""
        return self._parked_by_origin.get(id(origin), 0)

    def parked_clients(self) -> set[int]:
        """Client ids that parked updates would add once they integrate."""
        out: set[int] = set()
        for _update, scan, _origin in self._parked.values():
            out.update(scan.ends)
        return out

    def discard_parked(self) -> int:
        """Drop every parked update (e.g. when a room is unloaded); returns how many."""
        count = len(self._parked)
        self._parked.clear()
        self._parked_by_origin.clear()
        self._parked_bytes = 0
        self._waiting.clear()
        self._ready.clear()
        return count

    def _wait(self, key: int, scan: UpdateScan, have: dict[int, int]) -> None:
        for client, clock in scan.needs.items():
            if have.get(client, 0) < clock:
                heapq.heappush(self._waiting.setdefault(client, []), (clock, key))
                return
        # every dependency is present but Yrs did not integrate it: retry once more later
        self._ready.append(key)

    def _retry_parked(self) -> None:
        # re-apply parked updates whose dependencies are now all present (targeted: an
        # index by (client, needed clock), so many parked updates do not cost O(n^2))
        while True:
            have = self._state_dict()
            ready, self._ready = self._ready, []
            for client, heap in self._waiting.items():
                while heap and heap[0][0] <= have.get(client, 0):
                    ready.append(heapq.heappop(heap)[1])
            progress = False
            for key in sorted(ready):
                entry = self._parked.get(key)
                if entry is None:
                    continue
                update, scan, origin = entry  # observers see the parked update's own origin
                if not self._covers(scan.ends, have) and self._apply(update, origin):
                    progress = True
                    have = self._state_dict()
                if self._covers(scan.ends, have):
                    self._unpark(key)
                elif any(have.get(c, 0) < n for c, n in scan.needs.items()):
                    self._wait(key, scan, have)
                else:
                    self.stuck += 1
                    self._unpark(key)
                    log.warning("document: update stays pending with all dependencies present")
            if not progress:
                return

    @property
    def parked(self) -> int:
        """Updates waiting for missing dependencies (see :meth:`apply_update`)."""
        return len(self._parked)

    def compact_own(self, merged: bytes) -> bytes:
        """``merged`` — a merge of this document's latest local updates, nothing of them
        sent yet — re-encoded from the document itself: the same changes, in fewer bytes.

        Yrs merges updates struct by struct (a keystroke stays a 5-byte item), while the
        document has squashed consecutive keystrokes into one item; a run of typing comes out
        several times smaller, and so cheaper for the sender, each relay, the store and every
        receiver. The result is the document's own structs from the run's first clock on
        (what a sync step 2 would send for them: items deleted since carry no content) plus
        exactly the run's delete set. It is returned only when ``merged`` holds structs of
        this client alone, no transaction is open and the re-encoding is smaller; else
        ``merged`` comes back as is.

        Raises:
            ProtocolError: ``bad-update`` if ``merged`` is malformed.

        Example:
            >>> doc, updates = Document(client_id=5), []
            >>> handle = doc.observe(lambda update, origin: updates.append(update))
            >>> for i, c in enumerate("hello"):
            ...     doc.text().insert(i, c)
            >>> merged = pycrdt.merge_updates(*updates)
            >>> compact = doc.compact_own(merged)
            >>> other = Document()
            >>> other.apply_update(compact), str(other.text()), len(merged), len(compact)
            (True, 'hello', 40, 24)
        """
        start = _own_start(merged, self.client_id)
        if start is None or self._ydoc._txn is not None:
            return merged  # not ours alone, or a transaction is open (its state is not final)
        state = self.state_vector()
        clocks = read_state_vector(Decoder(state))
        if len(clocks) > _COMPACT_MAX_CLIENTS:
            return merged  # building the state vector in Python would cost too much
        clocks[self.client_id] = start
        since = self.get_update(
            b"".join(
                [write_var_uint(len(clocks))]
                + [write_var_uint(v) for pair in clocks.items() for v in pair]
            )
        )
        sections, ds_start = decode_structs(since)
        if len(sections) != 1 or sections[0].client != self.client_id:
            return merged  # not ours alone (pending structs?): keep the merge
        with _BAD_UPDATE:
            delete_set = pycrdt.get_update(merged, state)  # no structs, the run's delete set
        if delete_set[:1] != b"\x00":
            return merged
        compact = since[:ds_start] + delete_set[1:]
        return compact if len(compact) < len(merged) else merged

    def get_update(self, state_vector: bytes | None = None) -> bytes:
        """Everything this document has that a peer with ``state_vector`` lacks.

        Raises:
            ProtocolError: ``bad-state-vector`` if pycrdt rejects ``state_vector``.
        """
        with _BAD_STATE_VECTOR:
            return bytes(self._ydoc.get_update(state_vector))

    def state_vector(self) -> bytes:
        """The encoded Yjs state vector."""
        return bytes(self._ydoc.get_state())

    def transaction(self, origin: Any = None) -> _LocalTransaction:
        """Batch local edits into one transaction (one update, one observer call).

        Nested use joins the outer transaction (and its origin).

        Example:
            >>> doc = Document()
            >>> with doc.transaction(origin="typing"):
            ...     doc.text().insert(0, "a")
            ...     doc.text().insert(1, "b")
        """
        return _LocalTransaction(self, origin)

    # ------------------------------------------------------------------ observers

    def observe(self, callback: Observer) -> int:
        """Call ``callback(update, origin)`` after every transaction that changed the doc.

        The callback runs inside the commit: it must not raise and must not edit the
        document (enqueue the update and return). Exceptions are logged and re-raised by
        pycrdt from the edit that triggered them.

        Returns:
            A handle for :meth:`unobserve`.
        """
        return self._observers.add(callback)

    def unobserve(self, handle: int) -> None:
        """Remove an observer added by :meth:`observe` (unknown handles are ignored)."""
        self._observers.remove(handle)

    def _on_transaction(self, event: pycrdt.TransactionEvent) -> None:
        update = event.update
        if update == b"\x00\x00":
            return
        self._changes += 1
        origin = self._origin
        for callback in self._observers:
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

    def xml(self, name: str) -> pycrdt.XmlFragment:
        """The root ``XmlFragment`` called ``name`` (y-prosemirror: TipTap's ``default``)."""
        fragment: pycrdt.XmlFragment = self._declare(name, "xml")
        return fragment

    def to_json(self) -> dict[str, Any]:
        """JSON of every declared root: text as ``str``, maps/arrays via ``to_py()``, XML
        fragments as their XML string.

        Roots that arrived in updates but were never declared are skipped (their type is
        unknown until someone declares it, exactly as in Yjs).
        """
        out: dict[str, Any] = {}
        for name, kind in sorted(self._roots.items()):
            root = self._ydoc.get(name, type=_ROOT_TYPES[kind])
            out[name] = str(root) if kind in ("text", "xml") else root.to_py()
        return out


class _LocalTransaction:
    """Context manager behind :meth:`Document.transaction` (a class: it is on the hot path)."""

    __slots__ = ("_doc", "_origin", "_previous", "_txn")

    def __init__(self, doc: Document, origin: Any) -> None:
        self._doc = doc
        self._origin = origin
        self._previous: Any = None
        self._txn: Any = None

    def __enter__(self) -> None:
        doc = self._doc
        ydoc = doc._ydoc
        nested = ydoc._txn is not None  # pycrdt then reuses the open transaction
        self._previous = doc._origin
        if not nested:
            doc._origin = self._origin
        self._txn = ydoc.transaction()
        self._txn.__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            self._txn.__exit__(*exc)
        finally:
            self._doc._origin = self._previous


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


# ---------------------------------------------------------------------- strict V1 update scan


@dataclass(frozen=True, slots=True)
class UpdateScan:
    """What :func:`scan_update` learnt about a V1 update."""

    ends: dict[int, int]
    "``client -> clock after its last struct``."
    needs: dict[int, int]
    "``client -> clock our state vector must reach`` before the update can integrate."
    sizes: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    "``client -> bytes of its structs`` in the update (content it adds)."


_COMPACT_MAX_CLIENTS: Final = 256
"""Above this many clients in the state vector, :meth:`Document.compact_own` keeps the merge."""


def _own_start(update: bytes, client: int) -> int | None:
    """The first clock of ``update`` if it holds structs of ``client`` only, else None (read
    from its header in O(1): one section, then ``structs``, ``client``, ``clock``)."""
    try:
        r = Decoder(update[:40])
        if r.read_var_uint() != 1:
            return None
        r.read_var_uint()  # structs
        if r.read_var_uint() != client:
            return None
        return r.read_var_uint()
    except ProtocolError:
        return None


def scan_update(update: bytes) -> UpdateScan:
    """Scan a Yjs V1 update strictly: struct ranges and the clocks it depends on.

    Every struct and the delete set are read and bounds-checked by
    :func:`collab.yupdate.decode_update`, and trailing bytes are an error (pycrdt silently
    ignores them). String lengths count UTF-16 units, as Yjs clocks do.

    Raises:
        ProtocolError: ``bad-update`` for anything malformed.

    Example:
        >>> a = Document(client_id=7)
        >>> a.text().insert(0, "ab")
        >>> sv = a.state_vector()
        >>> a.text().insert(2, "c")
        >>> scan_update(a.get_update(sv))
        UpdateScan(ends={7: 3}, needs={7: 2})
    """
    try:
        parsed = decode_update(update)
    except ProtocolError as e:
        raise ProtocolError("bad-update", str(e)) from None
    ends: dict[int, int] = {}
    starts: dict[int, int] = {}
    refs: dict[int, int] = {}
    sizes: dict[int, int] = {}
    gaps: dict[int, int] = {}
    for section in parsed.clients:
        starts[section.client] = section.start_clock
        ends[section.client] = section.end_clock
        if section.structs:
            size = section.structs[-1].end - section.structs[0].start
            sizes[section.client] = sizes.get(section.client, 0) + size
        for struct in section.structs:
            if struct.ref == REF_SKIP:
                # a merged update with a hole: what follows needs the client's own clocks
                # up to the end of the hole first
                gaps[section.client] = struct.clock + struct.length
            for ref in (struct.origin, struct.right_origin, struct.parent_id):
                if ref is not None and refs.get(ref[0], 0) < ref[1] + 1:
                    refs[ref[0]] = ref[1] + 1
    needs = {client: clock for client, clock in refs.items() if client not in starts}
    needs.update((client, start) for client, start in starts.items() if start > 0)
    for client, clock in gaps.items():
        if clock < ends[client]:
            needs[client] = max(needs.get(client, 0), clock)
    return UpdateScan(ends, needs, sizes)
