"""Blame, attributed diffs and fork against a real ``collab serve`` with Python WebRTC peers
that name themselves in awareness (as y-webrtc pages do); then the same archive offline
through the real CLI."""

from __future__ import annotations

import random
import sqlite3
import subprocess
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.attacker import Hammer, RawSignaling, new_peer_id, replica_peer_id
from tests.support.marks import needs_netns
from tests.support.paths import COLLAB, ROOT
from tests.support.peers import peer, wait_saved, wait_text
from tests.support.processes import wait_until
from tests.support.servers import CollabServer
from tests.support.yjs_bytes import StringItem, string_update, update_message

pytestmark = [pytest.mark.anyio, needs_netns]

ADA = {"user": {"name": "Ada", "color": "#ff0000"}}
BOB = {"user": {"name": "Bob\u202e\n", "color": "red; background: url(x)"}}  # hostile-ish


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COLLAB, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


def names(srv: CollabServer, room: str) -> dict[int, str]:
    blame = srv.get(f"/api/rooms/{room}/blame").json()
    return {a["client"]: a["name"] for a in blame["authors"]}


def line_authors(blame: dict[str, Any]) -> list[tuple[str, list[str]]]:
    by_client = {a["client"]: a["name"] for a in blame["authors"]}
    return [(x["text"], [by_client.get(c, "?") for c in x["authors"]]) for x in blame["lines"]]


