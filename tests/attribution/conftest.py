"""Attribution fixtures: a store factory per backend (PostgreSQL on the session's server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from collab.storage import BufferedStore, MemoryStore, PostgresStore, SQLiteStore, StoreOptions
from tests.support.postgres import PostgresServer

StoreFactory = Callable[..., BufferedStore]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """``make(**options) -> store`` (not started) of one backend; one database per test."""
    backend: str = request.param
    dsn = ""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        dsn = server.create_database("attribution")
    memory: list[MemoryStore] = []

    def make(**overrides: object) -> BufferedStore:
        options = StoreOptions(**overrides)  # type: ignore[arg-type]
        if backend == "memory":
            if not memory:
                memory.append(MemoryStore(options))
            memory[0].options = options
            return memory[0]
        if backend == "sqlite":
            return SQLiteStore(tmp_path / "archive.db", options)
        return PostgresStore(dsn, options)

    return make
