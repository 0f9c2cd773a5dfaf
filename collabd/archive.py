"""Offline archive tools behind ``collab export|import|versions|diff|restore``.

They open the store directly, so run them against a store no replica is writing to at the
same moment (stop ``collab serve``/``collab replica`` first), or use the HTTP API of the running
server (``/api/rooms/{room}/update``, ``/restore``), which goes through the live replica.

Every root type exports (``--root``; default: the shared text, else TipTap's ``default`` or
y-prosemirror's ``prosemirror`` fragment, see :func:`collab.render.main_root`): XML fragments as
HTML/Markdown/text/ProseMirror JSON, texts as text/Markdown/Quill delta, maps and arrays as JSON.

Example:
    $ collab export --store sqlite:///data/collab.db notes --format markdown --at 12
    $ collab export --store sqlite:///data/collab.db essay --root default --format html
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pycrdt
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from collab.document import Document, insert_text
from collab.errors import ProtocolError, StorageError
from collab.history import RootDiff, diff_root, find_version, restore_into, text_diff
from collab.render import delta_markdown, export_update, roots_json, text_delta
from collab.storage import StoredDoc, UpdateStore, Version, open_store

__all__ = [
    "ExportFormat",
    "all_roots_json",
    "diff_room_root",
    "export_room",
    "import_room",
    "list_versions",
    "load_document",
    "progress_bar",
    "render_markdown",
    "restore_room",
]

ExportFormat = Literal["text", "markdown", "html", "delta", "json", "yjs"]
EXPORT_FORMATS: tuple[str, ...] = ("text", "markdown", "html", "delta", "json", "yjs")
IMPORT_CHUNK = 16 * 1024
"""Characters per transaction when importing text (huge pycrdt transactions are slow)."""
OWNER = "collab-cli"


def progress_bar(console: Console | None) -> Progress:
    """The offline tools' progress bar, on stderr (stdout stays the command's output)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )


async def _resolve(store: UpdateStore, room: str, at: str) -> Version:
    return find_version(await store.list_versions(room), room, at)


def _rebuild(stored: StoredDoc, text_name: str, console: Console | None) -> Document:
    document = Document(roots={text_name: "text"})
    pieces = ([stored.snapshot] if stored.snapshot else []) + stored.updates
    with progress_bar(console) as progress:
        task = progress.add_task(f"loading {stored.room}", total=len(pieces))
        for index, piece in enumerate(pieces):
            try:
                document.apply_update(piece)
            except ProtocolError as exc:
                raise StorageError("bad-update", f"stored piece #{index}: {exc}") from exc
            progress.advance(task)
    return document


async def load_document(
    store: UpdateStore,
    room: str,
    at: str | None = None,
    text_name: str = "codemirror",
    console: Console | None = None,
) -> Document:
    """The room's document now, or at a version (id or ISO time), with a progress bar."""
    if at is None:
        stored = await store.load(room)
    else:
        stored = await store.load_at(room, (await _resolve(store, room, at)).seq)
    return _rebuild(stored, text_name, console)


def render_markdown(text: pycrdt.Text) -> str:
    """The text with Yjs formatting attributes (bold, italic, code, strike, link; Quill's
    header/list/blockquote line formats) as Markdown.

    Example:
        >>> doc = Document()
        >>> doc.text().insert(0, "plain ")
        >>> doc.text().insert(6, "bold", {"bold": True})
        >>> render_markdown(doc.text())
        'plain **bold**'
    """
    return delta_markdown(text_delta(text))


def all_roots_json(document: Document) -> dict[str, Any]:
    """JSON of every root (the declared ones and those inferred from the items): texts as
    strings, maps/arrays as JSON, XML fragments as ProseMirror JSON.

    Example:
        >>> doc = Document()
        >>> doc.map("meta")["n"] = 1.0
        >>> all_roots_json(doc)
        {'meta': {'n': 1}}
    """
    return roots_json(document.get_update(), dict(document.roots))


async def export_room(
    store_url: str,
    room: str,
    fmt: ExportFormat,
    at: str | None = None,
    text_name: str = "codemirror",
    console: Console | None = None,
    root: str | None = None,
) -> bytes:
    """Export a room's root (``root``, default the main one) as text, Markdown, HTML, a Quill
    delta, JSON, or the whole document as a Yjs V1 update; ``json`` without ``root`` is every
    root's JSON in one object.

    Raises:
        NotFoundError: unknown room, version or root.
        StorageError: the store failed.
        RenderError: (a ``ValueError``) the root's kind has no such format, or it nests too
            deeply.
    """
    async with open_store(store_url) as store:
        document = await load_document(store, room, at, text_name, console)
    if fmt == "yjs":
        return document.get_update()
    if fmt == "json" and root is None:
        return (json.dumps(all_roots_json(document), ensure_ascii=False, indent=2) + "\n").encode()
    return export_update(document.get_update(), root, fmt, text_name).data


