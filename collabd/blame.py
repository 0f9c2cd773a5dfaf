"""Offline attribution and fork tools behind ``collab blame`` and ``collab fork``.

Like the other archive tools (:mod:`collabd.archive`) they open the store directly: run them
against a store no replica is writing to, or use the HTTP API of the running server
(``/api/rooms/{room}/blame``, ``/blame-diff``, ``/fork``).

Example:
    $ collab blame notes --at 12 --store sqlite:///data/collab.db
    $ collab blame notes --from 10 --at 12 --store sqlite:///data/collab.db   # attributed diff
    $ collab fork notes --at 12 --to notes-copy --store sqlite:///data/collab.db
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import Progress

from collab.attribution import blame_room, diff_room
from collab.fork import fork_room
from collab.history import find_version
from collab.storage import UpdateStore, Version, open_store
from collabd.archive import progress_bar

__all__ = ["blame_text", "fork_text", "render_blame", "render_diff"]

OWNER = "collab-cli"


async def _seq(store: UpdateStore, room: str, at: str | None) -> int | None:
    if at is None:
        return None
    return find_version(await store.list_versions(room), room, at).seq


def _who(client: int | None, authors: dict[int | None, dict[str, Any]]) -> str:
    author = authors.get(client) or {}
    name = author.get("name") or ""
    if name:
        return str(name)
    return "?" if client is None else str(client)


def _when(ts: float | None) -> str:
    if ts is None:
        return "(before log)".ljust(16)
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def render_blame(blame: dict[str, Any]) -> str:
    """``collab blame`` output: ``author(s)  time  line| text`` per line (UTC times).

    Example:
        >>> print(render_blame({"lines": [{"line": 1, "text": "hi", "authors": [7], "time": 0.0}],
        ...                     "authors": [{"client": 7, "name": "Ada"}]}), end="")
        Ada                  1970-01-01 00:00 1| hi
    """
    authors = {a["client"]: a for a in blame["authors"]}
    width = len(str(len(blame["lines"])))
    out = []
    for line in blame["lines"]:
        who = ", ".join(_who(c, authors) for c in line["authors"]) or "?"
        out.append(f"{who[:20]:<20} {_when(line['time'])} {line['line']:>{width}}| {line['text']}")
    return "".join(x + "\n" for x in out)


def render_diff(diff: dict[str, Any]) -> str:
    """``collab blame --from`` output: diff lines with who wrote (and deleted) each one.

    Example:
        >>> print(render_diff({"lines": [{"op": "-", "text": "x", "authors": [7],
        ...     "deleted_by": [8]}], "authors": [{"client": 7, "name": "Ada"},
        ...     {"client": 8, "name": "Bob"}]}), end="")
        -x    [Ada; deleted by Bob]
    """
    authors = {a["client"]: a for a in diff["authors"]}
    out = []
    for line in diff["lines"]:
        who = ", ".join(_who(c, authors) for c in line["authors"])
        if line["op"] == "-" and line["deleted_by"]:
            who += "; deleted by " + ", ".join(_who(c, authors) for c in line["deleted_by"])
        out.append(f"{line['op']}{line['text']}    [{who}]")
    return "".join(x + "\n" for x in out)


def _reporter(progress: Progress, description: str) -> Callable[[int, int], None]:
    task = progress.add_task(description, total=None)

    def report(done: int, total: int) -> None:  # called from the replay's worker thread
        progress.update(task, completed=done, total=total)

    return report


async def blame_text(
    store_url: str,
    room: str,
    at: str | None = None,
    root: str = "codemirror",
    since: str | None = None,
    console: Console | None = None,
) -> str:
    """Blame of a room's text now or at a version (or, with ``since``, the attributed diff
    from that version), rendered for the terminal, with a progress bar on stderr.

    Raises:
        NotFoundError: unknown room or version.
        ValueError: a bad version, a non-text root, too long a replay.
        StorageError: the store failed.
    """
    async with open_store(store_url) as store:
        seq = await _seq(store, room, at)
        with progress_bar(console) as progress:
            report = _reporter(progress, f"replaying {room}")
            if since is not None:
                start = find_version(await store.list_versions(room), room, since).seq
                diff = await diff_room(store, room, start, seq, root, progress=report)
                return render_diff(diff)
            blame = await blame_room(store, room, seq, root, progress=report)
    return render_blame(blame.to_json())


async def fork_text(store_url: str, room: str, at: str, to: str) -> Version:
    """Fork ``room`` at version ``at`` into the new room ``to`` (offline).

    Raises:
        NotFoundError: unknown room or version.
        StorageError: ``room-exists`` when ``to`` holds anything; the store failed.
    """
    async with open_store(store_url) as store:
        version = find_version(await store.list_versions(room), room, at)
        return await fork_room(
            store, room, version.seq, to, owner=OWNER, label=f"forked from {room}@{version.id}"
        )
