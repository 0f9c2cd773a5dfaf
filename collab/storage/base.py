"""The storage interface: the :class:`UpdateStore` Protocol, its data classes and options.

Every backend (:mod:`~collab.storage.memory`, :mod:`~collab.storage.sqlite`,
:mod:`~collab.storage.postgres`) keeps one append-only **update log** per room plus
**snapshots**. A snapshot is the full document state at a log position (``seq``), built by the
caller by *replaying* updates into a ``pycrdt.Doc`` (never with ``merge_updates``). Loading a
room returns the latest snapshot plus the log tail after it; :func:`rebuild` turns that into a
document with one ``apply_update`` per piece.

Example:
    >>> from collab.storage import open_store, rebuild
    >>> async def demo(update: bytes) -> str:  # doctest: +SKIP
    ...     async with open_store("sqlite:///tmp/archive.db") as store:
    ...         await store.acquire_room("notes", "replica-1")
    ...         store.append("notes", update)
    ...         await store.flush()
    ...         doc = rebuild(await store.load("notes"))
    ...         return str(doc.get("codemirror", type=Text))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pycrdt import Doc

from collab.errors import NotFoundError, StorageError
from collab.outage import Outage
from collab.types import RoomName

__all__ = [
    "MAX_AUTHOR_NAME",
    "MAX_ROOM_NAME_BYTES",
    "MAX_UPDATE_BYTES",
    "Author",
    "RoomInfo",
    "StoreCounters",
    "StoreOptions",
    "StoredDoc",
    "TimedLog",
    "UpdateStore",
    "Version",
    "rebuild",
    "thin_versions",
]

MAX_ROOM_NAME_BYTES = 1024
"""Longest accepted room name, in UTF-8 bytes (y-webrtc room names are user-chosen strings)."""

MAX_UPDATE_BYTES = 64 * 1024 * 1024
"""Largest single update or snapshot a store accepts, in bytes."""


@dataclass(frozen=True)
class StoredDoc:
    """What :meth:`UpdateStore.load` returns: the latest snapshot plus the log tail after it.

    Example:
        >>> StoredDoc("r", None, 0, [b"\\x00\\x00"], 1).last_seq
        1
    """

    room: RoomName
    "The room name."
    snapshot: bytes | None
    "Full document state (a V1 update) at ``snapshot_seq``, or ``None`` if never compacted."
    snapshot_seq: int
    "Log position the snapshot covers (0 without a snapshot)."
    updates: list[bytes]
    "The log tail: every update with ``snapshot_seq < seq <= last_seq``, in order."
    last_seq: int
    "Log position of the last update included (0 for an empty room)."

    @property
    def size(self) -> int:
        """Total bytes of snapshot plus tail."""
        return len(self.snapshot or b"") + sum(len(u) for u in self.updates)


@dataclass(frozen=True)
class TimedLog:
    """What :meth:`UpdateStore.load_log` returns: a base snapshot plus every logged update after
    it *with the time it was stored* (what blame replays).

    Example:
        >>> TimedLog("r", None, 0, None, [(1, 1.5, b"\\x00\\x00")], 1).updates
        [b'\\x00\\x00']
    """

    room: RoomName
    "The room name."
    snapshot: bytes | None
    "Full document state at ``snapshot_seq`` (``None``: the log is replayed from the start)."
    snapshot_seq: int
    "Log position the snapshot covers (0 without a snapshot)."
    snapshot_at: float | None
    "Unix time the snapshot was stored (``None`` without a snapshot)."
    entries: list[tuple[int, float, bytes]]
    "``(seq, stored_at, update)`` for every ``snapshot_seq < seq <= last_seq``, in order."
    last_seq: int
    "Log position of the last entry included."

    @property
    def updates(self) -> list[bytes]:
        """The updates alone, in order."""
        return [data for _, _, data in self.entries]


MAX_AUTHOR_NAME = 64
"""Longest stored author name, in characters (awareness names are peer input)."""


@dataclass(frozen=True)
class Author:
    """Who a Yjs client id belongs to, as the replica first saw it (attribution).

    Example:
        >>> Author(42, "Ada", "#30bced", 1.0).name
        'Ada'
    """

    client: int
    "The Yjs client id (``doc.clientID``; also the awareness client id in y-webrtc)."
    name: str
    "The awareness ``user.name`` (sanitised, at most :data:`MAX_AUTHOR_NAME`; ``''``: unknown)."
    color: str
    "The awareness ``user.color`` as ``#rgb``/``#rrggbb`` (``''``: unknown)."
    first_seen: float
    "Unix time the replica first saw content from this client id."


@dataclass(frozen=True)
class RoomInfo:
    """One row of :meth:`UpdateStore.list_rooms` (durable state only)."""

    name: RoomName
    "The room name."
    size_bytes: int
    "Bytes stored for the room: log rows plus snapshots (including pinned version snapshots)."
    n_updates: int
    "Number of log rows currently stored (rows covered by a compaction are gone)."
    last_seq: int
    "Log position of the last durable update."
    updated_at: float
    "Unix time of the last durable change."


@dataclass(frozen=True)
class Version:
    """A named point in a room's history (``seq`` = log position), with a pinned snapshot."""

    id: int
    "Store-assigned id, unique per store."
    room: RoomName
    "The room name."
    seq: int
    "Log position the version covers."
    created_at: float
    "Unix time the version was recorded."
    label: str
    "Free text, e.g. ``'before refactor'``."
    contributors: list[Any]
    "JSON-serialisable list (e.g. client ids or user names) of who edited since the last version."


