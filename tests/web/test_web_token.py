"""The page keeps the ``?token=`` of its URL on the signaling URL and sends it to the API, against
a ``collab serve`` that requires signed tokens."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import anyio
import pytest
from playwright.async_api import WebSocket

from tests.web.web_helpers import (
    TIMEOUT_MS,
    VENV_BIN,
    BrowserLauncher,
    WebServer,
    build_page,
    open_room,
    server_mode,
    start_server,
    type_at_end,
    wait_signaling,
)

pytestmark = pytest.mark.anyio

SECRET = "web-test-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A second ``collab serve`` with signaling tokens required."""
    if server_mode() != "collab":
        pytest.skip("needs `collab serve` (signed signaling tokens)")
    build_page()
    server = start_server(
        "collab",
        tmp_path_factory.mktemp("web-token-server"),
        {"COLLAB_AUTH_REQUIRED": "true", "COLLAB_TOKEN_SECRET": SECRET},
    )
    try:
        yield server
    finally:
        server.stop()


def mint(room: str) -> str:
    run = subprocess.run(
        [str(VENV_BIN / "collab"), "token", "--room", room, "--secret", SECRET, "--ttl", "600"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout.strip().splitlines()[-1]


async def test_token_in_the_page_url_reaches_signaling_and_the_api(
    locked_server: WebServer, browsers: BrowserLauncher
) -> None:
    room = f"token-{uuid.uuid4().hex[:8]}"
    token = mint(room)

    # Without a token, the signaling server refuses the page's socket.
    anon = await browsers.launch("anon")
    page_anon = await anon.new_page()
    refused = anyio.Event()

    def watch(ws: WebSocket) -> None:
        if "/signaling" in ws.url:
            ws.on("close", lambda _ws: refused.set())
            ws.on("socketerror", lambda _err: refused.set())

    page_anon.on("websocket", watch)
    await page_anon.goto(locked_server.room_url(room))
    with anyio.fail_after(TIMEOUT_MS / 1000):
        await refused.wait()

    # With the token in the page URL: signaling, the replica, and the API (history) all work.
    alice = await browsers.launch("alice")
    page = await alice.new_page()
    await open_room(page, locked_server, room, query={"token": token})
    await wait_signaling(page)
    url = await page.evaluate("() => window.collabRoom.provider.signalingConns[0].url")
    assert url.endswith(f"/signaling?token={token}")
    await page.locator('#people .person[data-role="replica"]').wait_for()
    await type_at_end(page, "only for token holders")
    await page.wait_for_function(
        "() => document.querySelector('#archive-status').dataset.state === 'saved'"
    )
    await page.locator("#history-panel").wait_for()  # /versions answered 200: bearer accepted
    # The anonymous page (its socket keeps being refused; lib0 keeps retrying) never got in.
    assert await page_anon.locator("#history-panel").is_hidden()
    assert await page_anon.evaluate(
        """() => ({
          conns: window.collabRoom.provider.room.webrtcConns.size,
          people: window.collabRoom.awareness.getStates().size,
          text: window.collabRoom.ytext.toString(),
        })"""
    ) == {"conns": 0, "people": 1, "text": ""}
