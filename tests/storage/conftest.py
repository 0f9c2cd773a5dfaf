"""Storage fixtures: a fresh database on the session's PostgreSQL server (``pg_server``, in
tests/conftest.py) and a store factory per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from collab.storage import BufferedStore, MemoryStore, PostgresStore, SQLiteStore, StoreOptions
from tests.support.postgres import PostgresServer

StoreFactory = Callable[..., BufferedStore]
"""``make(**option_overrides) -> store`` (not started); same database on every call."""


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> str:
    """A fresh, empty database on the session server."""
    return pg_server.create_database("storage")


BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Factory of stores of one backend sharing one database (so reopening sees the data)."""
    backend: str = request.param
    memory_db: list[MemoryStore] = []
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgres" else ""

    def make(**overrides: object) -> BufferedStore:
        options = StoreOptions(**overrides)  # type: ignore[arg-type]
        if backend == "memory":
            # A memory store "reopened" keeps its dictionaries: reuse the same object.
            if not memory_db:
                memory_db.append(MemoryStore(options))
            memory_db[0].options = options
            return memory_db[0]
        if backend == "sqlite":
            return SQLiteStore(tmp_path / "archive.db", options)
        return PostgresStore(dsn, options)

    make.backend = backend  # type: ignore[attr-defined]
    return make


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[BufferedStore]:
    """A started store of the parametrised backend."""
    s = make_store()
    async with s:
        yield s
