"""Logging for every ``collab`` command: one line per record on stderr, as ``key=value`` text
or as JSON objects (``--log-format json``, for log shippers). ``collabd.cli`` calls
:func:`configure_logging` once per command, from the command's settings.

Example:
    >>> configure_logging("warning", "json")
"""

from __future__ import annotations

import json
import logging
import time

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "KeyValueFormatter",
    "check_format",
    "check_level",
    "configure_logging",
]

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's terminal-colour copy of the message
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as :class:`KeyValueFormatter`'s lines:
    ``time``, ``level``, ``logger``, ``message``, every ``extra=`` field, and ``exception``.

    Example:
        >>> rec = logging.LogRecord("signaling", logging.INFO, "", 0, "socket refused", None, None)
        >>> rec.code = 4401
        >>> rec.created, rec.msecs = 0.0, 0.0
        >>> JsonFormatter().format(rec)
        '{"time": "1970-01-01T00:00:00.000Z", "level": "INFO", "logger": "signaling", \
"message": "socket refused", "code": 4401}'
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in out:
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


LOG_FORMATS = ("text", "json")
"""``--log-format`` values: ``text`` (``time level logger message key=value``) or ``json``."""


def check_level(level: str) -> str:
    """``level`` in lower case if it is a log level.

    Raises:
        ValueError: it is not.

    Example:
        >>> check_level("WARNING")
        'warning'
    """
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ValueError(f"unknown log level {level!r} (debug, info, warning, error)")
    return level.lower()


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`LOG_FORMATS`.

    Raises:
        ValueError: it is not.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    return fmt


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Log to stderr, one line per record: ``time level logger message key=value ...``, or
    one JSON object (``fmt="json"``, for log shippers).

    Raises:
        ValueError: unknown level or format.
    """
    check_format(fmt)
    check_level(level)
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would bypass the format: everything goes through the root
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
