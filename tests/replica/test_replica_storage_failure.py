"""The replica on a full disk: a clear error and a metric, the peers keep editing, nothing is
lost once space returns. Real SQLite on a real (tiny) tmpfs, real aiortc peer, real signaling."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from pycrdt import Text

from collab.peer import PeerConfig
from collab.replica import ArchivalReplica, ReplicaOptions
from collab.storage import open_store, rebuild
from tests.support.filesystems import fill, tmpfs
from tests.support.marks import needs_netns
from tests.support.peers import peer, wait_saved
from tests.support.processes import wait_until
from tests.support.servers import SignalingServer

pytestmark = [pytest.mark.anyio, needs_netns]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs mounted inside the test's temp dir (unmounted at the end)."""
    with tmpfs(tmp_path / "tiny", "3m") as mount:
        yield mount


async def test_disk_full_is_reported_and_nothing_is_lost(
    tmp_path: Path, tiny_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collab.storage")
    sig = SignalingServer(tmp_path / "signaling.log")
    db = tiny_fs / "archive.db"
    try:
        sig.start()
        url = sig.url
        store = open_store(f"sqlite:///{db}")
        options = ReplicaOptions()
        async with (
            store,
            ArchivalReplica(store, url, options=options, peer_config=PeerConfig()) as replica,
        ):
            await replica.follow("full")
            async with peer("full", url) as writer:
                with anyio.fail_after(30):
                    await writer.wait_for_peers(1)
                text = writer.document.text()
                text.insert(0, "before the disk filled. ")
                await wait_saved(writer)

                fill(tiny_fs / "filler")
                for i in range(300):
                    text.insert(len(str(text)), f"line {i} while the disk is full\n")
                # the store reports the failure; the live document keeps everything
                await wait_until(lambda: store.counters.errors.get("disk-full", 0) > 0, 30)
                await wait_until(lambda: replica.storage_errors > 0, 30)
                live = replica.rooms["full"].document
                await wait_until(lambda: str(live.text()) == str(text), 30)
                # the writer retries (with back-off) while the disk stays full: a few failed
                # commits (the 300 keystrokes may arrive merged into one update)
                await wait_until(lambda: store.counters.commit_failures > 1, 30)

                os.unlink(tiny_fs / "filler")  # space returns: the queued updates commit
                await wait_saved(writer, timeout=60)
                final = str(text)
    finally:
        sig.stop()

    # the operator reads one line when storage starts failing and one when it recovers (a
    # reminder at most once a minute in between), not one per failed commit
    messages = [r.getMessage() for r in caplog.records if r.name == "collab.storage"]
    assert sum(m.startswith("storage is failing") for m in messages) == 1, messages
    assert sum(m.startswith("storage recovered after") for m in messages) == 1, messages
    assert store.counters.commit_failures > 1
    async with open_store(f"sqlite:///{db}") as reopened:
        doc = rebuild(await reopened.load("full"))
    assert str(doc.get("codemirror", type=Text)) == final
    assert final.count("while the disk is full") == 300
