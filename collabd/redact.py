"""Keep secrets out of log lines: query strings in access logs, passwords in store URLs.

Tokens travel in ``?token=`` (browsers cannot set headers on a WebSocket upgrade), so every
access-log line that prints a request path would print them. :class:`RedactQueryFilter`
rewrites the path arguments of uvicorn's access (and error) records to end in ``?…``.
:func:`redact_url` removes a password from a URL before it is printed.

Example:
    >>> redact_url("postgresql://archive:s3cret@db:5432/collab")
    'postgresql://archive:***@db:5432/collab'
    >>> redact_url("sqlite:////var/lib/collab/collab.db")
    'sqlite:////var/lib/collab/collab.db'
    >>> redact_query("/signaling?token=abc")
    '/signaling?…'
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

__all__ = ["RedactQueryFilter", "install_redaction", "redact_query", "redact_url"]


def redact_query(text: str) -> str:
    """``path?query`` → ``path?…`` (anything without ``?`` is returned unchanged)."""
    head, sep, _query = text.partition("?")
    return head + "?…" if sep else text


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***`` and its query by ``…``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None and not parts.query:
        return url  # nothing secret (and urlunsplit would change sqlite:////abs paths)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:***@{host}"
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class RedactQueryFilter(logging.Filter):
    """Redacts query strings in the arguments of a log record (uvicorn access lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record.args`` in place; never drops a record."""
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                redact_query(a) if isinstance(a, str) and "?" in a else a for a in args
            )
        elif isinstance(record.msg, str) and "?" in record.msg and not args:
            record.msg = " ".join(redact_query(w) for w in record.msg.split(" "))
        return True


def install_redaction() -> None:
    """Attach :class:`RedactQueryFilter` to uvicorn's access and error loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryFilter) for f in logger.filters):
            logger.addFilter(RedactQueryFilter())
