"""Attribution: who wrote each line of a room's text (blame), and who wrote what a diff deletes.

Yjs items carry the client id that created them, so attribution needs no extra data beyond
the stored log plus a map *client id → author* that the replica records from awareness
(``user.name`` / ``user.color``, sanitised by :func:`clean_name` / :func:`clean_color`).

:class:`Attributor` replays stored updates in order into a scratch ``pycrdt`` document and
observes one text root: every inserted UTF-8 byte (pycrdt's text unit) is tagged with the
client that wrote it and the time the update was stored; deletions drop the tags. An update
whose new structs all belong to one client is applied whole; one mixing clients (a sync step 2,
a compaction snapshot) is first split into single-client pieces in causal order, so every
character keeps its true author. The deleter of a delete-only update is unknown (Yjs deletes
carry no client id); when the update also inserts, its one writer is the deleter.

Only text roots are blamed (the page's shared text, ``codemirror`` by default). Maps and
arrays have no lines: ask the diff for them. Formatting changes do not change authorship.

Example:
    >>> import pycrdt
    >>> ada, bob = pycrdt.Doc(client_id=1), pycrdt.Doc(client_id=2)
    >>> ada["t"] = t = pycrdt.Text()
    >>> t += "hello\\n"
    >>> first = ada.get_update()
    >>> bob.apply_update(first); bob["t"] = t2 = pycrdt.Text()
    >>> sv = bob.get_state(); t2 += "world\\n"
    >>> blamer = Attributor("t")
    >>> blamer.apply(first, 10.0); blamer.apply(bob.get_update(sv), 20.0)
    >>> [(line.text, line.authors, line.time) for line in blamer.blame()]
    [('hello', [1], 10.0), ('world', [2], 20.0)]
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pycrdt

from collab.errors import NotFoundError, ProtocolError
from collab.history import BoundedMatcher
from collab.lib0 import Decoder
from collab.render import infer_kinds
from collab.storage.base import (
    MAX_AUTHOR_NAME,
    MAX_UPDATE_BYTES,
    Author,
    TimedLog,
    UpdateStore,
)
from collab.update_split import _Splitter
from collab.yupdate import decode_update

__all__ = [
    "MAX_BLAME_PIECES",
    "MAX_BLAME_UPDATES",
    "Attributor",
    "Blame",
    "BlameLine",
    "DiffLine",
    "attributed_diff",
    "author_json",
    "blame_room",
    "clean_color",
    "clean_name",
    "diff_room",
    "first_client",
    "user_of",
]

MAX_BLAME_UPDATES = 20_000
"""Most log entries one blame replays (past it, blame starts at the newest snapshot).

Replaying costs ~0.3-0.8 ms per update on a 200 KB text (pycrdt delta events), so a blame
stays under ~15 s of one worker thread."""

MAX_BLAME_PIECES = 100_000
"""Most single-client pieces one replay applies (~100 µs each: ~10 s of one worker thread).

