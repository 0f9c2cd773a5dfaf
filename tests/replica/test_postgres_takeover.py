"""Two ``collab replica`` processes share one real PostgreSQL database: exactly one archives the
room; SIGKILL it while a peer keeps typing; the standby takes over within seconds and no
update is lost (the archive equals the peer's final text)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from pycrdt import Text

from collab.storage import open_store, rebuild
from tests.support.marks import needs_netns
from tests.support.paths import COLLAB
from tests.support.peers import peer, wait_saved
from tests.support.postgres import PostgresServer
from tests.support.processes import Process
from tests.support.servers import SignalingServer

pytestmark = [pytest.mark.anyio, needs_netns, pytest.mark.postgres]

LEASE_TTL = 3.0


def replica(name: str, signaling: str, dsn: str, log: Path) -> Process:
    proc = Process(
        [
            COLLAB,
            "replica",
            "--signaling",
            signaling,
            "--room",
            "shared",
            "--store",
            dsn,
            "--lease-ttl",
            str(LEASE_TTL),
        ],
        log,
    )
    proc.start()
    proc.wait_for_line(r"collab replica: 1 room", 60)
    return proc


async def test_standby_takes_over_and_nothing_is_lost(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    dsn = pg_server.create_database("takeover")
    sig = SignalingServer(tmp_path / "signaling.log")
    sig.start()
    url = sig.url
    first = second = None
    try:
        first = replica("first", url, dsn, tmp_path / "first.log")
        first.wait_for_line(r"archiving room 'shared'", 30)
        second = replica("second", url, dsn, tmp_path / "second.log")
        async with peer("shared", url) as writer:
            with anyio.fail_after(30):
                await writer.wait_for_peers(1)
            text = writer.document.text()
            for i in range(200):
                text.insert(len(str(text)), f"[a{i}]")
            await wait_saved(writer)
            assert "archiving room" not in second.output()  # one archiver at a time

            first.kill(signal.SIGKILL)
            killed_at = time.monotonic()
            for i in range(200):  # typing goes on while no replica is in the room
                text.insert(len(str(text)), f"[b{i}]")
                if i % 20 == 0:
                    await anyio.lowlevel.checkpoint()
            await anyio.to_thread.run_sync(second.wait_for_line, r"took over room 'shared'", 60)
            took = time.monotonic() - killed_at
            assert took < LEASE_TTL + 10, f"takeover took {took:.1f} s"
            for i in range(100):
                text.insert(len(str(text)), f"[c{i}]")
            await wait_saved(writer, timeout=60)
            final = str(text)
    finally:
        for proc in (second, first, sig):
            if proc is not None:
                proc.kill(signal.SIGTERM)

    async with open_store(dsn) as store:
        doc = rebuild(await store.load("shared"))
    assert str(doc.get("codemirror", type=Text)) == final
    assert final.count("[a") == 200 and final.count("[b") == 200 and final.count("[c") == 100