async def _append_change(
    store: UpdateStore, room: str, change: Any, text_name: str, console: Console | None
) -> int:
    """Apply ``change(document)`` to the room's current document; append what it produced."""
    if not await store.acquire_room(room, OWNER):
        raise StorageError("not-owner", f"a replica archives {room!r}: use the HTTP API")
    stored = await store.load(room, missing_ok=True)
    document = _rebuild(stored, text_name, console)
    produced: list[bytes] = []
    handle = document.observe(lambda update, _origin: produced.append(update))
    change(document)
    document.unobserve(handle)
    for update in produced:
        store.append(room, update)
    await store.flush()
    return len(produced)


async def import_room(
    store_url: str,
    room: str,
    data: bytes,
    fmt: Literal["text", "yjs"],
    text_name: str = "codemirror",
    console: Console | None = None,
) -> int:
    """Import text (replacing the shared text, as a new change) or a Yjs update into a room.

    Returns the number of updates appended.
    """

    def change(document: Document) -> None:
        if fmt == "yjs":
            document.apply_update(data, origin="import")
            return
        text = data.decode("utf-8")
        target = document.text(text_name)
        if str(target):
            restore_into(document, _text_document(text, text_name), text_name)
            return
        with progress_bar(console) as progress:
            task = progress.add_task(f"importing into {room}", total=len(text))
            for start in range(0, len(text), IMPORT_CHUNK):
                piece = text[start : start + IMPORT_CHUNK]
                with document.transaction(origin="import"):
                    insert_text(target, start, piece)
                progress.advance(task, len(piece))

    async with open_store(store_url) as store:
        return await _append_change(store, room, change, text_name, console)


def _text_document(text: str, text_name: str) -> Document:
    document = Document(roots={text_name: "text"})
    document.text(text_name).insert(0, text)
    return document


async def restore_room(
    store_url: str,
    room: str,
    at: str,
    text_name: str = "codemirror",
    console: Console | None = None,
) -> int:
    """Restore a version offline: append the edits back to it as a new change."""
    async with open_store(store_url) as store:
        old = await load_document(store, room, at, text_name, console)
        count = await _append_change(
            store, room, lambda doc: restore_into(doc, old, text_name), text_name, console
        )
        version = await _resolve(store, room, at)
        if count:
            await store.add_version(room, f"restored version {version.id}")
        return count


async def diff_room(
    store_url: str, room: str, before: str, after: str | None, text_name: str = "codemirror"
) -> str:
    """Unified diff of the shared text between two versions (or a version and now)."""
    async with open_store(store_url) as store:
        a = await load_document(store, room, before, text_name)
        b = await load_document(store, room, after, text_name)
    return text_diff(
        str(a.text(text_name)),
        str(b.text(text_name)),
        f"{room}@{before}",
        f"{room}@{after or 'now'}",
    )


async def diff_room_root(
    store_url: str,
    room: str,
    before: str,
    after: str | None,
    root: str | None = None,
    text_name: str = "codemirror",
) -> RootDiff:
    """Diff any root between two versions: the rendered form's unified diff and a structural
    summary (see :func:`collab.history.diff_root`)."""
    async with open_store(store_url) as store:
        a = await load_document(store, room, before, text_name)
        b = await load_document(store, room, after, text_name)
    return diff_root(a, b, f"{room}@{before}", f"{room}@{after or 'now'}", root, text_name)


async def list_versions(store_url: str, room: str) -> Table:
    """A rich table of the room's versions."""
    async with open_store(store_url) as store:
        versions = await store.list_versions(room)
    table = Table(title=f"versions of {room}")
    for column in ("id", "seq", "time (UTC)", "label", "contributors"):
        table.add_column(column)
    for v in versions:
        when = datetime.fromtimestamp(v.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        names = ", ".join(
            str(c.get("name") or c.get("client")) if isinstance(c, dict) else str(c)
            for c in v.contributors
        )
        table.add_row(str(v.id), str(v.seq), when, v.label, names)
    return table


def write_output(data: bytes, output: Path | None) -> None:
    """Write to a file, or to stdout."""
    if output is None:
        import sys

        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
