"""Fork a room: a new room whose history starts at a version of another.

:func:`fork_room` rebuilds the source room at a log position (off the event loop), stores that
state as the new room's first update and records it as the new room's first version (labelled
``forked from ROOM@V``), then copies the source room's authors (attribution). It refuses a
target that already holds anything. The new room is an ordinary room: a replica following it
loads it on demand and serves it to late joiners.

Example:
    >>> async def demo(store: UpdateStore) -> None:  # doctest: +SKIP
    ...     version = await fork_room(store, "notes", 120, "notes-copy", owner="cli")
    ...     print(version.label)
    forked from notes@120
"""

from __future__ import annotations

import anyio

from collab.errors import StorageError
from collab.storage.base import UpdateStore, Version, check_room, rebuild

__all__ = ["fork_room"]


async def fork_room(
    store: UpdateStore,
    room: str,
    seq: int,
    to: str,
    *,
    owner: str,
    label: str | None = None,
) -> Version:
    """Create room ``to`` from ``room`` as of log position ``seq``.

    Args:
        store: the (started) store.
        room: the source room.
        seq: the source position (a version's ``seq``).
        to: the new room's name.
        owner: the owner id used to hold ``to`` while it is written (PostgreSQL lease).
        label: the first version's label (default ``forked from ROOM@SEQ``).

    Returns:
        The new room's first version.

    Raises:
        NotFoundError: unknown room or position.
        StorageError: ``room-exists`` when ``to`` holds anything; ``not-owner`` when another
            replica holds ``to``; or the store failed.
        ValueError: a bad room name, or ``to == room``.
    """
    check_room(to)
    if to == room:
        raise ValueError("a room cannot be forked into itself")
    stored = await store.load_at(room, seq)
    snapshot = await anyio.to_thread.run_sync(lambda: rebuild(stored).get_update())
    authors = await store.list_authors(room)
    if not await store.acquire_room(to, owner):
        raise StorageError("not-owner", f"room {to!r} is archived by another replica")
    try:
        existing = await store.load(to, missing_ok=True)
        if existing.last_seq or existing.snapshot is not None:
            raise StorageError("room-exists", f"room {to!r} already exists")
        store.append(to, snapshot)
        await store.flush()
        version = await store.add_version(
            to, label or f"forked from {room}@{seq}", [], seq=1, snapshot=snapshot
        )
        if authors:
            await store.add_authors(to, authors)
    finally:
        await store.release_room(to)
    return version
