"""``collab signaling`` runs the service alone, as a real process."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from signaling.server import load_settings
from tests.signaling.sig_helpers import WAIT, client
from tests.support.servers import SignalingServer


@pytest.mark.anyio
async def test_collab_signaling_command(tmp_path: Path) -> None:
    server = SignalingServer(tmp_path / "signaling.log", env={"COLLAB_MAX_TOPICS_PER_SOCKET": "1"})
    # the banner, once it listens, names the port it picked (--port 0)
    await anyio.to_thread.run_sync(server.start)
    try:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{server.port}/")).text == "okay"
        async with client(server.base) as c:
            await c.send({"type": "subscribe", "topics": ["a"]})
            await c.send({"type": "publish", "topic": "a", "data": 1})
            assert await c.recv() == {"type": "publish", "topic": "a", "data": 1, "clients": 1}
            await c.send({"type": "subscribe", "topics": ["b"]})  # env limit: one topic
            assert await c.closed() == (4429, "too many topics")
        # the structured log line of that close, key=value
        line = await anyio.to_thread.run_sync(server.wait_for_line, "socket closed by server", WAIT)
        assert "code=4429" in line and "reason='too many topics'" in line
    finally:
        server.kill()


def test_config_file_env_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "signaling.env"
    cfg.write_text('COLLAB_MAX_TOPICS_PER_SOCKET=7\nCOLLAB_ALLOWED_ORIGINS=["https://a.example"]\n')
    monkeypatch.setenv("COLLAB_IDLE_TIMEOUT_SECONDS", "12.5")
    s = load_settings(cfg, redis_url="redis://127.0.0.1:1/0")
    assert s.max_topics_per_socket == 7 and s.allowed_origins == ["https://a.example"]
    assert s.idle_timeout_seconds == 12.5 and s.redis_url == "redis://127.0.0.1:1/0"
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.env")
