"""Run the standalone signaling app with uvicorn (used by ``collab signaling``).

Example:
    >>> # run_signaling(host="127.0.0.1", port=4444, redis_url=None, config=None)
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import uvicorn

from signaling.app import create_app
from signaling.settings import SignalingSettings
from signaling.websocket import SignalingWebSocket


def load_settings(config: Path | None = None, **overrides: object) -> SignalingSettings:
    """Settings from the environment (``COLLAB_*``), an optional env-style file, and overrides.

    Args:
        config: a ``KEY=value`` file (same names as the env vars, e.g. ``COLLAB_REDIS_URL=...``).
        **overrides: explicit values (``None`` values are ignored).

    Example:
        >>> load_settings(max_topics_per_socket=3).max_topics_per_socket
        3
    """
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        if not config.is_file():
            raise FileNotFoundError(f"config file not found: {config}")
        return SignalingSettings(_env_file=config, **values)  # type: ignore[call-arg]
    return SignalingSettings(**values)


WS_IMPL = SignalingWebSocket
"""uvicorn's WebSocket protocol for signaling: ASGI sockets with a direct frame path
(``signaling.websocket``; measured against uvicorn's own three in signaling/README.md)."""


def run_signaling(
    host: str = "127.0.0.1",
    port: int = 4444,
    redis_url: str | None = None,
    config: Path | None = None,
    log_level: str = "info",
    *,
    sock: socket.socket | None = None,
) -> None:
    """Serve the signaling service alone (on ``host:port``, or on an already bound ``sock``).

    Serves ``create_app`` with uvicorn (uvloop + httptools when installed), the same engine
    ``collab serve`` mounts; WebSocket keepalive (pings every ``ws_ping_interval_seconds``,
    drop after ``ws_ping_timeout_seconds``) and the frame-size cap are enforced by uvicorn.
    """
    settings = load_settings(config, redis_url=redis_url)
    where: dict[str, Any] = {} if sock is not None else {"host": host, "port": port}
    server_config = uvicorn.Config(
        create_app(settings),
        **where,
        log_level=log_level,
        log_config=None,  # configure_logging formats uvicorn's lines too
        ws=WS_IMPL,
        ws_max_size=settings.max_frame_bytes + 1024,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
        ws_per_message_deflate=False,  # like bin/server.js (ws default); saves zlib per frame
        access_log=False,
        proxy_headers=False,
    )
    _AnnouncingServer(server_config, banner(host, port, sock)).run(
        sockets=[sock] if sock is not None else None
    )


def banner(host: str, port: int, sock: socket.socket | None) -> str:
    """The line printed once the signaling server accepts connections."""
    if sock is not None:
        host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"collab signaling is serving on ws://{shown}:{port}/signaling"


class _AnnouncingServer(uvicorn.Server):
    """uvicorn, printing :func:`banner` once it listens (scripts wait for that line)."""

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self.line = line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            print(self.line, flush=True)
