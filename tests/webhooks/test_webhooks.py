"""Webhooks through a real ``collab serve``: every event kind delivered signed, retries with
backoff, a dead receiver, and the archive never waiting for any of them."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import anyio
import httpx
import pytest

from collab.replica import EVENT_KINDS
from collabd.settings import WEBHOOK_EVENTS
from tests.support.marks import needs_netns
from tests.support.peers import peer, wait_saved, wait_text
from tests.support.processes import wait_until
from tests.support.servers import CollabServer
from tests.webhooks.receiver import basic_auth, closed_port, receiver

pytestmark = [pytest.mark.anyio, needs_netns]

SECRET = "webhook-secret-0123456789"


def deliveries(srv: CollabServer) -> dict[str, float]:
    """``collab_webhook_deliveries_total`` by result, as ``/metrics`` shows it."""
    text = srv.get("/metrics").text
    found = re.findall(r'^collab_webhook_deliveries_total\{result="(\w+)"\} (\S+)$', text, re.M)
    return {result: float(value) for result, value in found}


def serve(tmp_path: Path, urls: list[str], **env: str) -> CollabServer:
    srv = CollabServer(
        tmp_path / "data",
        tmp_path / "serve.log",
        env={
            "COLLAB_WEBHOOK_URLS": json.dumps(urls),
            "COLLAB_WEBHOOK_SECRET": SECRET,
            "COLLAB_VERSION_PAUSE": "600",  # versions only on demand here
            **env,
        },
    )
    srv.start()
    return srv


def test_the_server_knows_every_event_the_replica_emits() -> None:
    assert tuple(WEBHOOK_EVENTS) == EVENT_KINDS


async def test_every_event_kind_arrives_signed(tmp_path: Path) -> None:
    with receiver(SECRET.encode()) as hooks:
        srv = serve(
            tmp_path, [hooks.url()], COLLAB_IDLE_UNLOAD_AFTER="1", COLLAB_ALLOW_DELETE="true"
        )
        room = "hooked"
        try:
            async with peer(room, srv.signaling) as a:
                with anyio.fail_after(30):
                    await a.wait_for_peers(1)
                a.document.text().insert(0, "first\n")
                await wait_saved(a)
                await wait_until(lambda: len(hooks.events()) >= 1, 30)
                v1 = srv.http_post(f"/api/rooms/{room}/versions", params={"label": "v1"}).json()
                a.document.text().insert(len("first\n"), "second\n")
                await wait_saved(a)
                restored = srv.http_post(f"/api/rooms/{room}/restore", params={"at": v1["id"]})
                assert restored.status_code == 200, restored.text
                await wait_text(a, "first\n")
                # while loaded, a delete is refused: its peers would bring the document back
                assert httpx.delete(srv.http + f"/api/rooms/{room}", timeout=10).status_code == 409

            def unloaded() -> bool:
                rooms = srv.get("/api/rooms").json()
                return any(r["name"] == room and not r["loaded"] for r in rooms)

            await wait_until(unloaded, 30)
            assert httpx.delete(srv.http + f"/api/rooms/{room}", timeout=10).status_code == 204
            assert httpx.delete(srv.http + f"/api/rooms/{room}", timeout=10).status_code == 404
            await wait_until(lambda: "room.deleted" in [e["event"] for e in hooks.events()], 30)

            events = hooks.events()
            kinds = [e["event"] for e in events]
            print("events:", kinds, "metrics:", deliveries(srv))
            assert kinds[0] == "room.created" and kinds[-1] == "room.deleted"
            assert kinds.count("room.created") == 1 and kinds.count("room.restored") == 1
            assert set(kinds) == set(EVENT_KINDS)
            for request in hooks.requests():
                body = request.json
                assert request.signed, "X-Collab-Signature is the HMAC of the body"
                assert set(body) == {"event", "room", "at", "data", "id"}
                assert body["room"] == room and isinstance(body["at"], float)
                assert request.headers["x-collab-event"] == body["event"]
                assert request.headers["x-collab-delivery"] == body["id"]
            assert len({e["id"] for e in events}) == len(events)
            created = events[0]["data"]
            assert created["seq"] >= 1
            recorded = [e["data"] for e in events if e["event"] == "version.recorded"]
            assert recorded[0]["version"] == v1["id"] and recorded[0]["label"] == "v1"
            assert recorded[0]["seq"] == v1["seq"]
            assert a.document.client_id in [c["client"] for c in recorded[0]["contributors"]]
            (restore,) = [e["data"] for e in events if e["event"] == "room.restored"]
            assert restore["from_version"] == v1["id"]
            assert restore["version"] == restored.json()["id"]
            assert restore["version"] in [v["version"] for v in recorded]
            # counted once the receiver's answer is read (just after it recorded the request)
            await wait_until(lambda: deliveries(srv)["ok"] == len(events), 10)
            counted = deliveries(srv)
            assert counted["failed"] == counted["dropped"] == counted["retry"] == 0
        finally:
            srv.kill()
        assert SECRET not in srv.output()


async def test_retries_back_off_and_a_dead_receiver_never_stops_the_archive(
    tmp_path: Path,
) -> None:
    # one flaky receiver (500, 500, then 200; credentials in its URL) and one that is down
    with receiver(SECRET.encode(), {"/flaky": [500, 500]}) as hooks:
        flaky = hooks.url("/flaky", userinfo="hookuser:hookpass-4242@")
        dead = f"http://127.0.0.1:{closed_port()}/hook"
        srv = serve(
            tmp_path,
            [flaky, dead],
            COLLAB_WEBHOOK_EVENTS='["room.created"]',
            COLLAB_WEBHOOK_ATTEMPTS="3",
            COLLAB_WEBHOOK_TIMEOUT="5",
        )
        try:
            async with peer("first", srv.signaling) as a:
                a.document.text().insert(0, "hello")
                await wait_saved(a)
                await wait_until(lambda: deliveries(srv).get("failed") == 1, 30)
                await wait_until(lambda: deliveries(srv).get("ok") == 1, 30)
            counted = deliveries(srv)
            print("metrics:", counted)
            # flaky: 2 retries then ok; dead: 2 retries then failed (3 attempts each)
            assert counted == {"ok": 1, "retry": 4, "failed": 1, "dropped": 0}
            attempts = hooks.requests("/flaky")
            assert [r.headers["x-answered"] for r in attempts] == ["500", "500", "200"]
            assert len({r.headers["x-collab-delivery"] for r in attempts}) == 1  # one delivery
            assert all(r.signed for r in attempts)
            assert all(
                r.headers["authorization"] == basic_auth("hookuser", "hookpass-4242")
                for r in attempts
            )
            gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
            print("gaps between attempts:", [f"{g:.2f}" for g in gaps])
            assert gaps[0] >= 0.45 and gaps[1] >= 0.95  # 0.5 s, then doubled

            # the receiver still failing does not hold the archive up: a sentinel room archives
            async with peer("sentinel", srv.signaling) as s:
                s.document.text().insert(0, "still archiving")
                await wait_saved(s)
                await wait_until(
                    lambda: srv.get("/api/rooms/sentinel/text").text == "still archiving", 30
                )
        finally:
            srv.kill()
        log = srv.output()
        assert SECRET not in log and "hookpass-4242" not in log
