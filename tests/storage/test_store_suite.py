"""One behavioural suite for every backend (memory, SQLite, PostgreSQL), real pycrdt updates."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text, TransactionEvent

from collab.errors import NotFoundError, StorageError
from collab.storage import BufferedStore, StoredDoc, open_store, rebuild

StoreFactory = Callable[..., BufferedStore]

pytestmark = pytest.mark.anyio


def typing_session(n: int, seed: int = 1) -> tuple[list[bytes], list[str]]:
    """``n`` one-edit updates of a text plus the text after each (index i = after seq i+1)."""
    rng = random.Random(seed)
    doc: Doc[Any] = Doc(client_id=rng.randrange(1, 2**31))
    text = doc.get("codemirror", type=Text)
    updates: list[bytes] = []
    texts: list[str] = []

    def on_update(event: TransactionEvent) -> None:
        updates.append(event.update)

    doc.observe(on_update)
    for _ in range(n):
        current = str(text)
        if current and rng.random() < 0.25:
            pos = rng.randrange(len(current))
            del text[pos : pos + 1]
        else:
            text.insert(rng.randrange(len(current) + 1), rng.choice("abcdefgh \n"))
        texts.append(str(text))
    assert len(updates) == n
    return updates, texts


def text_of(stored: StoredDoc) -> str:
    return str(rebuild(stored).get("codemirror", type=Text))


async def own(store: BufferedStore, *rooms: str) -> None:
    for room in rooms:
        assert await store.acquire_room(room, "suite-owner")


async def test_append_flush_load_roundtrip(store: BufferedStore) -> None:
    updates, texts = typing_session(120)
    await own(store, "r1")
    seqs = [store.append("r1", u) for u in updates]
    assert seqs == list(range(1, 121))
    await store.flush()
    stored = await store.load("r1")
    assert stored.snapshot is None and stored.snapshot_seq == 0
    assert stored.updates == updates
    assert stored.last_seq == 120
    assert text_of(stored) == texts[-1]
    assert store.counters.committed == 120
    assert store.pending == 0


async def test_rooms_have_independent_logs(store: BufferedStore) -> None:
    a, ta = typing_session(30, seed=2)
    b, tb = typing_session(40, seed=3)
    await own(store, "a", "b")
    for i in range(40):
        if i < 30:
            assert store.append("a", a[i]) == i + 1
        assert store.append("b", b[i]) == i + 1
    await store.flush()
    assert text_of(await store.load("a")) == ta[-1]
    assert text_of(await store.load("b")) == tb[-1]
    rooms = {r.name: r for r in await store.list_rooms()}
    assert set(rooms) == {"a", "b"}
    assert rooms["a"].n_updates == 30 and rooms["a"].last_seq == 30
    assert rooms["b"].size_bytes == sum(len(u) for u in b)
    assert rooms["b"].updated_at > 0


async def test_missing_room_is_not_found_not_storage_error(store: BufferedStore) -> None:
    with pytest.raises(NotFoundError) as info:
        await store.load("nobody")
    assert info.value.code == "room-not-found"
    empty = await store.load("nobody", missing_ok=True)
    assert (empty.snapshot, empty.updates, empty.last_seq) == (None, [], 0)


async def test_load_sees_queued_updates_before_commit(make_store: StoreFactory) -> None:
    updates, texts = typing_session(10)
    async with make_store(commit_interval=60.0) as store:
        await own(store, "r")
        for u in updates:
            store.append("r", u)
        assert store.counters.committed == 0
        stored = await store.load("r")
        assert stored.updates == updates and stored.last_seq == 10
        assert text_of(stored) == texts[-1]
        await store.flush()
        assert store.counters.committed == 10


async def test_group_commit_batches_into_few_transactions(make_store: StoreFactory) -> None:
    updates, _ = typing_session(500)
    async with make_store(commit_interval=60.0) as store:
        await own(store, "r")
        for u in updates:
            store.append("r", u)
        await store.flush()
        assert store.counters.commits == 1
    async with make_store(commit_interval=60.0, max_batch=100) as store:
        await own(store, "r2")
        before = store.counters.commits  # the memory backend reuses one store object
        for u in updates:
            store.append("r2", u)
        await store.flush()
        assert store.counters.commits - before == 5
        assert (await store.load("r2")).updates == updates


async def test_writer_commits_without_flush(make_store: StoreFactory) -> None:
    updates, _ = typing_session(5)
    async with make_store(commit_interval=0.01) as store:
        await own(store, "r")
        for u in updates:
            store.append("r", u)
        with anyio.fail_after(10):
            while store.counters.committed < 5:
                await anyio.wait_all_tasks_blocked()
                await anyio.lowlevel.checkpoint()
    async with make_store() as store:
        assert (await store.load("r")).updates == updates


async def test_compact_replaces_covered_log_with_snapshot(store: BufferedStore) -> None:
    updates, texts = typing_session(300)
    await own(store, "r")
    for u in updates:
        store.append("r", u)
    await store.flush()
    snap = rebuild(await store.load_at("r", 200)).get_update()
    await store.compact("r", snap, 200)
    stored = await store.load("r")
    assert stored.snapshot == snap and stored.snapshot_seq == 200
    assert stored.updates == updates[200:]
    assert stored.last_seq == 300
    assert text_of(stored) == texts[-1]
    info = (await store.list_rooms())[0]
    assert info.n_updates == 100
    assert info.size_bytes == len(snap) + sum(len(u) for u in updates[200:])
    assert text_of(await store.load_at("r", 250)) == texts[249]
    assert text_of(await store.load_at("r", 200)) == texts[199]
    with pytest.raises(NotFoundError) as info_err:
        await store.load_at("r", 150)
    assert info_err.value.code == "compacted"
    with pytest.raises(NotFoundError):
        await store.load_at("r", 301)
    # a second compaction at the end leaves only the snapshot
    snap2 = rebuild(stored).get_update()
    await store.compact("r", snap2, 300)
    final = await store.load("r")
    assert (final.snapshot_seq, final.updates) == (300, [])
    assert text_of(final) == texts[-1]
    assert store.counters.compactions == 2


async def test_retain_log_keeps_history(make_store: StoreFactory) -> None:
    updates, texts = typing_session(60)
    async with make_store(retain_log=True) as store:
        await own(store, "r")
        for u in updates:
            store.append("r", u)
        await store.flush()
        await store.compact("r", rebuild(await store.load("r")).get_update(), 60)
        assert (await store.list_rooms())[0].n_updates == 60
        assert text_of(await store.load_at("r", 17)) == texts[16]
        stored = await store.load("r")
        assert stored.snapshot_seq == 60 and stored.updates == []


async def test_versions_survive_compaction(store: BufferedStore) -> None:
    updates, texts = typing_session(90)
    await own(store, "r")
    for u in updates[:40]:
        store.append("r", u)
    v1 = await store.add_version("r", "draft", [{"client": 7, "name": "ann"}])
    assert (v1.seq, v1.label, v1.contributors) == (40, "draft", [{"client": 7, "name": "ann"}])
    for u in updates[40:]:
        store.append("r", u)
    v2 = await store.add_version("r", "older", ["bob"], seq=25)
    await store.compact("r", rebuild(await store.load("r")).get_update(), 90)
    versions = await store.list_versions("r")
    assert [(v.seq, v.label, v.contributors) for v in versions] == [
        (25, "older", ["bob"]),
        (40, "draft", [{"client": 7, "name": "ann"}]),
    ]
    assert {v.id for v in versions} == {v1.id, v2.id}
    assert text_of(await store.load_at("r", 40)) == texts[39]
    assert text_of(await store.load_at("r", 25)) == texts[24]
    assert text_of(await store.load("r")) == texts[-1]
    with pytest.raises(ValueError):
        await store.add_version("r", seq=91)
    with pytest.raises(ValueError):
        await store.add_version("r", contributors=[object()])


async def test_versions_are_thinned_and_capped(make_store: StoreFactory) -> None:
    """However often versions are recorded, a room keeps at most ``max_versions`` of them,
    and the snapshots of dropped versions are gone (storage stays bounded); the kept ones
    still load."""
    updates, texts = typing_session(60)
    store = make_store(max_versions=5)  # all recent: the cap decides
    async with store:
        await own(store, "r")
        sizes = []
        for i, update in enumerate(updates):
            store.append("r", update)
            if i % 3 == 2:  # 20 versions, each pinning a snapshot
                await store.add_version("r", "")
                sizes.append(next(r for r in await store.list_rooms() if r.name == "r").size_bytes)
        versions = await store.list_versions("r")
        assert [v.seq for v in versions] == [48, 51, 54, 57, 60]  # the newest five
        for v in versions:
            assert text_of(await store.load_at("r", v.seq)) == texts[v.seq - 1]
        # the stored size stopped growing with the number of versions
        assert sizes[-1] <= 3 * sizes[len(sizes) // 2], sizes


async def test_reopen_continues_the_log(make_store: StoreFactory) -> None:
    updates, texts = typing_session(50)
    async with make_store() as store:
        await own(store, "r")
        for u in updates[:30]:
            store.append("r", u)
    async with make_store() as store:
        await own(store, "r")
        assert (await store.load("r")).last_seq == 30
        assert store.append("r", updates[30]) == 31
        for u in updates[31:]:
            store.append("r", u)
        await store.flush()
    async with make_store() as store:
        stored = await store.load("r")
        assert stored.updates == updates and text_of(stored) == texts[-1]


async def test_delete_room(store: BufferedStore) -> None:
    updates, _ = typing_session(20)
    await own(store, "gone", "kept")
    for u in updates:
        store.append("gone", u)
        store.append("kept", u)
    await store.flush()
    await store.add_version("gone", "v")
    store.append("gone", updates[0])  # still queued while deleting
    assert await store.delete_room("gone") is True
    with pytest.raises(NotFoundError):
        await store.load("gone")
    assert [r.name for r in await store.list_rooms()] == ["kept"]
    assert await store.list_versions("gone") == []
    assert await store.delete_room("gone") is False
    await store.flush()
    assert (await store.load("kept")).updates == updates
    assert store.append("gone", updates[0]) == 1


async def test_room_ownership(store: BufferedStore) -> None:
    assert await store.acquire_room("r", "a") is True
    assert await store.acquire_room("r", "a") is True
    assert await store.acquire_room("r", "b") is False
    assert store.held_rooms() == {"r"}
    await store.release_room("r")
    assert store.held_rooms() == set()
    assert await store.acquire_room("r", "b") is True


async def test_misuse_is_rejected(make_store: StoreFactory) -> None:
    store = make_store()
    with pytest.raises(RuntimeError, match="not started"):
        store.append("r", b"\x00\x00")
    async with store:
        await own(store, "r")
        with pytest.raises(ValueError):
            store.append("r", b"")
        with pytest.raises(ValueError):
            store.append("", b"\x00\x00")
        with pytest.raises(ValueError):
            store.append("x" * 2000, b"\x00\x00")
        with pytest.raises(ValueError):
            await store.compact("r", b"\x00\x00", 1)
        store.append("r", b"\x00\x00")
        with pytest.raises(ValueError):
            await store.compact("r", b"\x00\x00", 2)
        with pytest.raises(RuntimeError, match="already started"):
            await store.start()


async def test_start_close_style_matches_context_manager(make_store: StoreFactory) -> None:
    updates, _ = typing_session(3)
    store = make_store()
    await store.start()
    try:
        await own(store, "r")
        for u in updates:
            store.append("r", u)
    finally:
        await store.close()
    await store.close()  # idempotent
    async with make_store() as again:
        assert (await again.load("r")).updates == updates


async def test_backlog_is_bounded(make_store: StoreFactory) -> None:
    async with make_store(commit_interval=60.0, max_pending_bytes=100) as store:
        await own(store, "r")
        store.append("r", b"\x00" * 60)
        with pytest.raises(StorageError) as info:
            store.append("r", b"\x00" * 60)
        assert info.value.code == "backlog-full"
        assert store.counters.errors["backlog-full"] == 1


async def test_random_operations_match_a_model(make_store: StoreFactory) -> None:
    rng = random.Random(7)
    sessions = {room: typing_session(80, seed=i)[0] for i, room in enumerate(["x", "y", "z"])}
    model: dict[str, int] = {room: 0 for room in sessions}
    async with make_store(commit_interval=0.001, max_batch=7) as store:
        await own(store, *sessions)
        for _ in range(400):
            room = rng.choice(list(sessions))
            op = rng.random()
            if op < 0.8 and model[room] < 80:
                assert store.append(room, sessions[room][model[room]]) == model[room] + 1
                model[room] += 1
            elif op < 0.9:
                await store.flush()
            elif model[room]:
                stored = await store.load(room)
                assert stored.last_seq == model[room]
                await store.compact(room, rebuild(stored).get_update(), stored.last_seq)
        await store.flush()
        for room, n in model.items():
            stored = await store.load(room, missing_ok=True)
            assert stored.last_seq == n
            expected = rebuild(StoredDoc(room, None, 0, sessions[room][:n], n))
            assert rebuild(stored).get_update() == expected.get_update()


def test_open_store_urls(tmp_path: Any) -> None:
    assert type(open_store("memory://")).__name__ == "MemoryStore"
    s = open_store(f"sqlite://{tmp_path}/a.db")
    assert type(s).__name__ == "SQLiteStore" and s.path == f"{tmp_path}/a.db"  # type: ignore[attr-defined]
    assert open_store("sqlite:///:memory:").path == ":memory:"  # type: ignore[attr-defined]
    assert type(open_store("postgresql://u@127.0.0.1:5432/db")).__name__ == "PostgresStore"
    for bad in ("sqlite://host/x.db", "redis://x", "sqlite:///"):
        with pytest.raises(ValueError):
            open_store(bad)
