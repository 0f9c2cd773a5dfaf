"""The examples run for real: the bot appends lines into a room archived by ``collab serve``;
the y-webrtc-server example archives and reads back through ``collab replica``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.marks import needs_netns
from tests.support.paths import COLLAB, ROOT
from tests.support.processes import Process, wait_until
from tests.support.servers import CollabServer, ywebrtc_server

pytestmark = [pytest.mark.anyio, needs_netns]


async def test_clock_bot_lines_reach_the_archive(server: CollabServer) -> None:
    bot = subprocess.run(
        [sys.executable, "examples/bot/clock_bot.py", server.signaling, "bot-room",
         "--every", "0.2", "--count", "3", "--name", "test-bot"],
        cwd=ROOT, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert bot.returncode == 0, bot.stderr.decode()[-2000:]
    assert bot.stdout.decode().count("test-bot was here") == 3

    def archived() -> bool:
        response = server.get("/api/rooms/bot-room/text")
        return response.status_code == 200 and response.text.count("test-bot was here") == 3

    await wait_until(archived, 30)


async def test_archive_ywebrtc_room_example(tmp_path: Path) -> None:
    db = tmp_path / "example-archive.db"
    with ywebrtc_server(tmp_path / "ywebrtc.log") as url:
        replica = Process(
            [
                COLLAB,
                "replica",
                "--signaling",
                url,
                "--room",
                "notes",
                "--store",
                f"sqlite:///{db}",
            ],
            tmp_path / "replica.log",
        )
        replica.start()
        try:
            replica.wait_for_line(r"collab replica: 1 room", 60)
            run = subprocess.run(
                [sys.executable, "examples/archive_ywebrtc_room/edit_and_check.py", url],
                cwd=ROOT, capture_output=True, timeout=120, check=False,
            )  # fmt: skip
        finally:
            replica.kill(signal.SIGTERM)
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    written = out.splitlines()[0].removeprefix("wrote: ")
    assert out.split("a new peer received:\n", 1)[1].startswith(written)
    exported = subprocess.run(
        [COLLAB, "export", "notes", "--store", f"sqlite:///{db}"],
        cwd=ROOT, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert exported.stdout.decode().startswith(written)


async def test_two_peers_example(server: CollabServer) -> None:
    run = subprocess.run(
        [sys.executable, "examples/two_peers/two_peers.py", "--signaling", server.signaling,
         "--room", "example-two", "--password", "correct horse"],
        cwd=ROOT, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert "converged text" in out and "alice: line 0" in out and "bob: line 0" in out