@dataclass
class StoreOptions:
    """Every knob of a store (all backends), with defaults that suit the archival replica."""

    commit_interval: float = 0.05
    "Group-commit window in seconds: appended updates wait at most this long before a commit."
    max_batch: int = 2000
    "A commit starts early once this many updates are queued; also the most rows per commit."
    retry_initial: float = 0.05
    "First back-off delay (s) after a failed commit; doubles per failure."
    retry_max: float = 5.0
    "Longest back-off delay (s) between commit retries."
    max_pending_bytes: int = 256 * 1024 * 1024
    "Bound on queued, not-yet-committed bytes; past it ``append`` raises ``backlog-full``."
    close_timeout: float = 5.0
    "How long ``close()`` keeps retrying to commit what is still queued."
    retain_log: bool = False
    "Keep log rows covered by a snapshot (full point-in-time history) instead of deleting them."
    synchronous: str = "NORMAL"
    "SQLite only: ``NORMAL`` (survives process crashes) or ``FULL`` (also survives power loss)."
    busy_timeout: float = 2.0
    "SQLite only: seconds to wait on a lock held by another connection before ``locked``."
    check_on_open: bool = True
    "SQLite only: ``PRAGMA quick_check`` at open (corrupt files fail fast; reads the whole file)."
    lease_ttl: float = 10.0
    "PostgreSQL only: a room lease expires this many seconds after its last renewal."
    lease_renew_interval: float | None = None
    "PostgreSQL only: renewal period in seconds (default ``lease_ttl / 3``)."
    connect_timeout: float = 10.0
    "PostgreSQL only: seconds to wait for a connection."
    max_versions: int = 200
    "Versions kept per room at most (older ones are thinned first, see :func:`thin_versions`)."
    keep_all_versions_for: float = 86_400.0
    "Seconds during which every version is kept (then one per hour, then one per day)."
    max_authors: int = 512
    """Authors (client id → name) kept per room: client ids are peer input, so past the cap new
    ones are not recorded (first writer wins); blame shows them as unknown."""


@dataclass
class StoreCounters:
    """Plain counters (the lead wires them to Prometheus). All monotonically increasing."""

    appended: int = 0
    "Updates accepted by ``append``."
    committed: int = 0
    "Updates made durable."
    commits: int = 0
    "Successful group commits (transactions)."
    commit_failures: int = 0
    "Failed commit attempts (each is retried; nothing is dropped)."
    dropped_not_owner: int = 0
    "Queued updates discarded because the room's lease moved to another replica."
    compactions: int = 0
    "Successful ``compact`` calls."
    errors: dict[str, int] = field(default_factory=dict)
    "Storage errors by code (``disk-full``, ``read-only``, ``locked``, ``corrupt``, ...)."

    def count_error(self, code: str) -> None:
        """Increment the counter of one error code."""
        self.errors[code] = self.errors.get(code, 0) + 1

    def as_dict(self) -> dict[str, int]:
        """Flatten to ``{"appended": .., "errors.disk-full": .., ...}``."""
        out = {
            "appended": self.appended,
            "committed": self.committed,
            "commits": self.commits,
            "commit_failures": self.commit_failures,
            "dropped_not_owner": self.dropped_not_owner,
            "compactions": self.compactions,
        }
        out.update({f"errors.{k}": v for k, v in self.errors.items()})
        return out