async def test_blame_diff_and_fork_with_two_named_peers(tmp_path: Path) -> None:
    srv = CollabServer(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    room, copy = "blame-room", "blame-room-copy"
    store = f"sqlite:///{(tmp_path / 'data').resolve()}/collab.db"
    try:
        async with (
            peer(room, srv.signaling, awareness_state=ADA) as a,
            peer(room, srv.signaling, awareness_state=BOB) as b,
        ):
            with anyio.fail_after(30):
                await a.wait_for_peers(2)
                await b.wait_for_peers(2)
            ada, bob = a.document.client_id, b.document.client_id
            a.document.text().insert(0, "ada's first line\nada's doomed line\n")
            await wait_text(b, "ada's first line\nada's doomed line\n")
            b.document.text().insert(len(b.document.text()), "bob's line\n")
            b.document.text().insert(len("ada's"), " (and bob's)")
            text_v1 = "ada's (and bob's) first line\nada's doomed line\nbob's line\n"
            await wait_text(a, text_v1)
            await wait_saved(a)
            await wait_saved(b)
            # names are recorded from awareness shortly after the content (sanitised)
            await wait_until(lambda: names(srv, room) == {ada: "Ada", bob: "Bob"}, 30)
            blame = srv.get(f"/api/rooms/{room}/blame").json()
            assert line_authors(blame) == [
                ("ada's (and bob's) first line", ["Ada", "Bob"]),
                ("ada's doomed line", ["Ada"]),
                ("bob's line", ["Bob"]),
            ]
            colors = {x["name"]: x["color"] for x in blame["authors"]}
            assert colors == {"Ada": "#ff0000", "Bob": ""}
            assert all(isinstance(x["time"], float) for x in blame["lines"])
            v1 = srv.http_post(f"/api/rooms/{room}/versions", params={"label": "v1"}).json()

            # bob replaces ada's doomed line (one transaction: he is the deleter)
            start = text_v1.index("ada's doomed")
            with b.document.transaction():
                del b.document.text()[start : start + len("ada's doomed line\n")]
                b.document.text().insert(start, "bob rewrote it\n")
            text_v2 = text_v1.replace("ada's doomed line\n", "bob rewrote it\n")
            await wait_text(a, text_v2)
            await wait_saved(b)
            v2 = srv.http_post(f"/api/rooms/{room}/versions", params={"label": "v2"}).json()
            diff = srv.get(
                f"/api/rooms/{room}/blame-diff",
                params={"from": str(v1["id"]), "to": str(v2["id"])},
            ).json()
            who = {x["client"]: x["name"] for x in diff["authors"]}
            changed = [
                (
                    x["op"],
                    x["text"],
                    [who[c] for c in x["authors"]],
                    [who[c] for c in x["deleted_by"]],
                )
                for x in diff["lines"]
                if x["op"] != " "
            ]
            assert changed == [
                ("-", "ada's doomed line", ["Ada"], ["Bob"]),
                ("+", "bob rewrote it", ["Bob"], []),
            ]
            # blame at the older version still shows ada's line
            old = srv.get(f"/api/rooms/{room}/blame", params={"at": str(v1["id"])}).json()
            assert ("ada's doomed line", ["Ada"]) in line_authors(old)
            assert srv.get(f"/api/rooms/{room}/blame", params={"at": "99999"}).status_code == 404
            assert srv.get("/api/rooms/nope/blame").status_code == 404

            # fork at v1 over HTTP; the usual write guards apply
            fork_url = f"/api/rooms/{room}/fork"
            foreign = srv.http_post(
                fork_url,
                params={"at": str(v1["id"]), "to": copy},
                headers={"Origin": "http://evil.example"},
            )
            assert foreign.status_code == 403
            made = srv.http_post(fork_url, params={"at": str(v1["id"]), "to": copy})
            assert made.status_code == 201, made.text
            assert made.json()["version"]["label"] == f"forked from {room}@{v1['id']}"
            again = srv.http_post(fork_url, params={"at": str(v1["id"]), "to": copy})
            assert again.status_code == 409
            missing = srv.http_post(fork_url, params={"at": "99999", "to": "elsewhere"})
            assert missing.status_code == 404
            assert (
                srv.http_post("/api/rooms/nope/fork", params={"at": "1", "to": "x"}).status_code
                == 404
            )

            # later edits in the original do not reach the fork
            a.document.text().insert(0, "after the fork\n")
            await wait_text(b, "after the fork\n" + text_v2)
            await wait_saved(a)

        async with peer(copy, srv.signaling) as fresh:
            await wait_text(fresh, text_v1, timeout=60)
        versions = srv.get(f"/api/rooms/{copy}/versions").json()
        assert [v["label"] for v in versions] == [f"forked from {room}@{v1['id']}"]
        # the attribution map came along
        assert line_authors(srv.get(f"/api/rooms/{copy}/blame").json())[0] == (
            "ada's (and bob's) first line",
            ["Ada", "Bob"],
        )
    finally:
        srv.stop()

    # offline: blame, attributed diff and fork through the CLI
    shown = cli("blame", room, "--store", store)
    assert shown.returncode == 0, shown.stderr
    assert "Ada" in shown.stdout and "| bob rewrote it" in shown.stdout
    first = next(x for x in shown.stdout.splitlines() if x.endswith("| after the fork"))
    assert first.startswith("Ada ")
    since = cli("blame", room, "--from", str(v1["id"]), "--at", str(v2["id"]), "--store", store)
    # the replica compacted the log on the way out: who wrote the deleted line is still known
    # (the versions' pinned snapshots keep every item's client id), who deleted it is not
    assert "-ada's doomed line    [Ada; deleted by ?]" in since.stdout, since.stderr
    forked = cli("fork", room, "--at", str(v2["id"]), "--to", "cli-copy", "--store", store)
    assert forked.returncode == 0, forked.stderr
    exported = cli("export", "cli-copy", "--store", store)
    assert exported.stdout == text_v2
    refused = cli("fork", room, "--at", str(v2["id"]), "--to", "cli-copy", "--store", store)
    assert refused.returncode == 2 and "room-exists" in refused.stderr


async def test_invented_client_ids_do_not_grow_the_author_map(tmp_path: Path) -> None:
    """A peer inventing 100,000 client ids (1,000 per update, reconnecting when cut off)
    leaves at most ``StoreOptions.max_authors`` (512) rows in the room's author map, and the
    room keeps archiving honest edits."""
    srv = CollabServer(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    room = "flooded"
    db = (tmp_path / "data" / "collab.db").resolve()

    def stored_authors() -> int:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT count(*) FROM authors WHERE room = ?", (room,)).fetchone()
            return int(row[0])
        except sqlite3.OperationalError:  # the table is created when the store opens
            return 0
        finally:
            conn.close()

    rng = random.Random(20261201)
    ids = rng.sample(range(1, 2**53), 100_000)
    messages = [
        update_message(string_update([StringItem(c, 0, "x") for c in ids[i : i + 1000]]))
        for i in range(0, len(ids), 1000)
    ]
    try:
        async with AsyncExitStack() as stack:
            sig = await stack.enter_async_context(RawSignaling(srv.signaling))
            with anyio.fail_after(15):
                replica = await replica_peer_id(sig, room, new_peer_id())
            hammer = Hammer(stack, sig, room, replica, max_channels=5)
            with anyio.fail_after(120):
                for message in messages:
                    if not await hammer.send(message):
                        break
                await hammer.settle()
            await wait_until(lambda: stored_authors() >= 512, 30)
        async with peer(room, srv.signaling, awareness_state=BOB) as honest:
            with anyio.fail_after(30):
                await honest.wait_for_peers(1)
            honest.document.text().insert(0, "still archived\n")
            await wait_saved(honest)
        assert stored_authors() == 512  # the cap: first writers win, the rest are dropped
        assert "still archived\n" in srv.get(f"/api/rooms/{room}/text").text
    finally:
        srv.stop()
