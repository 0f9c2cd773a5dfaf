"""Stock y-webrtc in Chromium, relay-only through a real coturn, against ``collab serve`` with
``--turn-secret``: the page gets time-limited TURN credentials and ``iceTransportPolicy:
'relay'`` from ``/api/config``; the replica mints its own from the same secret.

* a browser syncs with the replica (the archive's text arrives, the browser's edit is
  archived) through the relay;
* two browsers sync with each other through the relay (a room the replica does not follow);
* the secret appears in no log line, metric, API answer or page.

Relay use is proven from both ends: in Chromium's ``getStats()`` the selected candidate pair's
local candidate is ``relay`` (and the page's RTCPeerConnection has ``iceTransportPolicy:
'relay'``, so it gathered nothing else); the remote end's address is one of coturn's relay
ports; coturn logged an allocation for each browser's minted user and for ``replica``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from playwright.async_api import Page

from tests.support.browser import Chromium
from tests.support.marks import needs_chromium
from tests.support.paths import COLLAB
from tests.support.processes import wait_until
from tests.support.servers import CollabServer
from tests.turn.coturn import RELAY_IP, REST_SECRET, Coturn, needs_coturn

pytestmark = [pytest.mark.anyio, pytest.mark.browser, needs_chromium, *needs_coturn]

RELAY_PORTS = (61500, 61999)
SEED = "archived before anyone came\n"
TTL = 600

CONNS = """async () => {
  const room = window.collabRoom.provider.room
  const conns = []
  for (const [peerId, conn] of room.webrtcConns) {
    const pc = conn.peer && conn.peer._pc
    const entry = { peerId, connected: !!conn.connected, policy: null, localTypes: [] }
    if (pc && pc.connectionState !== 'closed') {
      entry.policy = pc.getConfiguration().iceTransportPolicy
      const report = await pc.getStats()
      let pair = null
      report.forEach(s => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          pair = report.get(s.selectedCandidatePairId) || pair
        }
        if (s.type === 'local-candidate') entry.localTypes.push(s.candidateType)
      })
      if (pair) {
        const l = report.get(pair.localCandidateId)
        const r = report.get(pair.remoteCandidateId)
        entry.local = l && { type: l.candidateType, address: l.address, port: l.port }
        entry.remote = r && { type: r.candidateType, address: r.address, port: r.port }
        entry.bytesSent = pair.bytesSent
      }
    }
    conns.push(entry)
  }
  return { peerId: room.peerId, conns, bc: [...room.bcConns] }
}"""


@dataclass
class TurnServe:
    """``collab serve`` with TURN options, and its coturn."""

    server: CollabServer
    coturn: Coturn


@pytest.fixture(scope="module")
def turn_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServe]:
    """coturn (``use-auth-secret``) and ``collab serve --turn-secret …`` relay-only, with one
    archived room seeded while the server is down."""
    work = tmp_path_factory.mktemp("turn-serve")
    coturn = Coturn(work / "coturn", secret=REST_SECRET, relay_ports=RELAY_PORTS)
    coturn.start()
    try:
        data = work / "data"
        data.mkdir()
        seed = work / "seed.txt"
        seed.write_text(SEED)
        store = f"sqlite:///{data / 'collab.db'}"
        done = subprocess.run(
            [COLLAB, "import", "archived-notes", str(seed), "--store", store],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        env = {
            # the environment, not the command line: a command line is visible to all users
            "COLLAB_TURN_SECRET": REST_SECRET,
            "COLLAB_TURN_URLS": json.dumps([coturn.url]),
            "COLLAB_TURN_TTL": str(TTL),
            "COLLAB_ICE_TRANSPORT_POLICY": "relay",
            "COLLAB_ROOMS": "archived-*",
            "COLLAB_LOG_LEVEL": "debug",  # the most a log could say, checked for the secret
        }
        server = CollabServer(data, work / "serve.log", env=env)
        server.start()
        try:
            yield TurnServe(server, coturn)
        finally:
            server.stop()
    finally:
        coturn.stop()


@asynccontextmanager
async def browser(tmp_path: Path, name: str) -> AsyncIterator[Chromium]:
    """One Chromium process with its own profile (no BroadcastChannel with the others)."""
    chromium = Chromium(tmp_path / f"profile-{name}", name=name)
    try:
        await chromium.start()
        yield chromium
    finally:
        await chromium.close()


async def open_room(chromium: Chromium, base: str, room: str) -> Page:
    """The collab page, in ``room``, once y-webrtc's room exists."""
    assert chromium.browser is not None
    page = await chromium.browser.contexts[0].new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda m: chromium.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: chromium.console.append(f"pageerror: {e}"))
    await page.goto(f"{base}/#/room/{room}")
    await page.wait_for_function("() => !!(window.collabRoom && window.collabRoom.provider.room)")
    return page