A log entry that mixes N clients is applied as at least N pieces, and a peer can store
entries of hundreds of clients each (measured: 1,000 entries x 200 clients took ~20 s per
blame); a log whose entries name more client sections than this is refused up front
(``ValueError``: 422), a snapshot that splits into more pieces during the replay."""

_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_NO_ORIGIN = -1


def clean_name(value: Any) -> str:
    """An awareness ``user.name`` made safe to store and show: a string, control and format
    characters removed, whitespace collapsed, at most :data:`MAX_AUTHOR_NAME` characters.

    Example:
        >>> clean_name("  Ada\\u202e\\n Lovelace  "), clean_name(42), len(clean_name("x" * 999))
        ('Ada Lovelace', '', 64)
    """
    if not isinstance(value, str):
        return ""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in value[: MAX_AUTHOR_NAME * 4]
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    return " ".join(kept.split())[:MAX_AUTHOR_NAME]


def clean_color(value: Any) -> str:
    """An awareness ``user.color`` if it is ``#rgb`` or ``#rrggbb``, else ``''``.

    Example:
        >>> clean_color("#30bced"), clean_color("red; background: url(x)")
        ('#30bced', '')
    """
    if isinstance(value, str) and _COLOR.fullmatch(value):
        return value.lower()
    return ""


def user_of(state: Any) -> tuple[str, str]:
    """``(name, color)`` of an awareness state's ``user`` field, sanitised (``''`` if absent).

    Example:
        >>> user_of({"user": {"name": "Ada", "color": "#ff0000"}}), user_of(None)
        (('Ada', '#ff0000'), ('', ''))
    """
    user = state.get("user") if isinstance(state, dict) else None
    if not isinstance(user, dict):
        return "", ""
    return clean_name(user.get("name")), clean_color(user.get("color"))


def first_client(update: bytes) -> int | None:
    """The client id of a V1 update with exactly one client section (a typical local edit),
    read from its first bytes without decoding the structs; ``None`` otherwise.

    Example:
        >>> first_client(bytes.fromhex("01010500040101610161" "00")), first_client(b"\\x00\\x00")
        (5, None)
    """
    try:
        r = Decoder(update)
        if r.read_var_uint() != 1:
            return None
        r.read_var_uint()  # number of structs
        return r.read_var_uint()
    except (ProtocolError, IndexError, ValueError):
        return None


def _sections(update: bytes) -> int:
    """How many client sections a V1 update names (its first varint; 1 if unreadable).

    Example:
        >>> _sections(bytes.fromhex("01010500040101610161" "00")), _sections(b"")
        (1, 1)
    """
    try:
        return max(1, Decoder(update).read_var_uint())
    except (ProtocolError, IndexError, ValueError):
        return 1


@dataclass(frozen=True)
class BlameLine:
    """One line of blame."""

    number: int
    "Line number, from 1."
    text: str
    "The line, without its newline."
    authors: list[int | None]
    "Client ids that wrote it, most characters first (``None``: content of unknown origin)."
    time: float | None
    "When its newest character was stored (``None``: only known to predate the base snapshot)."


@dataclass(frozen=True)
class DiffLine:
    """One line of an attributed diff."""

    op: str
    "``' '`` kept, ``'-'`` deleted, ``'+'`` inserted."
    old: int | None
    "Line number in the old text (kept and deleted lines)."
    new: int | None
    "Line number in the new text (kept and inserted lines)."
    text: str
    "The line."
    authors: list[int | None]
    "Who wrote it (for a deleted line: who wrote what was deleted)."
    deleted_by: list[int | None]
    "Deleted lines: clients whose updates removed its characters (``None``: unknown deleter)."


class _ByClient(_Splitter):
    """Split an update into single-client pieces, in causal order (see update_split)."""

    def __init__(self, update: bytes) -> None:
        super().__init__(decode_update(update), MAX_UPDATE_BYTES)
        self.owners: list[int | None] = []
        self._owner: int | None = None

    def _flush(self) -> None:
        super()._flush()
        self.owners.append(self._owner)

    def _put(self, client: int, unit: Any) -> None:
        if self.cur.runs and client not in self.cur.runs:
            self._flush()
        self._owner = client
        super()._put(client, unit)

    def pieces(self) -> list[tuple[bytes, int | None]]:
        chunks = self.run()
        owners = self.owners + [self._owner] * (len(chunks) - len(self.owners))
        return list(zip(chunks, owners, strict=True))


class Attributor:
    """Replays updates and tags each character of one text root with who wrote it, when.

    Args:
        root: the text root's name.

    Example:
        >>> a = Attributor("codemirror")
        >>> a.blame()
        []
    """

    def __init__(
        self,
        root: str,
        *,
        origins_of: Attributor | None = None,
        max_pieces: int = MAX_BLAME_PIECES,
    ) -> None:
        self.root = root
        self.max_pieces = max_pieces
        "Most single-client pieces :meth:`apply` may apply (``ValueError`` past it)."
        self.pieces = 0
        "Single-client pieces applied so far."
        self._doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self._text = self._doc.get(root, type=pycrdt.Text)
        self._text.observe(self._on_event)
        self._origins: list[tuple[int | None, float | None]] = []
        self._origin_ids: dict[tuple[int | None, float | None], int] = {}
        if origins_of is not None:  # share the (client, time) table: tags stay comparable
            self._origins, self._origin_ids = origins_of._origins, origins_of._origin_ids
        self._who = array("l")  # per UTF-8 byte of the text: index into _origins
        self._tag = array("l")  # per byte: its position at mark() (or -1), to follow deletions
        self._deleted: array[int] | None = None  # per marked byte: deleter origin, -2 = kept
        self._marked_text = ""
        self._marked_who = array("l")
        self._sv: dict[int, int] = {}
        self._insert_origin = _NO_ORIGIN
        self._delete_origin = _NO_ORIGIN
        self.applied = 0
        "Updates applied so far."

    # ------------------------------------------------------------------ replay
    def _origin(self, client: int | None, ts: float | None) -> int:
        key = (client, ts)
        index = self._origin_ids.get(key)
        if index is None:
            index = self._origin_ids[key] = len(self._origins)
            self._origins.append(key)
        return index

    def _on_event(self, event: Any) -> None:
        pos = 0
        for op in event.delta:
            if "retain" in op:
                pos += int(op["retain"])
            elif "insert" in op:
                value = op["insert"]
                n = len(value.encode("utf-8")) if isinstance(value, str) else 1
                self._who[pos:pos] = array("l", [self._insert_origin]) * n
                self._tag[pos:pos] = array("l", [-1]) * n
                pos += n
            elif "delete" in op:
                n = int(op["delete"])
                deleted = self._deleted
                if deleted is not None:
                    for tag in self._tag[pos : pos + n]:
                        if tag >= 0:
                            deleted[tag] = self._delete_origin
                del self._who[pos : pos + n]
                del self._tag[pos : pos + n]

    def apply(self, update: bytes, ts: float | None) -> None:
        """Apply one stored update (or a snapshot, ``ts`` = ``None`` when unknown).

        Raises:
            ProtocolError: ``bad-update`` for a malformed update.
        """
        try:
            parsed = decode_update(update)
        except ProtocolError as exc:
            raise ProtocolError("bad-update", str(exc)) from None
        writers = [
            s.client
            for s in parsed.clients
            if s.structs and s.end_clock > self._sv.get(s.client, 0)
        ]
        for s in parsed.clients:
            if s.end_clock > self._sv.get(s.client, 0):
                self._sv[s.client] = s.end_clock
        if len(writers) <= 1:
            self._count(1)
            who = writers[0] if writers else None
            self._insert_origin = self._origin(who, ts)
            self._delete_origin = self._insert_origin if who is not None else self._origin(None, ts)
            self._apply(update)
        else:
            self._delete_origin = self._origin(None, ts)
            pieces = _ByClient(update).pieces()
            self._count(len(pieces))
            for piece, owner in pieces:
                self._insert_origin = self._origin(owner, ts)
                self._apply(piece)
        self.applied += 1

    def _count(self, pieces: int) -> None:
        self.pieces += pieces
        if self.pieces > self.max_pieces:
            raise ValueError(
                f"the replay would apply over {self.max_pieces} single-client pieces "
                "(log entries mixing many clients)"
            )

    def _apply(self, update: bytes) -> None:
        try:
            self._doc.apply_update(update)
        except (ValueError, RuntimeError) as exc:  # pycrdt refuses it
            raise ProtocolError("bad-update", f"cannot apply: {exc}") from None

    def replay(
        self,
        log: TimedLog,
        progress: Callable[[int, int], None] | None = None,
        *,
        mark_at: int | None = None,
    ) -> None:
        """Apply a stored :class:`~collab.storage.TimedLog` (base snapshot, then each entry);
        ``progress(done, total)`` is called every 100 entries; :meth:`mark` right after the
        entry at ``mark_at`` (or before any entry when ``mark_at`` is the snapshot's seq)."""
        # every client section of an entry may become a piece: refuse a hopeless log up front
        sections = sum(_sections(data) for _, _, data in log.entries)
        if self.pieces + sections > self.max_pieces:
            raise ValueError(
                f"the replay would apply {sections} single-client pieces "
                f"(max {self.max_pieces}: log entries mixing many clients)"
            )
        total = len(log.entries) + (1 if log.snapshot else 0)
        done = 0
        if log.snapshot is not None:
            self.apply(log.snapshot, None)
            done += 1
        if mark_at is not None and mark_at <= log.snapshot_seq:
            self.mark()
        for seq, ts, data in log.entries:
            self.apply(data, ts)
            done += 1
            if seq == mark_at:
                self.mark()
            if progress is not None and done % 100 == 0:
                progress(done, total)
        if progress is not None:
            progress(total, total)

    def check_root(self) -> None:
        """Raise ``ValueError`` when the root holds something other than text (a map, an
        array, an XML fragment): blame covers text roots only."""
        if self.text:
            return
        try:
            kind = infer_kinds(self._doc.get_update()).get(self.root)
        except ProtocolError:
            kind = None
        if kind not in (None, "text"):
            raise ValueError(f"root {self.root!r} is a {kind}: blame covers text roots only")

    # ------------------------------------------------------------------ results
    @property
    def text(self) -> str:
        """The text as replayed so far."""
        return str(self._text)

    def _line_spans(self, text: str) -> list[tuple[str, int, int]]:
        """``(line, start, end)`` byte ranges, each including its newline (if any)."""
        spans = []
        pos = 0
        lines = text.split("\n")
        for index, line in enumerate(lines):
            if index == len(lines) - 1 and not line:
                break  # the text ends with a newline: no empty last line
            size = len(line.encode("utf-8")) + (1 if index < len(lines) - 1 else 0)
            spans.append((line, pos, pos + size))
            pos += size
        return spans

    def _authors(
        self, who: array[int], start: int, end: int
    ) -> tuple[list[int | None], float | None]:
        counts: Counter[int | None] = Counter()
        newest: float | None = None
        for index in who[start:end]:
            client, ts = self._origins[index] if index >= 0 else (None, None)
            counts[client] += 1
            if ts is not None and (newest is None or ts > newest):
                newest = ts
        return [c for c, _ in counts.most_common()], newest

    def blame(self) -> list[BlameLine]:
        """Per line of the current text: who wrote it (most characters first) and when."""
        return self._blame(self.text, self._who)

    def _blame(self, text: str, who: array[int]) -> list[BlameLine]:
        out = []
        for number, (line, start, end) in enumerate(self._line_spans(text), 1):
            authors, when = self._authors(who, start, end)
            out.append(BlameLine(number, line, authors, when))
        return out

    def mark(self) -> None:
        """Remember the current text; later deletions of it are recorded (see :meth:`diff`)."""
        self._marked_text = self.text
        self._marked_who = array("l", self._who)
        self._tag = array("l", range(len(self._who)))
        self._deleted = array("l", [-2]) * len(self._who)

    def mark_from(self, older: Attributor) -> None:
        """Diff against ``older``'s text (built with ``origins_of=older``) when the log between
        the two points is gone (compacted): writers stay exact, deleters are unknown."""
        if older._origins is not self._origins:
            raise RuntimeError("build this Attributor with origins_of=older")
        self._marked_text = older.text
        self._marked_who = array("l", older._who)
        self._deleted = array("l", [_NO_ORIGIN]) * len(older._who)

    def diff(self, context: int = 3) -> list[DiffLine]:
        """Line diff from the text at :meth:`mark` to now, every line attributed; deleted lines
        name who wrote them and whose updates deleted them. ``context`` kept lines around
        each change (``-1``: all)."""
        if self._deleted is None:
            raise RuntimeError("call mark() at the older point of the diff first")
        old_spans = self._line_spans(self._marked_text)
        new_spans = self._line_spans(self.text)
        # bounded: line texts are peer input (difflib is quadratic on repeated lines)
        matcher = BoundedMatcher([s[0] for s in old_spans], [s[0] for s in new_spans])
        out: list[DiffLine] = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                    line, start, end = new_spans[j]
                    authors, _ = self._authors(self._who, start, end)
                    out.append(DiffLine(" ", i + 1, j + 1, line, authors, []))
                continue
            for i in range(i1, i2):
                line, start, end = old_spans[i]
                authors, _ = self._authors(self._marked_who, start, end)
                deleters: Counter[int | None] = Counter()
                for index in self._deleted[start:end]:
                    if index != -2:
                        deleters[self._origins[index][0] if index >= 0 else None] += 1
                out.append(DiffLine("-", i + 1, None, line, authors, list(deleters)))
            for j in range(j1, j2):
                line, start, end = new_spans[j]
                authors, _ = self._authors(self._who, start, end)
                out.append(DiffLine("+", None, j + 1, line, authors, []))
        return _with_context(out, context)


def _with_context(lines: list[DiffLine], context: int) -> list[DiffLine]:
    if context < 0:
        return lines
    changed = [i for i, line in enumerate(lines) if line.op != " "]
    keep: set[int] = set()
    for i in changed:
        keep.update(range(max(0, i - context), min(len(lines), i + context + 1)))
    return [line for i, line in enumerate(lines) if i in keep]


def author_json(client: int | None, authors: dict[int, Author]) -> dict[str, Any]:
    """One author as the API and the page show it: ``{client, name, color, first_seen}``.

    Example:
        >>> author_json(7, {7: Author(7, "Ada", "#30bced", 5.0)})
        {'client': 7, 'name': 'Ada', 'color': '#30bced', 'first_seen': 5.0}
        >>> author_json(None, {})
        {'client': None, 'name': '', 'color': '', 'first_seen': None}
    """
    known = authors.get(client) if client is not None else None
    if known is None:
        return {"client": client, "name": "", "color": "", "first_seen": None}
    return {
        "client": client,
        "name": known.name,
        "color": known.color,
        "first_seen": known.first_seen,
    }


def attributed_diff(
    log: TimedLog,
    from_seq: int,
    root: str,
    *,
    context: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> list[DiffLine]:
    """The attributed line diff of ``root`` from log position ``from_seq`` to the log's end.

    Example:
        >>> import pycrdt
        >>> d = pycrdt.Doc(client_id=3); d["t"] = t = pycrdt.Text(); t += "a\\nb\\n"
        >>> u1 = d.get_update(); sv = d.get_state(); del t[0:2]
        >>> log = TimedLog("r", None, 0, None, [(1, 1.0, u1), (2, 2.0, d.get_update(sv))], 2)
        >>> [(x.op, x.text, x.authors) for x in attributed_diff(log, 1, "t")]
        [('-', 'a', [3]), (' ', 'b', [3])]
    """
    if from_seq < log.snapshot_seq:
        raise ValueError(f"the log starts after seq {from_seq}: diff from a later version")
    attributor = Attributor(root)
    attributor.replay(log, progress, mark_at=from_seq)
    attributor.check_root()
    return attributor.diff(context)


@dataclass(frozen=True)
class Blame:
    """Blame of one text root at one log position, with the authors it names."""

    room: str
    "The room."
    seq: int
    "Log position blamed."
    root: str
    "The text root."
    base_seq: int
    """Replay started from a snapshot at this position (0: from the first update); characters
    older than it are attributed exactly but their time is unknown."""
    lines: list[BlameLine]
    "One per line."
    authors: dict[int, Author]
    "Every recorded author of the room."

    def to_json(self) -> dict[str, Any]:
        """The API's JSON: lines name client ids; ``authors`` describes each one named.

        Example:
            >>> b = Blame("r", 2, "t", 0, [BlameLine(1, "hi", [7], 3.0)], {})
            >>> b.to_json()["lines"], b.to_json()["authors"]
            ([{'line': 1, 'text': 'hi', 'authors': [7], 'time': 3.0}], [{'client': 7, \
'name': '', 'color': '', 'first_seen': None}])
        """
        named = sorted({c for line in self.lines for c in line.authors if c is not None})
        return {
            "room": self.room,
            "seq": self.seq,
            "root": self.root,
            "base_seq": self.base_seq,
            "lines": [
                {"line": x.number, "text": x.text, "authors": x.authors, "time": x.time}
                for x in self.lines
            ],
            "authors": [author_json(c, self.authors) for c in named],
        }


async def blame_room(
    store: UpdateStore,
    room: str,
    seq: int | None = None,
    root: str = "codemirror",
    *,
    progress: Callable[[int, int], None] | None = None,
    max_updates: int = MAX_BLAME_UPDATES,
    limiter: anyio.CapacityLimiter | None = None,
) -> Blame:
    """Blame ``root`` of ``room`` at log position ``seq`` (default: now), replaying the stored
    log in a worker thread (at most ``max_updates`` entries: past it from the newest snapshot).

    Raises:
        NotFoundError: unknown room or position.
        ValueError: ``root`` is not a text, or the log to replay is longer than
            ``max_updates`` even from the newest snapshot, or would apply more than
            :data:`MAX_BLAME_PIECES` single-client pieces.
        StorageError: the store failed.

    Example:
        >>> blame = await blame_room(store, "notes", 120)  # doctest: +SKIP
        >>> [line.authors for line in blame.lines]  # doctest: +SKIP
        [[1234], [1234, 5678]]
    """
    log = await store.load_log(room, seq, max_updates=max_updates)
    if len(log.entries) > max_updates:
        raise ValueError(f"blame would replay {len(log.entries)} updates (max {max_updates})")
    authors = {a.client: a for a in await store.list_authors(room)}

    def work() -> list[BlameLine]:
        attributor = Attributor(root)
        attributor.replay(log, progress)
        attributor.check_root()
        return attributor.blame()

    lines = await anyio.to_thread.run_sync(work, limiter=limiter)
    return Blame(room, log.last_seq, root, log.snapshot_seq, lines, authors)


async def diff_room(
    store: UpdateStore,
    room: str,
    from_seq: int,
    to_seq: int | None = None,
    root: str = "codemirror",
    *,
    context: int = 3,
    progress: Callable[[int, int], None] | None = None,
    max_updates: int = MAX_BLAME_UPDATES,
    limiter: anyio.CapacityLimiter | None = None,
) -> dict[str, Any]:
    """The attributed line diff of ``root`` between two log positions, as the API's JSON:
    ``{room, from_seq, to_seq, root, lines: [{op, old, new, text, authors, deleted_by}],
    authors}`` (deleted lines name who wrote them and, when known, who deleted them).

    Raises:
        NotFoundError: unknown room or position.
        ValueError: ``from_seq`` after ``to_seq``, a non-text root, or too long a replay.
        StorageError: the store failed.

    Example:
        >>> diff = await diff_room(store, "notes", 40, 120)  # doctest: +SKIP
        >>> [line["deleted_by"] for line in diff["lines"] if line["op"] == "-"]  # doctest: +SKIP
        [[5678]]
    """
    older: TimedLog | None = None
    try:
        log = await store.load_log(room, to_seq, max_updates=max_updates, start_by=from_seq)
    except NotFoundError as exc:
        if exc.code != "compacted":
            raise
        # the log between the two points is gone: compare the two states (versions pin
        # snapshots); who wrote each line stays exact, who deleted it becomes unknown
        older = await store.load_log(room, from_seq, max_updates=max_updates)
        log = await store.load_log(room, to_seq, max_updates=max_updates)
    if from_seq > log.last_seq:
        raise ValueError(f"from ({from_seq}) is after to ({log.last_seq})")
    longest = max(len(log.entries), len(older.entries) if older is not None else 0)
    if longest > max_updates:
        raise ValueError(f"the diff would replay {longest} updates (max {max_updates})")
    authors = {a.client: a for a in await store.list_authors(room)}

    def work() -> list[DiffLine]:
        if older is None:
            attributor = Attributor(root)
            attributor.replay(log, progress, mark_at=from_seq)
        else:
            before = Attributor(root)
            before.replay(older)
            attributor = Attributor(root, origins_of=before)
            attributor.replay(log, progress)
            attributor.mark_from(before)
        attributor.check_root()
        return attributor.diff(context)

    lines = await anyio.to_thread.run_sync(work, limiter=limiter)
    named = sorted({c for x in lines for c in (*x.authors, *x.deleted_by) if c is not None})
    return {
        "room": room,
        "from_seq": from_seq,
        "to_seq": log.last_seq,
        "root": root,
        "lines": [
            {
                "op": x.op,
                "old": x.old,
                "new": x.new,
                "text": x.text,
                "authors": x.authors,
                "deleted_by": x.deleted_by,
            }
            for x in lines
        ],
        "authors": [author_json(c, authors) for c in named],
    }
