"""The archival replica inside ``collab serve``, with real aiortc peers and real processes.

- peers edit, all leave, the server restarts, a new peer gets the exact text from the replica;
- SIGKILL during a fast edit stream, repeatedly: archive + what live peers resend = final text,
  and the SQLite file passes ``PRAGMA integrity_check``;
- idle rooms are unloaded and reloaded on demand;
- the HTTP API (text, update loadable by real Yjs, json, 404s).
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from pycrdt import Text

from collab.peer import WebrtcPeer
from collab.storage import open_store, rebuild
from tests.support.marks import needs_netns
from tests.support.paths import ROOT
from tests.support.peers import peer, wait_doc, wait_saved, wait_text
from tests.support.processes import wait_until
from tests.support.servers import CollabServer

pytestmark = [pytest.mark.anyio, needs_netns]


async def test_archive_survives_everyone_leaving_and_a_restart(
    server: CollabServer, tmp_path: Path
) -> None:
    room = "restart-room"
    async with peer(room, server.signaling) as a, peer(room, server.signaling) as b:
        with anyio.fail_after(30):
            await a.wait_for_peers(2)  # the other peer + the replica
            await b.wait_for_peers(2)
        a.document.text().insert(0, "alpha 🐍 ")
        b.document.text().insert(0, "beta ")
        # concurrent edits converge on both peers (and through the replica)
        for p in (a, b):

            def both(p: WebrtcPeer = p) -> bool:
                return "alpha" in str(p.document.text()) and "beta" in str(p.document.text())

            await wait_doc(p, both)
        assert str(a.document.text()) == str(b.document.text())
        final = str(a.document.text())
        assert sorted(final.split()) == sorted(["alpha", "🐍", "beta"])
        await wait_saved(a)
        await wait_saved(b)

    server.stop()  # graceful: flush, compact, leave
    server.start()
    async with peer(room, server.signaling) as late:
        with anyio.fail_after(30):
            await late.wait_for_peers(1)
            await late.wait_synced()
        await wait_text(late, final)
    assert server.get(f"/api/rooms/{room}/text").text == final


async def archived_text(db: Path, room: str) -> str:
    """The room's text as stored in the SQLite archive (read while no server runs)."""
    async with open_store(f"sqlite:///{db}") as store:
        doc = rebuild(await store.load(room, missing_ok=True))
    return str(doc.get("codemirror", type=Text))


