"""``collab replica`` against y-webrtc's own ``bin/server.js``: explicit rooms, a password room."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest
from pycrdt import Text

from collab.storage import open_store, rebuild
from tests.support.marks import needs_netns
from tests.support.paths import COLLAB
from tests.support.peers import peer, wait_saved, wait_text
from tests.support.processes import Process
from tests.support.servers import ywebrtc_server

pytestmark = [pytest.mark.anyio, needs_netns]


async def test_replica_archives_explicit_rooms_on_ywebrtc_server(tmp_path: Path) -> None:
    db = tmp_path / "archive.db"
    with ywebrtc_server(tmp_path / "ywebrtc.log") as url:
        replica = Process(
            [
                COLLAB,
                "replica",
                "--signaling",
                url,
                "--room",
                "plain",
                "--room",
                "secret:pa:ss wörd",
                "--store",
                f"sqlite:///{db}",
            ],
            tmp_path / "replica.log",
        )
        replica.start()
        try:
            replica.wait_for_line(r"collab replica: 2 room\(s\)", 60)
            async with (
                peer("plain", url) as a,
                peer("secret", url, password="pa:ss wörd") as b,
                peer("secret", url, password="wrong") as intruder,
            ):
                with anyio.fail_after(30):
                    await a.wait_for_peers(1)
                    await b.wait_for_peers(1)
                a.document.text().insert(0, "plain text")
                b.document.text().insert(0, "secret text")
                await wait_saved(a)
                await wait_saved(b)
                # the wrong password decrypts no announce: nobody ever connects to it
                assert intruder.connected_peers() == []
                assert str(intruder.document.text()) == ""
            # a late joiner gets the archived text from the replica alone
            async with peer("secret", url, password="pa:ss wörd") as late:
                with anyio.fail_after(30):
                    await late.wait_for_peers(1)
                await wait_text(late, "secret text")
        finally:
            replica.kill(signal.SIGTERM)
    assert "shutting down" in replica.output()

    async with open_store(f"sqlite:///{db}") as store:
        plain = rebuild(await store.load("plain"))
        secret = rebuild(await store.load("secret"))
        names = {info.name for info in await store.list_rooms()}
    assert str(plain.get("codemirror", type=Text)) == "plain text"
    assert str(secret.get("codemirror", type=Text)) == "secret text"
    assert names == {"plain", "secret"}
