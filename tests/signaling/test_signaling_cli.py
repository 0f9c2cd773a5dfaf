"""``collab signaling`` runs the service alone (both engines), as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from sig_helpers import ROOT, WAIT, client, free_port

from signaling.server import load_settings


def start_cli(engine: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "collabd.cli", "signaling", "--port", str(port), "--engine", engine],
        cwd=ROOT,
        env={**os.environ, "COLLAB_MAX_TOPICS_PER_SOCKET": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("engine", "banner"),
    [("uvicorn", b"collab signaling is serving on"), ("fast", b"collab signaling is serving on")],
)
async def test_collab_signaling_command(engine: str, banner: bytes) -> None:
    port = free_port()
    proc = start_cli(engine, port)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(WAIT * 2):  # the banner on stdout, once it listens
            while banner not in (line := await anyio.to_thread.run_sync(proc.stdout.readline)):
                assert line, "server exited before listening"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/")).text == "okay"
        async with client(f"ws://127.0.0.1:{port}") as c:
            await c.send({"type": "subscribe", "topics": ["a"]})
            await c.send({"type": "publish", "topic": "a", "data": 1})
            assert await c.recv() == {"type": "publish", "topic": "a", "data": 1, "clients": 1}
            await c.send({"type": "subscribe", "topics": ["b"]})  # env limit: one topic
            assert await c.closed() == (4429, "too many topics")
        with anyio.fail_after(WAIT):  # the structured log line of that close, key=value
            while b"socket closed by server" not in (
                line := await anyio.to_thread.run_sync(proc.stderr.readline)
            ):
                assert line
        assert b"code=4429" in line and b"reason='too many topics'" in line
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_config_file_env_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "signaling.env"
    cfg.write_text('COLLAB_MAX_TOPICS_PER_SOCKET=7\nCOLLAB_ALLOWED_ORIGINS=["https://a.example"]\n')
    monkeypatch.setenv("COLLAB_IDLE_TIMEOUT_SECONDS", "12.5")
    s = load_settings(cfg, redis_url="redis://127.0.0.1:1/0")
    assert s.max_topics_per_socket == 7 and s.allowed_origins == ["https://a.example"]
    assert s.idle_timeout_seconds == 12.5 and s.redis_url == "redis://127.0.0.1:1/0"
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.env")
