"""Crash safety of the SQLite store: a real writer process is SIGKILLed again and again.

After each kill: ``PRAGMA integrity_check`` is ok, and every update the writer reported as
flushed is there (the rebuilt text is at least as long as the last reported flush and is
exactly the text the writer typed). The writer also compacts and records versions, so kills
land during those too.
"""

from __future__ import annotations

import queue
import random
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from pycrdt import Text

from collab.storage import SQLiteStore, rebuild
from tests.storage.procs import Child, next_event


def expected_text(length: int) -> str:
    return "".join(chr(97 + k % 26) for k in range(length))


async def read_back(db: Path) -> tuple[int, str, list[int]]:
    async with SQLiteStore(db) as store:
        stored = await store.load("crash", missing_ok=True)
        text = str(rebuild(stored).get("codemirror", type=Text))
        versions = [v.seq for v in await store.list_versions("crash")]
        for seq in versions[-2:]:
            old = str(rebuild(await store.load_at("crash", seq)).get("codemirror", type=Text))
            assert old == expected_text(len(old))
        return stored.last_seq, text, versions


@pytest.mark.slow
def test_sigkill_loses_nothing_that_was_flushed(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(20261123)
    reported_seq, reported_len = 0, 0
    kills = compactions = 0
    for round_no in range(6):
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        child = Child("writer", ["sqlite-writer", str(db), str(round_no)], events)
        children = {"writer": child}
        try:
            _, started = next_event(events, children)
            assert started["event"] == "started"
            # what survived the previous kill is at least what was reported flushed
            assert started["seq"] >= reported_seq and started["length"] >= reported_len
            flushes = rng.randrange(2, 40)
            seen = 0
            while seen < flushes:
                _, event = next_event(events, children)
                if event["event"] == "flushed":
                    reported_seq, reported_len = event["seq"], event["length"]
                    seen += 1
                compactions += event["event"] == "compacted"
        finally:
            child.kill()  # SIGKILL while it keeps typing
        kills += 1
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # drain lines written between our last read and the kill: they were durable too
        while not events.empty():
            _, event = events.get_nowait()
            if event["event"] == "flushed":
                reported_seq, reported_len = event["seq"], event["length"]
        last_seq, text, versions = anyio.run(read_back, db)
        assert last_seq >= reported_seq
        assert len(text) >= reported_len
        assert text == expected_text(len(text))
        assert versions == sorted(versions)
    assert kills >= 5
    assert compactions >= 1
    assert reported_len > 0
