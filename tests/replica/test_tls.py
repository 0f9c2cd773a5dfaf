"""``collab serve --tls-cert/--tls-key``: HTTPS and WSS on the public port; the replica still
joins through its own loopback-only plain listener (it never has to trust the certificate)."""

from __future__ import annotations

import json
import signal
import ssl
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.replica.certs import self_signed
from tests.support.paths import COLLAB
from tests.support.processes import Process, wait_until
from tests.support.servers import banner_port

pytestmark = pytest.mark.anyio


async def test_serve_with_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    srv = Process(
        [COLLAB, "serve", "--port", "0", "--data", str(tmp_path / "data"),
         "--tls-cert", str(cert), "--tls-key", str(key)],
        tmp_path / "serve.log",
    )  # fmt: skip
    srv.start()
    try:
        line = srv.wait_for_line(r"collab is serving on", 60)
        port = banner_port(line)
        assert f"https://127.0.0.1:{port}/" in line
        base = f"https://localhost:{port}"
        context = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(base + "/healthz", verify=context).text == "okay"
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the public port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)

        # the replica's own signaling socket arrives through the internal listener
        def replica_connected() -> bool:
            metrics = httpx.get(base + "/metrics", verify=context).text
            return 'collab_signaling_sockets{endpoint="yjs"} 1.0' in metrics

        await wait_until(replica_connected, 30)

        # y-webrtc signaling over WSS
        async with connect(f"wss://localhost:{port}/signaling", ssl=context) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": ["tls-room"]}))
            await ws.send(json.dumps({"type": "publish", "topic": "tls-room", "data": {"x": 1}}))
            got = json.loads(await ws.recv())
            assert got == {"type": "publish", "topic": "tls-room", "data": {"x": 1}, "clients": 1}
    finally:
        srv.kill(signal.SIGTERM)
