"""``collab serve``: signaling + archival replica + HTTP API + web page on one port.

The replica is an ordinary y-webrtc peer: it connects to this very server's ``/signaling``
over a WebSocket, and the signaling hooks tell it when a room opens so it can join.

==================  ==========================================================
``/``               the web page (``web/dist``)
``/signaling``      y-webrtc signaling (``/named/{room}``: the named-peer dialect)
``/api/...``        the replica's HTTP API (OpenAPI at ``/docs``)
``/healthz``        ``okay``
``/metrics``        Prometheus metrics (signaling + storage + replica)
==================  ==========================================================

Example:
    >>> # build_app(ServeSettings(data="/tmp/collab"), port=8000) -> FastAPI
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr

from collab.peer.config import IceServer, PeerConfig
from collab.replica import ArchivalReplica, ReplicaOptions, RoomPolicy
from collab.storage import open_store
from collabd.api import api_router
from collabd.hosts import AllowedHostsMiddleware, default_allowed_hosts
from collabd.redact import install_redaction, redact_url
from collabd.runtime import LoopMonitor, ReplicaCollector, raise_fd_limit
from collabd.settings import ServeSettings, parse_ice_servers
from signaling.app import INTERNAL_HEADER, install_signaling
from signaling.hooks import SignalingHooks
from signaling.server import load_settings
from signaling.settings import SignalingSettings

__all__ = ["build_app", "run_serve"]

log = logging.getLogger("collabd")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEB_DIR = ROOT / "web" / "dist"


def _replica_signaling(port: int, sig: SignalingSettings) -> tuple[str, dict[str, str]]:
    """The replica's own signaling URL — the loopback-only plain listener — and the header
    carrying the per-process internal key (exempts its one socket, which carries every room,
    from per-socket limits; a header, never the URL, which access logs print)."""
    key = sig.internal_key.get_secret_value() if sig.internal_key is not None else ""
    return f"ws://127.0.0.1:{port}/signaling", ({INTERNAL_HEADER: key} if key else {})


def build_app(
    settings: ServeSettings,
    *,
    port: int,
    signaling_settings: SignalingSettings | None = None,
) -> FastAPI:
    """Compose the one-port app.

    Args:
        settings: serve options.
        port: the port the server really listens on (the replica connects to it).
        signaling_settings: limits/tokens (default: from the environment).
    """
    sig = signaling_settings or load_settings()
    ice = parse_ice_servers(settings.ice_servers)
    peer_config = PeerConfig(ice_servers=[IceServer(**server) for server in ice])
    store = open_store(settings.store_url)
    options = ReplicaOptions(
        policy=RoomPolicy.parse(settings.rooms),
        passwords=dict(settings.room_passwords),
        text_name=settings.text_name,
        idle_unload_after=settings.idle_unload_after,
        version_pause=settings.version_pause,
        version_every=settings.version_every,
    )
    url, headers = _replica_signaling(port, sig)
    replica = ArchivalReplica(
        store, url, options=options, peer_config=peer_config, signaling_headers=headers
    )
    hooks = SignalingHooks(
        on_topic_opened=replica.on_topic_opened,
        on_subscriber_joined=replica.on_subscriber_joined,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service, store, replica, monitor:
            log.info("collab: archive ready")
            yield

    app = FastAPI(
        title="collab",
        description="y-webrtc signaling + archival replica + co-editing page",
        lifespan=lifespan,
    )
    service = install_signaling(app, sig, hooks)
    app.state.replica = replica
    app.state.store = store
    app.include_router(api_router(lambda: replica, sig, ice, settings.text_name))
    app.add_middleware(
        AllowedHostsMiddleware,
        allowed=default_allowed_hosts(settings.host) | set(settings.allowed_hosts),
    )
    monitor = LoopMonitor(service.metrics.registry)
    service.metrics.registry.register(ReplicaCollector(replica))
    app.state.loop_monitor = monitor
    _mount_web(app, settings.web_dir or DEFAULT_WEB_DIR)
    return app


def _mount_web(app: FastAPI, web_dir: Path) -> None:
    index = web_dir / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    async def page() -> Response:
        if not index.is_file():
            return Response(
                "web page not built: run `node web/build.mjs` (scripts/serve does it)",
                status_code=503,
                media_type="text/plain",
            )
        return FileResponse(index)

    if web_dir.is_dir():
        app.mount("/", StaticFiles(directory=web_dir), name="web")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_serve(settings: ServeSettings, log_level: str = "info") -> None:
    """Bind, print the URL, and serve until interrupted.

    A second, plain listener on ``127.0.0.1`` (random port) carries only the replica's own
    signaling connection, so the replica reaches this server whatever ``--host`` is and never
    has to trust the public TLS certificate.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings.data.mkdir(parents=True, exist_ok=True)
    raise_fd_limit()
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    internal = _bind("127.0.0.1", 0)
    sig = load_settings().model_copy(update={"internal_key": SecretStr(secrets.token_urlsafe(32))})
    tls: dict[str, Any] = {}
    scheme = "http"
    if settings.tls_cert is not None:
        if settings.tls_key is None:
            raise SystemExit("--tls-cert needs --tls-key")
        tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        scheme = "https"
    app = build_app(settings, port=internal.getsockname()[1], signaling_settings=sig)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        f"collab is serving on {scheme}://{shown}:{port}/  "
        f"(archive: {redact_url(settings.store_url)})",
        flush=True,
    )
    common: dict[str, Any] = {
        "log_level": log_level,
        "ws_max_size": sig.max_frame_bytes + 1024,
        "ws_ping_interval": sig.ws_ping_interval_seconds,
        "ws_ping_timeout": sig.ws_ping_timeout_seconds,
        # like y-webrtc's server: no per-message deflate (a zlib pass per frame per receiver)
        "ws_per_message_deflate": False,
    }
    public = uvicorn.Server(uvicorn.Config(app, proxy_headers=True, **common, **tls))
    # access_log stays on for both: uvicorn's switch is process-wide, and API writes must
    # leave an audit trail; query strings (tokens) are redacted from every access line
    private = uvicorn.Server(uvicorn.Config(app, lifespan="off", **common))
    install_redaction()

    async def both() -> None:
        await asyncio.gather(public.serve(sockets=[sock]), private.serve(sockets=[internal]))

    asyncio.run(both())
