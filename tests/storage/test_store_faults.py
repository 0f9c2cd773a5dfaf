"""Storage faults surface as coded StorageErrors, queued updates survive, and nothing is lost.

Real faults where the kernel can make them: a 1 MiB tmpfs (disk full), a read-only remount,
garbage in the file, a second connection holding the write lock, a killed PostgreSQL backend.
The memory store's ``fault`` hook covers the retry-without-flush path.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import psycopg
import pytest

from collab.errors import NotFoundError, StorageError
from collab.storage import MemoryStore, PostgresStore, SQLiteStore, StoreOptions
from tests.support.filesystems import tmpfs as mount_tmpfs
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted inside the test's temp dir (root only), unmounted at the end."""
    with mount_tmpfs(tmp_path / "mnt", "1m") as mnt:
        yield mnt


def remount(mnt: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], check=True)


def payload(i: int, size: int = 2000) -> bytes:
    """Distinct, incompressible-enough bytes (the store treats updates as opaque)."""
    return (i.to_bytes(4, "big") + os.urandom(16)) * (size // 20)


async def test_disk_full_is_reported_and_nothing_is_lost(tmpfs: Path) -> None:
    db = tmpfs / "archive.db"
    sent: list[bytes] = []
    opts = StoreOptions(commit_interval=60.0, retry_initial=60.0, check_on_open=False)
    async with SQLiteStore(db, opts) as store:
        error: StorageError | None = None
        for i in range(2000):  # 2000 × 2 kB > 1 MiB: the disk fills up
            sent.append(payload(i))
            store.append("r", sent[-1])
            if i % 25 == 24:
                try:
                    await store.flush()
                except StorageError as exc:
                    error = exc
                    break
        assert error is not None, "the 1 MiB tmpfs never filled up"
        assert error.code == "disk-full"
        assert not isinstance(error, NotFoundError)
        assert store.counters.errors["disk-full"] >= 1
        assert store.pending > 0  # kept in memory, not dropped
        stored = await store.load("r")  # reads still work and include the queue
        assert stored.updates == sent
        with pytest.raises(StorageError):
            await store.flush()  # still full: still an error, still queued
        remount(tmpfs, "size=64m")  # storage returns
        await store.flush()
        assert store.pending == 0
    async with SQLiteStore(db, StoreOptions()) as store:
        assert (await store.load("r")).updates == sent
        assert await store.integrity_check() == ["ok"]


async def test_read_only_database_while_running(tmp_path: Path) -> None:
    # The kernel refuses to remount a file system read-only while the database is open for
    # writing, so a running store is made read-only by SQLite itself (query_only).
    db = tmp_path / "archive.db"
    sent = [payload(i, 100) for i in range(30)]
    opts = StoreOptions(commit_interval=60.0, retry_initial=60.0)
    async with SQLiteStore(db, opts) as store:
        for u in sent[:10]:
            store.append("r", u)
        await store.flush()
        await store._run(lambda conn: conn.execute("PRAGMA query_only = 1"))
        for u in sent[10:]:
            store.append("r", u)
        with pytest.raises(StorageError) as info:
            await store.flush()
        assert info.value.code == "read-only", info.value
        assert store.pending == 20
        assert (await store.load("r")).updates == sent
        await store._run(lambda conn: conn.execute("PRAGMA query_only = 0"))
        await store.flush()
    async with SQLiteStore(db) as store:
        assert (await store.load("r")).updates == sent


async def test_read_only_file_system_at_open(tmpfs: Path) -> None:
    db = tmpfs / "archive.db"
    async with SQLiteStore(db) as store:
        store.append("r", payload(1, 100))
    remount(tmpfs, "ro")
    try:
        store = SQLiteStore(db)
        try:
            await store.start()
        except StorageError as exc:
            assert exc.code in {"read-only", "cant-open"}, exc
        else:  # SQLite may open a WAL database read-only: writing must then fail clearly
            try:
                store.append("r", payload(2, 100))
                with pytest.raises(StorageError) as info:
                    await store.flush()
                assert info.value.code in {"read-only", "cant-open", "io"}, info.value
                assert len((await store.load("r")).updates) == 2
            finally:
                with pytest.raises(StorageError):
                    await store.close()  # the queued update cannot be committed
    finally:
        remount(tmpfs, "rw")


async def test_garbage_file_is_corrupt_not_missing(tmp_path: Path) -> None:
    db = tmp_path / "garbage.db"
    db.write_bytes(os.urandom(8192))
    store = SQLiteStore(db)
    with pytest.raises(StorageError) as info:
        await store.start()
    assert info.value.code == "corrupt"
    assert store.counters.appended == 0


async def test_damaged_pages_are_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "damaged.db"
    async with SQLiteStore(db) as store:
        for i in range(400):
            store.append(f"room-{i % 7}", payload(i, 200))
    size = db.stat().st_size
    assert size > 8 * 4096
    # keep the header page, trash the rest of the file
    db.write_bytes(db.read_bytes()[:4096] + os.urandom(size - 4096))
    with pytest.raises(StorageError) as info:
        await SQLiteStore(db).start()
    assert info.value.code == "corrupt"
    # Without the open-time check, the first read hits the damage: still "corrupt".
    store = SQLiteStore(db, StoreOptions(check_on_open=False))
    try:
        await store.start()
    except StorageError as exc:
        assert exc.code == "corrupt"
    else:
        try:
            with pytest.raises(StorageError) as info:
                for i in range(7):
                    await store.load(f"room-{i}")
            assert info.value.code == "corrupt"
        finally:
            await store.close()


async def test_locked_database_retries_then_reports_locked(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    sent = [payload(i, 60) for i in range(20)]
    opts = StoreOptions(commit_interval=60.0, retry_initial=60.0, busy_timeout=0.2)
    async with SQLiteStore(db, opts) as store:
        for u in sent[:5]:
            store.append("r", u)
        await store.flush()
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            for u in sent[5:]:
                store.append("r", u)
            with pytest.raises(StorageError) as info:
                await store.flush()
            assert info.value.code == "locked"
            assert store.counters.errors["locked"] >= 1
            assert store.pending == 15
        finally:
            other.execute("ROLLBACK")
            other.close()
        await store.flush()
        assert store.pending == 0
    async with SQLiteStore(db) as store:
        assert (await store.load("r")).updates == sent


async def test_writer_retries_in_background_without_flush() -> None:
    opts = StoreOptions(commit_interval=0.001, retry_initial=0.001, retry_max=0.01)
    async with MemoryStore(opts) as store:
        store.fault = StorageError("io", "injected")
        for i in range(10):
            store.append("r", payload(i, 40))
        with anyio.fail_after(10):
            while store.counters.commit_failures < 3:  # several back-off rounds, all failing
                await anyio.lowlevel.checkpoint()
        assert store.counters.committed == 0 and store.pending == 10
        store.fault = None
        with anyio.fail_after(10):
            while store.pending:
                await anyio.lowlevel.checkpoint()
        assert store.counters.committed == 10
        assert store.counters.errors == {"io": store.counters.commit_failures}
        assert len((await store.load("r")).updates) == 10


async def test_close_reports_unflushed_updates() -> None:
    store = MemoryStore(StoreOptions(commit_interval=60.0, close_timeout=0.2))
    await store.start()
    store.append("r", b"\x00\x00")
    store.fault = StorageError("disk-full", "injected")
    with pytest.raises(StorageError) as info:
        await store.close()
    assert info.value.code == "unflushed"


@pytest.mark.postgres
async def test_postgres_unreachable_is_unavailable() -> None:
    # port 1 on loopback: nothing listens there (connection refused at once)
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none", StoreOptions(connect_timeout=2))
    with pytest.raises(StorageError) as info:
        await store.start()
    assert info.value.code == "unavailable"


@pytest.mark.postgres
async def test_postgres_connection_killed_then_recovers(
    pg_server: PostgresServer, pg_dsn: str
) -> None:
    opts = StoreOptions(commit_interval=60.0, retry_initial=60.0)
    sent = [payload(i, 50) for i in range(15)]
    dbname = pg_dsn.rsplit("/", 1)[1]
    kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
    async with PostgresStore(pg_dsn, opts) as store:
        assert await store.acquire_room("r", "me")
        for u in sent[:5]:
            store.append("r", u)
        await store.flush()
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
            admin.execute(kill, (dbname,))
        for u in sent[5:10]:
            store.append("r", u)
        await store.flush()  # killed backends are healed by one transparent reconnect
        assert store.counters.errors["reconnect"] >= 1
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
            # refusing new connections as well makes the database really unavailable
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute(kill, (dbname,))
        try:
            for u in sent[10:]:
                store.append("r", u)
            with pytest.raises(StorageError) as info:
                await store.flush()
            assert info.value.code == "unavailable"
            assert store.pending == 5
            with pytest.raises(StorageError) as info:
                await store.load("r")
            assert info.value.code == "unavailable"
        finally:
            with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await store.flush()  # storage is back
        assert store.pending == 0
        assert (await store.load("r")).updates == sent


async def test_one_store_per_file(tmp_path: Path) -> None:
    db = tmp_path / "archive.db"
    async with SQLiteStore(db) as first:
        first.append("r", b"\x00\x00")
        second = SQLiteStore(db)
        with pytest.raises(StorageError) as info:
            await second.start()
        assert info.value.code == "locked"
    async with SQLiteStore(db) as again:  # released on close
        assert (await again.load("r")).last_seq == 1