@runtime_checkable
class UpdateStore(Protocol):
    """Archival storage for Yjs documents: an append-only update log plus snapshots, per room.

    Lifecycle: ``async with store:`` (or ``await store.start()`` … ``await store.close()``
    from the same task) runs the background group-commit writer.

    Example:
        >>> async def archive(store: UpdateStore, update: bytes) -> None:  # doctest: +SKIP
        ...     async with store:
        ...         if await store.acquire_room("r", "replica-1"):
        ...             store.append("r", update)
        ...             await store.flush()
    """

    counters: StoreCounters
    outage: Outage
    "Commit failures as operators read them (``up``, first/reminder/recovery log lines)."

    async def ping(self) -> None:
        """Check the database answers (readiness). Raises ``StorageError`` when it does not."""
        ...

    @property
    def pending(self) -> int:
        """Updates appended but not yet committed (the "uncommitted" gauge)."""
        ...

    @property
    def pending_bytes(self) -> int:
        """Bytes appended but not yet committed."""
        ...

    async def start(self) -> None:
        """Open the database and start the writer. Raises ``StorageError`` (e.g. ``corrupt``)."""
        ...

    async def close(self) -> None:
        """Commit what is queued (bounded by ``close_timeout``), stop, release leases."""
        ...

    async def __aenter__(self) -> UpdateStore: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def append(self, room: RoomName, update: bytes) -> int:
        """Queue one update (non-blocking); returns its per-room log position ``seq``."""
        ...

    async def flush(self) -> None:
        """Wait until everything appended so far is durable; ``StorageError`` if it cannot be."""
        ...

    async def load(self, room: RoomName, *, missing_ok: bool = False) -> StoredDoc:
        """Latest snapshot + tail (durable and still-queued updates)."""
        ...

    async def load_at(self, room: RoomName, seq: int) -> StoredDoc:
        """The room as it was at log position ``seq`` (snapshot ≤ seq + log up to seq)."""
        ...

    async def compact(self, room: RoomName, snapshot: bytes, upto_seq: int) -> None:
        """Store ``snapshot`` (the state at ``upto_seq``) and drop what it covers."""
        ...

    async def list_rooms(self) -> list[RoomInfo]:
        """Every room with durable content."""
        ...

    async def delete_room(self, room: RoomName) -> bool:
        """Remove a room entirely; ``False`` if it did not exist."""
        ...

    async def add_version(
        self,
        room: RoomName,
        label: str = "",
        contributors: list[Any] | None = None,
        *,
        seq: int | None = None,
        snapshot: bytes | None = None,
    ) -> Version:
        """Record a version at ``seq`` (default: the latest update) with a pinned snapshot."""
        ...

    async def list_versions(self, room: RoomName) -> list[Version]:
        """The room's versions, oldest first."""
        ...

    async def load_log(
        self,
        room: RoomName,
        seq: int | None = None,
        *,
        max_updates: int = 50_000,
        start_by: int | None = None,
    ) -> TimedLog:
        """The log up to ``seq`` with each update's time: from the start when it is whole and
        at most ``max_updates`` long, else from the newest snapshot at or before ``seq``."""
        ...

    async def add_authors(self, room: RoomName, authors: list[Author]) -> int:
        """Record client ids' authors (first writer wins; a nameless one may get a name later;
        at most ``max_authors`` per room); returns how many rows were added or named."""
        ...

    async def list_authors(self, room: RoomName) -> list[Author]:
        """The room's recorded authors, by first-seen time."""
        ...

    async def acquire_room(self, room: RoomName, owner_id: str) -> bool:
        """Become the one archiver of ``room``; ``False`` while another owner holds it."""
        ...

    async def release_room(self, room: RoomName) -> None:
        """Give a room up (after committing its queued updates)."""
        ...

    def held_rooms(self) -> set[RoomName]:
        """Rooms this store currently owns."""
        ...


