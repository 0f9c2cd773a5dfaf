"""``collab serve``: signaling + archival replica + HTTP API + web page on one port.

The replica is an ordinary y-webrtc peer: it connects to this very server's ``/signaling``
over a WebSocket, and the signaling hooks tell it when a room opens so it can join.

==================  ==========================================================
``/``               the web page (``collabd/web`` in a wheel, else ``web/dist``)
``/signaling``      y-webrtc signaling (``/named/{room}``: the named-peer dialect)
``/api/...``        the replica's HTTP API (OpenAPI at ``/docs``)
``/healthz``        ``okay``: the process is alive (liveness)
``/readyz``         200 when able to archive (store answers, replica on signaling), else 503
``/metrics``        Prometheus metrics (signaling + storage + replica)
==================  ==========================================================

Example:
    >>> # build_app(ServeSettings(data="/tmp/collab"), port=8000) -> Served(app, store, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr, ValidationError

from collab.errors import StorageError
from collab.peer.config import IceServer, PeerConfig
from collab.replica import ArchivalReplica, RoomPolicy
from collab.service import Service
from collab.storage import StoreOptions, UpdateStore, open_store
from collabd.api import api_router
from collabd.hosts import AllowedHostsMiddleware, default_allowed_hosts
from collabd.options import invalid_setting
from collabd.redact import install_redaction, redact_url
from collabd.runtime import LoopMonitor, ReplicaCollector, raise_fd_limit
from collabd.settings import ServeSettings, parse_ice_servers
from collabd.startup import (
    USAGE,
    StartupError,
    bind_listener,
    check_tls,
    explain_storage,
    prepare_data_dir,
)
from collabd.turn import IceConfig
from collabd.webdir import default_web_dir
from collabd.webhooks import WebhookOptions, WebhookSender
from signaling.app import INTERNAL_HEADER, SignalingService, install_signaling
from signaling.hooks import SignalingHooks
from signaling.server import WS_IMPL, load_settings
from signaling.settings import SignalingSettings

__all__ = ["Served", "build_app", "run_serve"]

log = logging.getLogger("collabd")


def _replica_signaling(port: int, sig: SignalingSettings) -> tuple[str, dict[str, str]]:
    """The replica's own signaling URL — the loopback-only plain listener — and the header
    carrying the per-process internal key (exempts its one socket, which carries every room,
    from per-socket limits; a header, never the URL, which access logs print)."""
    key = sig.internal_key.get_secret_value() if sig.internal_key is not None else ""
    return f"ws://127.0.0.1:{port}/signaling", ({INTERNAL_HEADER: key} if key else {})


@dataclass
class Served:
    """Everything ``collab serve`` runs next to uvicorn (the composition root starts them in
    order: store, signaling, listeners, webhooks, replica, monitor)."""

    app: FastAPI
    store: UpdateStore
    store_url: str
    service: SignalingService
    replica: ArchivalReplica
    monitor: LoopMonitor
    webhooks: WebhookSender
    worker: Service | None = None
    "``--workers``: this worker's routing (collabd.workers), started after the replica."


def build_app(
    settings: ServeSettings,
    *,
    port: int,
    signaling_settings: SignalingSettings | None = None,
) -> Served:
    """Compose the one-port app and its parts (nothing is started here).

    Args:
        settings: serve options.
        port: the port of the loopback listener the replica connects to.
        signaling_settings: limits/tokens (default: from the environment).

    Raises:
        StartupError: an option is invalid (ICE servers, store URL).
    """
    sig = signaling_settings or load_settings()
    ice = _ice_config(settings)
    peer_config = PeerConfig(
        ice_servers=[IceServer(**server) for server in ice.servers],
        ice_servers_factory=_replica_turn(ice),
        ice_transport_policy=ice.policy,
    )
    try:
        store = open_store(settings.store_url, StoreOptions(lease_ttl=settings.lease_ttl))
    except ValueError as exc:
        raise StartupError(
            f"invalid store URL: {exc}", "use sqlite:///… or postgresql://…", USAGE
        ) from exc
    options = settings.replica_options(
        policy=RoomPolicy.parse(settings.rooms),
        passwords=dict(settings.room_passwords),
        idle_unload_after=settings.idle_unload_after,
    )
    url, headers = _replica_signaling(port, sig)
    replica = ArchivalReplica(
        store, url, options=options, peer_config=peer_config, signaling_headers=headers
    )
    hooks = SignalingHooks(
        on_topic_opened=replica.on_topic_opened,
        on_topic_closed=replica.on_topic_closed,
        on_subscriber_joined=replica.on_subscriber_joined,
    )
    app = FastAPI(
        title="collab", description="y-webrtc signaling + archival replica + co-editing page"
    )
    service = install_signaling(app, sig, hooks)
    app.state.replica = replica
    app.state.store = store
    app.include_router(
        api_router(
            lambda: replica, sig, ice, settings.text_name, allow_delete=settings.allow_delete
        )
    )
    app.add_middleware(
        AllowedHostsMiddleware,
        allowed=default_allowed_hosts(settings.host) | set(settings.allowed_hosts),
    )
    monitor = LoopMonitor(service.metrics.registry)
    service.metrics.registry.register(ReplicaCollector(replica))
    webhooks = WebhookSender(WebhookOptions.from_settings(settings), service.metrics.registry)
    replica.events.add(webhooks.emit)
    app.state.loop_monitor = monitor
    _install_readyz(app, store, replica)
    _mount_web(app, settings.web_dir or default_web_dir())
    return Served(app, store, settings.store_url, service, replica, monitor, webhooks)


def _ice_servers(text: str | None) -> list[dict[str, Any]]:
    hint = 'a JSON list like [{"urls": "stun:host:3478"}] or comma-separated stun:/turn: URLs'
    try:
        ice = parse_ice_servers(text)
        for server in ice:
            IceServer(**server)
    except (ValueError, TypeError) as exc:
        raise StartupError(f"invalid --ice-servers: {exc}", hint, USAGE) from exc
    return ice


def _ice_config(settings: ServeSettings) -> IceConfig:
    """``--ice-servers`` plus the TURN options (``--turn-secret``, ``--turn-url``,
    ``--turn-ttl``, ``--ice-transport-policy``), checked together."""
    servers = _ice_servers(settings.ice_servers)
    try:
        return IceConfig.from_settings(settings, servers)
    except ValueError as exc:
        raise StartupError(
            f"invalid TURN settings: {exc}", "see the README's STUN/TURN section", USAGE
        ) from exc


def _replica_turn(ice: IceConfig) -> Callable[[], list[IceServer]] | None:
    """With ``--turn-secret`` the replica mints its own TURN credential (user
    ``<expiry>:replica``) for every connection, so a long-running replica never offers an
    expired one."""
    if ice.turn_secret is None:
        return None
    return lambda: [IceServer(**server) for server in ice.ice_servers("replica")]


def _install_readyz(app: FastAPI, store: UpdateStore, replica: ArchivalReplica) -> None:
    """``/readyz``: 200 when able to archive (the store answers, the replica is connected to
    signaling), 503 with the reasons otherwise. ``/healthz`` only says the process is alive."""

    @app.get("/readyz", include_in_schema=False, response_model=None)
    async def readyz() -> Response:
        problems = []
        try:
            with anyio.fail_after(2):
                await store.ping()
            if not store.outage.up:
                problems.append("storage is failing to commit")
        except (StorageError, RuntimeError, TimeoutError) as exc:
            problems.append(f"storage does not answer ({type(exc).__name__})")
        if not replica.signaling.connected:
            problems.append("the replica is not connected to signaling")
        body = {"ready": not problems, "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)


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


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``collab serve`` handles SIGINT/SIGTERM once
    for both listeners and shuts the archive down in order."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()
        "Set once the listener accepts connections."

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


def run_serve(settings: ServeSettings) -> None:
    """Check everything that can be checked, bind, start in order, print the URL, serve.

    "collab is serving on …" is printed only once the listener is bound, the store is open and
    the replica is connected to signaling. A second, plain listener on ``127.0.0.1`` (random
    port) carries only the replica's own signaling connection, so the replica reaches this
    server whatever ``--host`` is and never has to trust the public TLS certificate.

    Raises:
        StartupError: an expected failure (one line for the operator; see collabd.startup).
    """
    from collabd.workers import WorkerContext, run_supervisor

    worker = WorkerContext.from_environment()  # set in a worker the supervisor started
    if worker is None and settings.workers > 1:
        run_supervisor(settings)  # N workers: each runs this function on inherited sockets
        return
    key = worker.key if worker is not None else secrets.token_urlsafe(32)
    try:
        sig = load_settings().model_copy(update={"internal_key": SecretStr(key)})
    except ValidationError as exc:
        raise invalid_setting(exc) from exc
    tls: dict[str, Any] = {}
    scheme = "http"
    if settings.tls_cert is not None:
        check_tls(settings.tls_cert, settings.tls_key)
        tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        scheme = "https"
    if settings.store is None:
        prepare_data_dir(settings.data)
    raise_fd_limit()
    sock = worker.public if worker is not None else bind_listener(settings.host, settings.port)
    port = sock.getsockname()[1]
    internal = worker.private if worker is not None else bind_listener("127.0.0.1", 0)
    served = build_app(settings, port=internal.getsockname()[1], signaling_settings=sig)
    if worker is not None:
        worker.install(served, settings)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    if ":" in shown:
        shown = f"[{shown}]"
    common: dict[str, Any] = {
        "log_level": settings.log_level,
        "log_config": None,  # configure_logging's handler formats uvicorn's lines too
        "lifespan": "off",  # run_serve starts the parts itself, in order
        "ws": WS_IMPL,  # the signaling transport's measured choice (signaling/README.md)
        "ws_max_size": sig.max_frame_bytes + 1024,
        "ws_ping_interval": sig.ws_ping_interval_seconds,
        "ws_ping_timeout": sig.ws_ping_timeout_seconds,
        # like y-webrtc's server: no per-message deflate (a zlib pass per frame per receiver)
        "ws_per_message_deflate": False,
    }
    public = _Server(uvicorn.Config(served.app, proxy_headers=True, **common, **tls))
    # access_log stays on for both: uvicorn's switch is process-wide, and API writes must
    # leave an audit trail; query strings (tokens) are redacted from every access line
    private = _Server(uvicorn.Config(served.app, **common))
    install_redaction()
    banner = (
        f"collab is serving on {scheme}://{shown}:{port}/  "
        f"(archive: {redact_url(settings.store_url)})"
    )
    if worker is not None:
        banner = worker.banner()  # the supervisor prints the one above
    asyncio.run(_serve(served, sig, (public, sock), (private, internal), banner))


async def _serve(
    served: Served,
    sig: SignalingSettings,
    public: tuple[_Server, socket.socket],
    private: tuple[_Server, socket.socket],
    banner: str,
) -> None:
    servers = (public[0], private[0])
    try:
        async with served.store, served.service:
            if served.service.bus is not None:
                await _wait_for_redis(served.service, sig)
            async with anyio.create_task_group() as tg:
                # the replica first (through the loopback listener), the public listener once
                # it follows rooms: no room a browser opens can go unnoticed
                tg.start_soon(private[0].serve, [private[1]])
                await _wait_started(private[0])
                # webhooks outlive the replica: its last events (on leaving) are still queued
                async with (
                    served.webhooks,
                    served.replica,
                    served.monitor,
                    served.worker or contextlib.nullcontext(),
                ):
                    await _wait_replica_connected(served.replica)
                    tg.start_soon(public[0].serve, [public[1]])
                    await _wait_started(public[0])
                    print(banner, flush=True)
                    log.info("collab: ready")
                    await _until_signalled(servers)
    except StorageError as exc:
        raise explain_storage(exc, served.store_url) from exc


async def _wait_started(server: _Server) -> None:
    with anyio.fail_after(30):
        await server.ready.wait()


async def _wait_replica_connected(replica: ArchivalReplica) -> None:
    try:
        with anyio.fail_after(15):
            await replica.signaling.wait_connected()
    except TimeoutError:
        raise StartupError(
            "the archival replica could not connect to this server's signaling listener",
            "run with --debug to see why (a firewall on 127.0.0.1?)",
        ) from None


async def _wait_for_redis(service: SignalingService, sig: SignalingSettings) -> None:
    bus = service.bus
    if bus is None:
        return
    with anyio.move_on_after(5):
        await bus.wait_up()
        return
    detail = f": {bus.last_error}" if bus.last_error is not None else ""
    raise StartupError(
        f"cannot reach Redis at {redact_url(sig.redis_url or '')}{detail}",
        "start Redis, or unset COLLAB_REDIS_URL to run a single instance",
    )


async def _until_signalled(servers: tuple[_Server, ...]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("collab: %s received, shutting down", signal.Signals(signum).name)
            for server in servers:
                if server.should_exit:
                    server.force_exit = True
                server.should_exit = True
            return
