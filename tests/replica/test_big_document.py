"""A 10 MB document (50k typed runs + one 5 MB paste) reaches a fresh stock y-webrtc browser from
the replica: every data-channel message stays within Chromium's max-message-size (a bigger one
would be dropped silently), so the browser's text equals the archive's byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.replica.bigdoc import archive_document, build_document
from tests.support.browser import Chromium
from tests.support.marks import needs_chromium, needs_netns
from tests.support.servers import CollabServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    needs_netns,
    needs_chromium,
]

SHA256_JS = """async () => {
  const t = window.collabTest.text()
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(t))
  return Array.from(new Uint8Array(d)).map(b => b.toString(16).padStart(2, '0')).join('')
}"""


async def test_ten_megabyte_document_reaches_a_fresh_browser(
    tmp_path: Path, chromium: Chromium, page_url: str
) -> None:
    document = build_document(typed_bytes=5_000_000, paste_bytes=5_000_000)
    text = str(document.text())
    assert len(text) >= 10_000_000
    (tmp_path / "data").mkdir()
    await archive_document(f"sqlite:///{tmp_path / 'data' / 'collab.db'}", "big", document)
    server = CollabServer(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    try:
        assert len(server.get("/api/rooms/big/text").text) == len(text)
        page = await chromium.open(page_url)
        await page.evaluate(
            "a => window.collabTest.start(a)", {"room": "big", "signaling": server.signaling}
        )
        await page.wait_for_function(
            "n => window.collabTest.textLength() >= n",
            arg=len(text),
            timeout=120_000,
            polling=100,
        )
        assert await page.evaluate(SHA256_JS) == hashlib.sha256(text.encode()).hexdigest()
    finally:
        server.kill()
