"""The app factory: the signaling service's routes on a FastAPI app (standalone or mounted).

The service is split by job: ``signaling.admission`` (Origin, token, per-address limits,
per-frame shaping), ``signaling.protocol`` (``SignalingService``: topics, fan-out, named
dialect, lifecycle), ``signaling.transport`` (sockets over ASGI), ``signaling.conn`` (one
socket). This module wires them to routes and re-exports the names callers import.

Endpoints (see README.md):

* ``WS /signaling`` — y-webrtc signaling (``subscribe``/``unsubscribe``/``publish``/``ping``).
* ``WS /named/{room}`` — the named-peer dialect (``signaling.named``).
* ``GET /healthz`` — ``200 okay`` (the reference server's health answer).
* ``GET /metrics`` — Prometheus text format (per-app registry).
* Standalone only (``create_app``): ``GET /`` answers ``okay`` and ``WS /`` is y-webrtc
  signaling too, so ``ws://host:port`` works as a drop-in for ``bin/server.js``.

Example:
    >>> app = create_app(SignalingSettings())
    >>> # uvicorn.run(app, port=4444); then WebrtcProvider(room, doc, {signaling: ['ws://localhost:4444']})
    >>> from fastapi import FastAPI
    >>> service = install_signaling(FastAPI(), SignalingSettings())
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

from signaling.admission import INTERNAL_CLAIMS, INTERNAL_HEADER
from signaling.conn import Conn, FrameHandler, Violation
from signaling.hooks import SignalingHooks
from signaling.protocol import SignalingService, valid_room
from signaling.settings import SignalingSettings
from signaling.transport import SignalingFront


def install_signaling(
    app: FastAPI,
    settings: SignalingSettings | None = None,
    hooks: SignalingHooks | None = None,
    *,
    path: str = "/signaling",
    named_path: str | None = "/named/{room}",
    health_path: str | None = "/healthz",
    metrics_path: str | None = "/metrics",
    root: bool = False,
) -> SignalingService:
    """Mount the signaling routes on an existing FastAPI app.

    Args:
        app: the app to extend (e.g. collabd's combined app serving the web page at ``/``).
        settings: limits and options (default: ``SignalingSettings()`` from the environment).
        hooks: composition hooks.
        path: the y-webrtc WebSocket path.
        named_path: the named-dialect path (must end with ``/{room}``), or None to skip.
        health_path: plain-text ``okay`` health answer, or None to skip.
        metrics_path: Prometheus endpoint, or None to skip.
        root: also answer ``GET /`` with ``okay`` and accept y-webrtc sockets at ``/``.

    Returns:
        The service; start/stop it from the app's lifespan (or let it start lazily).

    Example:
        >>> from fastapi import FastAPI
        >>> svc = install_signaling(FastAPI(), SignalingSettings(), metrics_path=None)
        >>> svc.settings.max_frame_bytes
        262144
    """
    if named_path is not None and not named_path.endswith("/{room}"):
        raise ValueError("named_path must end with '/{room}'")
    service = SignalingService(settings, hooks)
    # the sockets bypass routing and the framework's middleware (per frame, that is most of
    # the cost); middleware added later (e.g. a Host check) still wraps them
    app.add_middleware(
        SignalingFront,
        service=service,
        paths=(path, "/") if root else (path,),
        named_prefix=None if named_path is None else named_path.removesuffix("{room}"),
    )

    async def okay() -> PlainTextResponse:
        return PlainTextResponse("okay")

    if health_path is not None:
        app.add_api_route(health_path, okay, methods=["GET"], include_in_schema=False)
    if root:
        app.add_api_route("/", okay, methods=["GET"], include_in_schema=False)
    if metrics_path is not None:

        async def metrics() -> Response:
            return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

        app.add_api_route(metrics_path, metrics, methods=["GET"], include_in_schema=False)
    return service


def create_app(
    settings: SignalingSettings | None = None, hooks: SignalingHooks | None = None
) -> FastAPI:
    """A standalone signaling app (drop-in for y-webrtc's ``bin/server.js``).

    Serves everything ``install_signaling`` does plus ``GET /`` → ``okay`` and y-webrtc sockets
    at ``/``. The service is at ``app.state.signaling``.

    Example:
        >>> app = create_app()
        >>> isinstance(app.state.signaling, SignalingService)
        True
    """
    holder: dict[str, SignalingService] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with holder["service"]:
            yield

    app = FastAPI(title="collab signaling", lifespan=lifespan, docs_url=None, redoc_url=None)
    service = install_signaling(app, settings, hooks, root=True)
    holder["service"] = service
    app.state.signaling = service
    return app


__all__ = [
    "INTERNAL_CLAIMS",
    "INTERNAL_HEADER",
    "Conn",
    "FrameHandler",
    "SignalingService",
    "Violation",
    "create_app",
    "install_signaling",
    "valid_room",
]
