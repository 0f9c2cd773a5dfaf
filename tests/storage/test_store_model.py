"""Property test: any sequence of store operations matches a simple model (memory + SQLite).

Operations: append, flush, compact (snapshot built by replay), version, delete, reopen
(close + start again on the same file). After every step the loaded document of every room
equals the model's, built from the same updates in a fresh document.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text, TransactionEvent

from collab.storage import BufferedStore, MemoryStore, SQLiteStore, StoredDoc, StoreOptions, rebuild

ROOMS = ["a", "b"]
N_EDITS = 60


def make_updates(seed: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=1000 + seed)
    text = doc.get("t", type=Text)
    out: list[bytes] = []

    def on_update(event: TransactionEvent) -> None:
        out.append(event.update)

    doc.observe(on_update)
    for i in range(N_EDITS):
        text.insert(len(str(text)) if i % 3 else 0, chr(97 + i % 26))
    return out


UPDATES = {room: make_updates(i) for i, room in enumerate(ROOMS)}

ops = st.lists(
    st.tuples(
        st.sampled_from(["append", "append", "append", "flush", "compact", "version", "delete",
                         "reopen", "load"]),
        st.sampled_from(ROOMS),
        st.integers(1, 5),
    ),
    max_size=40,
)  # fmt: skip


def state_of(updates: list[bytes]) -> str:
    return str(rebuild(StoredDoc("m", None, 0, updates, len(updates))).get("t", type=Text))


async def scenario(kind: str, steps: list[tuple[str, str, int]], tmp: Path) -> None:
    options = StoreOptions(commit_interval=0.002, max_batch=3)
    memory = MemoryStore(options)

    def make() -> BufferedStore:
        return memory if kind == "memory" else SQLiteStore(tmp / "m.db", options)

    model: dict[str, list[bytes]] = {room: [] for room in ROOMS}
    # after a delete, a room's log restarts; the model keeps the updates appended since
    position = dict.fromkeys(ROOMS, 0)
    store = make()
    await store.start()
    try:
        for op, room, count in steps:
            if op == "append":
                for _ in range(count):
                    if position[room] < N_EDITS:
                        seq = store.append(room, UPDATES[room][position[room]])
                        model[room].append(UPDATES[room][position[room]])
                        position[room] += 1
                        assert seq == len(model[room])
            elif op == "flush":
                await store.flush()
            elif op == "compact" and model[room]:
                stored = await store.load(room)
                await store.compact(room, rebuild(stored).get_update(), stored.last_seq)
            elif op == "version" and model[room]:
                v = await store.add_version(room, f"v{count}", [count], seq=len(model[room]))
                assert v.seq == len(model[room])
            elif op == "delete":
                await store.delete_room(room)
                model[room] = []
                position[room] = 0
            elif op == "reopen":
                await store.close()
                store = make()
                await store.start()
            for name in ROOMS:
                stored = await store.load(name, missing_ok=True)
                assert stored.last_seq == len(model[name])
                got = str(rebuild(stored).get("t", type=Text))
                assert got == state_of(model[name])
                for version in await store.list_versions(name):
                    old = await store.load_at(name, version.seq)
                    expected = state_of(model[name][: version.seq])
                    assert str(rebuild(old).get("t", type=Text)) == expected
    finally:
        await store.close()


@settings(max_examples=60)
@given(steps=ops)
def test_memory_store_matches_model(steps: list[tuple[str, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(scenario, "memory", steps, Path(tmp))


@settings(max_examples=40)
@given(steps=ops)
def test_sqlite_store_matches_model(steps: list[tuple[str, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(scenario, "sqlite", steps, Path(tmp))