async def test_sigkill_repeatedly_during_fast_edits_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    db = tmp_path / "data" / "collab.db"
    srv = CollabServer(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    room = "crash-room"
    typed = 0
    try:
        async with peer(room, srv.signaling) as writer:
            with anyio.fail_after(30):
                await writer.wait_for_peers(1)
            text = writer.document.text()
            for round_ in range(6):
                # type fast while the replica archives; kill it at a random point
                burst = rng.randint(50, 400)
                for i in range(burst):
                    text.insert(len(str(text)), f"{typed % 10}")
                    typed += 1
                    if i % 25 == 0:
                        await anyio.lowlevel.checkpoint()
                saved = None
                if round_ % 2:  # every other kill comes right after the replica said "saved"
                    await wait_saved(writer, timeout=60)
                    saved = str(text)
                srv.kill(signal.SIGKILL)
                with sqlite3.connect(db) as conn:
                    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                stored = await archived_text(db, room)
                # what was committed survived the kill; nothing stored was invented
                assert str(text).startswith(stored)
                if saved is not None:
                    assert stored == saved
                srv.start()
                with anyio.fail_after(60):
                    await writer.room.wait_until(lambda: bool(writer.connected_peers()))
            await wait_saved(writer, timeout=60)
            final = str(text)
    finally:
        srv.kill(signal.SIGTERM)

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # the archive plus what the live peer resent after each restart = the final text
    assert await archived_text(db, room) == final


async def test_idle_room_is_unloaded_and_reloaded_on_demand(tmp_path: Path) -> None:
    srv = CollabServer(
        tmp_path / "data",
        tmp_path / "serve.log",
        env={"COLLAB_IDLE_UNLOAD_AFTER": "1"},
    )
    srv.start()
    room = "idle-room"
    try:
        async with peer(room, srv.signaling) as a:
            with anyio.fail_after(30):
                await a.wait_for_peers(1)
            a.document.text().insert(0, "kept while unloaded")
            await wait_saved(a)

        def loaded() -> bool:
            rooms = {r["name"]: r for r in srv.get("/api/rooms").json()}
            return bool(rooms.get(room, {}).get("loaded"))

        await wait_until(lambda: not loaded(), timeout=30)
        # reads work from storage while the room is not in memory
        assert srv.get(f"/api/rooms/{room}/text").text == "kept while unloaded"
        async with peer(room, srv.signaling) as b:
            with anyio.fail_after(30):
                await b.wait_for_peers(1)
            await wait_text(b, "kept while unloaded")
            assert loaded()
    finally:
        srv.kill(signal.SIGTERM)


async def test_http_api(server: CollabServer, tmp_path: Path) -> None:
    room = "api room/ü"
    async with peer(room, server.signaling) as a:
        with anyio.fail_after(30):
            await a.wait_for_peers(1)
        a.document.text().insert(0, "héllo 🌍")
        a.document.map("meta")["title"] = "notes"
        a.document.array("list").extend([1, "two"])
        await wait_saved(a)

    quoted = "api%20room%2F%C3%BC"
    rooms = server.get("/api/rooms").json()
    entry = next(r for r in rooms if r["name"] == room)
    assert entry["size"] > 0 and entry["updated_at"] is not None
    assert server.get(f"/api/rooms/{quoted}/text").text == "héllo 🌍"
    assert server.get(f"/api/rooms/{quoted}/text", params={"name": "other"}).text == ""
    # every root type: the declared text, and the map/array inferred from the document's items
    assert server.get(f"/api/rooms/{quoted}/json").json() == {
        "codemirror": "héllo 🌍",
        "meta": {"title": "notes"},
        "list": [1, "two"],
    }
    update = server.get(f"/api/rooms/{quoted}/update")
    assert update.headers["content-type"] == "application/octet-stream"
    # real Yjs loads the update
    script = (
        "import * as Y from 'yjs';"
        "const chunks=[];process.stdin.on('data',c=>chunks.push(c));"
        "process.stdin.on('end',()=>{const d=new Y.Doc();"
        "Y.applyUpdate(d,new Uint8Array(Buffer.concat(chunks)));"
        "process.stdout.write(JSON.stringify({t:d.getText('codemirror').toString(),"
        "m:d.getMap('meta').toJSON()}))});"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=update.content,
        capture_output=True,
        cwd=ROOT,
        check=True,
        timeout=30,
    )
    assert json.loads(out.stdout) == {"t": "héllo 🌍", "m": {"title": "notes"}}
    assert server.get("/api/rooms/nope/text").status_code == 404
    assert server.get("/api/config").json() == {"iceServers": []}
    assert "collab_replica_rooms_loaded" in server.get("/metrics").text


async def test_replica_follows_more_rooms_than_one_browser_socket_may(
    server: CollabServer,
) -> None:
    """70 rooms (> the 64-topics-per-socket limit for browsers): the replica's one signaling
    socket carries them all without being cut off (internal key on the loopback listener)."""
    import json

    from websockets.asyncio.client import connect

    rooms = [f"many-{i}" for i in range(70)]
    async with (
        connect(server.signaling) as first,
        connect(server.signaling) as second,
    ):
        await first.send(json.dumps({"type": "subscribe", "topics": rooms[:35]}))
        await second.send(json.dumps({"type": "subscribe", "topics": rooms[35:]}))

        def all_loaded() -> bool:
            loaded = {r["name"] for r in server.get("/api/rooms").json() if r["loaded"]}
            return loaded >= set(rooms)

        await wait_until(all_loaded, 60)
        metrics = server.get("/metrics").text
        assert 'reason="too_many_topics"' not in metrics
        assert "collab_replica_rooms_loaded 70.0" in metrics
