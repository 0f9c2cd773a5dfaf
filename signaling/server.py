"""Run the standalone signaling app with uvicorn (used by ``collab signaling``).

Example:
    >>> # run_signaling(host="127.0.0.1", port=4444, redis_url=None, config=None)
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import uvicorn

from signaling.app import create_app
from signaling.settings import SignalingSettings

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class KeyValueFormatter(logging.Formatter):
    """Appends a record's ``extra=`` fields as ``key=value`` pairs (structured, grep-friendly).

    Example:
        >>> rec = logging.LogRecord("signaling", logging.INFO, "", 0, "socket refused", None, None)
        >>> rec.code = 4401
        >>> KeyValueFormatter("%(message)s").format(rec)
        'socket refused code=4401'
    """

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = [
            f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        ]
        return f"{base} {' '.join(extras)}" if extras else base


def configure_logging(level: str = "info") -> None:
    """Log to stderr as ``time level logger message key=value ...``."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


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


def run_signaling(
    host: str = "127.0.0.1",
    port: int = 4444,
    redis_url: str | None = None,
    config: Path | None = None,
    log_level: str = "info",
    engine: str = "uvicorn",
) -> None:
    """Serve the signaling service alone.

    ``engine="uvicorn"`` (default) serves ``create_app`` with uvicorn (uvloop + httptools when
    installed); WebSocket keepalive (pings every ``ws_ping_interval_seconds``, drop after
    ``ws_ping_timeout_seconds``) and the frame-size cap are enforced by uvicorn as well.
    ``engine="fast"`` serves the same service on the websockets server (``signaling.fastserver``).
    """
    if engine not in ("uvicorn", "fast"):
        raise ValueError("engine must be 'uvicorn' or 'fast'")
    settings = load_settings(config, redis_url=redis_url)
    configure_logging(log_level)
    if engine == "fast":
        from signaling.fastserver import run_fast

        try:
            import uvloop

            uvloop.run(run_fast(settings, host, port))
        except ImportError:
            asyncio.run(run_fast(settings, host, port))
        except KeyboardInterrupt:
            logging.getLogger("signaling").info("stopped")
        return
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=settings.max_frame_bytes + 1024,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
        ws_per_message_deflate=False,  # like bin/server.js (ws default); saves zlib per frame
        access_log=False,
        proxy_headers=False,
    )