async def relayed_conns(page: Page, count: int) -> dict[str, Any]:
    """Wait until ``count`` connections are open with a selected candidate pair; their stats."""
    with anyio.fail_after(40):
        while True:
            state: dict[str, Any] = await page.evaluate(CONNS)
            ready = [
                c for c in state["conns"] if c["connected"] and c.get("local") and c.get("remote")
            ]
            if len(ready) >= count:
                return state
            await anyio.sleep(0.1)  # getStats() has no event; poll the browser's state


def assert_relay_only(state: dict[str, Any]) -> None:
    assert state["bc"] == []  # no BroadcastChannel shortcut: separate browser processes
    for conn in state["conns"]:
        if not conn["connected"]:
            continue
        assert conn["policy"] == "relay", conn
        assert set(conn["localTypes"]) == {"relay"}, conn  # nothing else was even gathered
        assert conn["local"]["type"] == "relay", conn
        remote = conn["remote"]
        # the remote end is a relay allocation of the same coturn
        assert remote["address"] == RELAY_IP, conn
        assert RELAY_PORTS[0] <= remote["port"] <= RELAY_PORTS[1], conn
        assert conn["bytesSent"] > 0, conn


async def text_of(page: Page) -> str:
    return str(await page.evaluate("() => window.collabRoom.ytext.toString()"))


async def test_config_hands_out_time_limited_relay_credentials(turn_serve: TurnServe) -> None:
    answer = httpx.get(turn_serve.server.http + "/api/config", timeout=10)
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["iceTransportPolicy"] == "relay"
    assert 0 < body["credentialTtl"] <= TTL
    [turn] = body["iceServers"]
    assert turn["urls"] == [turn_serve.coturn.url]
    assert re.fullmatch(r"\d+:web-[0-9a-f]{8}", turn["username"])
    second = httpx.get(turn_serve.server.http + "/api/config", timeout=10).json()
    assert second["iceServers"][0]["username"] != turn["username"]  # one per page


async def test_browser_syncs_with_the_replica_through_the_relay(
    turn_serve: TurnServe, tmp_path: Path
) -> None:
    server = turn_serve.server
    room = "archived-notes"
    async with browser(tmp_path, "alone") as chromium:
        page = await open_room(chromium, server.http, room)
        # the archive's text can only have come from the replica: nobody else is in the room
        await page.wait_for_function(
            "seed => window.collabRoom.ytext.toString() === seed", arg=SEED, timeout=40_000
        )
        await page.evaluate("() => window.collabRoom.ytext.insert(0, 'typed in Chromium. ')")
        expected = "typed in Chromium. " + SEED

        def archived() -> bool:
            return server.get(f"/api/rooms/{room}/text").text == expected

        await wait_until(archived, 40)
        state = await relayed_conns(page, 1)
        assert len([c for c in state["conns"] if c["connected"]]) == 1, state  # the replica
        assert_relay_only(state)
    coturn = turn_serve.coturn
    assert coturn.allocations(r"\d+:replica"), coturn.log()
    assert coturn.allocations(r"\d+:web-[0-9a-f]{8}"), coturn.log()


async def test_two_browsers_sync_through_the_relay(turn_serve: TurnServe, tmp_path: Path) -> None:
    server = turn_serve.server
    room = "pair-notes"  # not archived (--rooms archived-*): the browsers only have each other
    async with browser(tmp_path, "a") as one, browser(tmp_path, "b") as two:
        a = await open_room(one, server.http, room)
        b = await open_room(two, server.http, room)
        state_a = await relayed_conns(a, 1)
        state_b = await relayed_conns(b, 1)
        assert [c["peerId"] for c in state_a["conns"] if c["connected"]] == [state_b["peerId"]]
        assert [c["peerId"] for c in state_b["conns"] if c["connected"]] == [state_a["peerId"]]
        await a.evaluate("() => window.collabRoom.ytext.insert(0, 'from A')")
        await b.wait_for_function("() => window.collabRoom.ytext.toString() === 'from A'")
        await b.evaluate("() => window.collabRoom.ytext.insert(6, ', from B')")
        await a.wait_for_function("() => window.collabRoom.ytext.toString() === 'from A, from B'")
        assert_relay_only(await a.evaluate(CONNS))
        assert_relay_only(await b.evaluate(CONNS))
    assert server.get(f"/api/rooms/{room}/text").status_code == 404  # never went via the archive


async def test_the_secret_is_never_shown(turn_serve: TurnServe) -> None:
    """Not in any answer, nor in the server's output at debug level after the tests above;
    the credentials handed out are not logged either."""
    server = turn_serve.server
    answers = [
        server.get(path).text
        for path in ("/", "/api/config", "/metrics", "/openapi.json", "/readyz", "/healthz")
    ]
    credential = server.get("/api/config").json()["iceServers"][0]["credential"]
    for text in [*answers, server.output()]:
        assert REST_SECRET not in text
    assert credential not in server.output()