def thin_versions(
    versions: list[Version],
    now: float,
    *,
    cap: int = 200,
    keep_all_for: float = 86_400.0,
    hourly_for: float = 30 * 86_400.0,
) -> list[int]:
    """Ids of versions to drop: every version younger than ``keep_all_for`` is kept, then the
    newest one per hour up to ``hourly_for``, then the newest one per day; past ``cap`` the
    oldest go (unlabelled before labelled). Each version pins a full snapshot, so storage
    stays bounded however often versions are recorded.

    Example:
        >>> day = 86_400.0
        >>> vs = [Version(i, "r", i, 100 * day + i * 60, "", []) for i in range(1, 121)]
        >>> dropped = thin_versions(vs, now=100 * day + 7300, keep_all_for=3600)
        >>> len(dropped), len(vs) - len(dropped)  # the last hour whole, then one per hour
        (59, 61)
    """
    keep: list[Version] = []
    seen: set[tuple[str, int]] = set()
    for version in sorted(versions, key=lambda v: (v.created_at, v.id), reverse=True):
        age = now - version.created_at
        if age < keep_all_for:
            keep.append(version)
            continue
        bucket = (
            ("h", int(version.created_at // 3600))
            if age < hourly_for
            else (
                "d",
                int(version.created_at // 86_400),
            )
        )
        if bucket not in seen:
            seen.add(bucket)
            keep.append(version)
    if len(keep) > cap:
        # drop the oldest unlabelled ones first, then the oldest labelled ones
        ordered = sorted(keep, key=lambda v: (bool(v.label), v.created_at, v.id))
        dropped = {v.id for v in ordered[: len(keep) - cap]}
        keep = [v for v in keep if v.id not in dropped]
    kept = {v.id for v in keep}
    return [v.id for v in versions if v.id not in kept]


def read_end(room: str, last_seq: int, upto: int | None) -> int:
    """The last seq a read of ``room`` up to ``upto`` (default: its end) covers.

    Raises:
        NotFoundError: ``seq-not-found`` when ``upto`` is past the room's log.

    Example:
        >>> read_end("r", 7, None), read_end("r", 7, 3)
        (7, 3)
    """
    end = last_seq if upto is None else upto
    if end > last_seq:
        raise NotFoundError("seq-not-found", f"{room!r} has no update {end}")
    return end


def check_room(room: str) -> None:
    """Reject room names the stores cannot hold (misuse → ``ValueError``)."""
    if not isinstance(room, str) or not room:
        raise ValueError("room name must be a non-empty str")
    if len(room.encode("utf-8", "surrogatepass")) > MAX_ROOM_NAME_BYTES:
        raise ValueError(f"room name longer than {MAX_ROOM_NAME_BYTES} UTF-8 bytes")
    if "\x00" in room or re.search(r"[\ud800-\udfff]", room):
        raise ValueError("room name contains NUL or lone surrogates")


def check_blob(data: bytes, what: str = "update") -> None:
    """Reject updates/snapshots the stores cannot hold (misuse → ``ValueError``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"{what} must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{what} is empty")
    if len(data) > MAX_UPDATE_BYTES:
        raise ValueError(f"{what} of {len(data)} bytes exceeds {MAX_UPDATE_BYTES}")


def rebuild(stored: StoredDoc, doc: Doc[Any] | None = None) -> Doc[Any]:
    """Build a document from a :class:`StoredDoc`: the snapshot, then each tail update.

    One ``apply_update`` per piece (never ``merge_updates``, which is superlinear).

    Args:
        stored: what :meth:`UpdateStore.load` or :meth:`UpdateStore.load_at` returned.
        doc: apply into this document instead of a fresh one.

    Returns:
        The document.

    Raises:
        StorageError: ``bad-update`` if a stored piece is not a valid Yjs update.

    Example:
        >>> from pycrdt import Doc, Text
        >>> src = Doc(); src["t"] = t = Text(); t += "hi"
        >>> d = rebuild(StoredDoc("r", src.get_update(), 1, [], 1))
        >>> str(d.get("t", type=Text))
        'hi'
    """
    target: Doc[Any] = Doc() if doc is None else doc
    pieces: list[bytes] = [] if stored.snapshot is None else [stored.snapshot]
    pieces.extend(stored.updates)
    for index, piece in enumerate(pieces):
        try:
            target.apply_update(piece)
        except ValueError as exc:
            raise StorageError(
                "bad-update", f"room {stored.room!r}: stored piece #{index} is invalid: {exc}"
            ) from exc
    return target
