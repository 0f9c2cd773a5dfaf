"""Archival storage: an append-only update log plus snapshots per room, behind one interface.

``open_store(url)`` picks the backend:

* ``memory://`` — :class:`MemoryStore` (tests, examples; nothing persists)
* ``sqlite:///abs/path.db`` (or ``sqlite:///:memory:``) — :class:`SQLiteStore`, the default
* ``postgresql://user@host:port/db`` — :class:`PostgresStore` (several replicas share it)

See ``collab/storage/README.md`` for durability, compaction and ownership semantics.

Example:
    >>> from collab.storage import open_store, rebuild
    >>> async def demo(update: bytes) -> None:  # doctest: +SKIP
    ...     async with open_store("sqlite:///var/lib/collab/archive.db") as store:
    ...         store.append("notes", update)
    ...         await store.flush()
    ...         doc = rebuild(await store.load("notes"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from collab.storage._engine import BufferedStore
from collab.storage.base import (
    Author,
    RoomInfo,
    StoreCounters,
    StoredDoc,
    StoreOptions,
    TimedLog,
    UpdateStore,
    Version,
    rebuild,
)
from collab.storage.memory import MemoryStore
from collab.storage.sqlite import SQLiteStore

if TYPE_CHECKING:  # loaded on first use: psycopg is the optional 'postgres' extra
    from collab.storage.postgres import PostgresStore

__all__ = [
    "Author",
    "BufferedStore",
    "MemoryStore",
    "PostgresStore",
    "RoomInfo",
    "SQLiteStore",
    "StoreCounters",
    "StoreOptions",
    "StoredDoc",
    "TimedLog",
    "UpdateStore",
    "Version",
    "open_store",
    "rebuild",
]


def open_store(url: str, options: StoreOptions | None = None) -> BufferedStore:
    """Create (not yet start) the store a URL names.

    Args:
        url: ``memory://``, ``sqlite:///abs/path.db``, ``sqlite:///:memory:`` or
            ``postgresql://user[:password]@host[:port]/db`` (``postgres://`` too; libpq
            query parameters such as ``?host=/run/postgresql`` pass through).
        options: knobs shared by all backends (see :class:`StoreOptions`).

    Returns:
        The store; use it as ``async with store:``.

    Raises:
        ValueError: unknown scheme or malformed URL.

    Example:
        >>> type(open_store("memory://")).__name__
        'MemoryStore'
        >>> open_store("sqlite:///tmp/a.db").path
        '/tmp/a.db'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return MemoryStore(options)
    if scheme == "sqlite":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("sqlite URLs look like sqlite:///abs/path.db (three slashes)")
        path = unquote(parts.path)
        if path == "/:memory:":
            path = ":memory:"
        if not path or path == "/":
            raise ValueError("sqlite URL names no file: use sqlite:///abs/path.db")
        return SQLiteStore(path, options)
    if scheme in ("postgresql", "postgres"):
        from collab.storage.postgres import PostgresStore

        return PostgresStore(url, options)
    raise ValueError(f"unknown store URL scheme {parts.scheme!r} (memory, sqlite, postgresql)")


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # PEP 562: `from collab.storage import PostgresStore` works
        value = importlib.import_module("collab.storage.postgres").PostgresStore
        globals()[name] = value
        return value
    raise AttributeError(f"module 'collab.storage' has no attribute {name!r}")
