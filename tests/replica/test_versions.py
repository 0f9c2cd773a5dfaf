"""History with real peers connected: versions (on demand, after a pause), time travel by id
and by ISO time, diff, and restore — which peers receive as a normal change."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.marks import needs_netns
from tests.support.peers import peer, wait_doc, wait_saved, wait_text
from tests.support.processes import wait_until
from tests.support.servers import CollabServer

pytestmark = [pytest.mark.anyio, needs_netns]


async def test_versions_time_travel_diff_and_restore(tmp_path: Path) -> None:
    srv = CollabServer(
        tmp_path / "data", tmp_path / "serve.log", env={"COLLAB_VERSION_PAUSE": "0.5"}
    )
    srv.start()
    room = "history"
    try:
        async with peer(room, srv.signaling) as a, peer(room, srv.signaling) as b:
            with anyio.fail_after(30):
                await a.wait_for_peers(2)
                await b.wait_for_peers(2)
            a.document.text().insert(0, "first draft\n")
            await wait_text(b, "first draft\n")
            await wait_saved(a)
            v1 = srv.http_post(f"/api/rooms/{room}/versions", params={"label": "draft 1"}).json()
            assert v1["label"] == "draft 1" and v1["seq"] >= 1
            # a's edit is credited to a version at or before v1 (a pause may have recorded one)
            early = srv.get(f"/api/rooms/{room}/versions").json()
            assert any(
                c.get("client") == a.document.client_id
                for v in early
                if v["seq"] <= v1["seq"]
                for c in v["contributors"]
            )
            after_v1 = datetime.now(UTC).isoformat()

            b.document.text().insert(len("first draft\n"), "second paragraph by b\n")
            await wait_text(a, "first draft\nsecond paragraph by b\n")
            await wait_saved(b)

            # a pause in editing records a version by itself
            def later_versions() -> list[dict[str, Any]]:
                found = srv.get(f"/api/rooms/{room}/versions").json()
                assert v1["id"] in [v["id"] for v in found]
                return [v for v in found if v["seq"] > v1["seq"]]

            await wait_until(lambda: bool(later_versions()), 30)
            v2 = later_versions()[-1]
            assert any(
                c.get("client") == b.document.client_id
                for v in later_versions()
                for c in v["contributors"]
            )

            # time travel by id and by ISO time; JSON too
            at_v1 = srv.get(f"/api/rooms/{room}/text", params={"at": str(v1["id"])}).text
            assert at_v1 == "first draft\n"
            by_time = srv.get(f"/api/rooms/{room}/text", params={"at": after_v1}).text
            assert by_time == "first draft\n"
            assert srv.get(f"/api/rooms/{room}/json", params={"at": str(v1["id"])}).json() == {
                "codemirror": "first draft\n"
            }
            assert srv.get(f"/api/rooms/{room}/text", params={"at": "999999"}).status_code == 404
            assert srv.get(f"/api/rooms/{room}/text", params={"at": "yesterday"}).status_code == 422

            diff = srv.get(
                f"/api/rooms/{room}/diff", params={"from": str(v1["id"]), "to": str(v2["id"])}
            ).text
            assert "+second paragraph by b" in diff and diff.startswith(f"--- {room}@")

            # restore v1: both connected peers receive it as an ordinary update
            restored = srv.http_post(f"/api/rooms/{room}/restore", params={"at": str(v1["id"])})
            assert restored.status_code == 200
            assert restored.json()["label"] == f"restored version {v1['id']}"
            await wait_text(a, "first draft\n")
            await wait_text(b, "first draft\n")
            # history was not rewritten: v2 still reads as before
            at_v2 = srv.get(f"/api/rooms/{room}/text", params={"at": str(v2["id"])}).text
            assert at_v2 == "first draft\nsecond paragraph by b\n"
            # and editing goes on normally after a restore
            a.document.text().insert(0, "# Title\n")
            await wait_doc(b, lambda: str(b.document.text()).startswith("# Title\n"))
    finally:
        srv.kill(signal.SIGTERM)
