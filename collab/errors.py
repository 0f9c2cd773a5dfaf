"""The collab exception hierarchy.

Everything collab raises on purpose derives from :class:`CollabError`. Errors caused by a
remote party (a peer, a socket, a file) carry a short machine-readable ``code`` so callers can
log, count and close with a reason; misuse of the API raises ``ValueError``/``RuntimeError``
with a message that says how to fix it.

Example:
    >>> from collab.errors import ProtocolError
    >>> try:
    ...     raise ProtocolError("truncated", "varUint ends early")
    ... except ProtocolError as e:
    ...     e.code
    'truncated'
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CollabError",
    "NotFoundError",
    "ProtocolError",
    "StorageError",
    "TransportError",
]


class CollabError(Exception):
    """Base class of every error collab raises on purpose.

    Attributes:
        code: a short, stable, machine-readable reason (used in logs, metrics, close reasons).
    """

    code: str

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        super().__init__(f"{code}: {message}" if message else code)


class ProtocolError(CollabError):
    """Bytes from a peer do not form a valid message (malformed, truncated, oversized, unknown).

    Codes used by :mod:`collab.protocol` and :mod:`collab.lib0`: ``empty``, ``truncated``,
    ``too-large``, ``overflow``, ``unknown-type``, ``trailing-bytes``, ``bad-utf8``,
    ``bad-json``, ``too-deep``, ``bad-update``, ``bad-value``.
    """


class TransportError(CollabError):
    """The other side went away or the transport failed (closed channel, lost socket)."""


class StorageError(CollabError):
    """The store failed (disk full, read-only, corrupt, locked). Never means "not found"."""


class NotFoundError(CollabError):
    """The requested room, version or document does not exist."""


class AuthError(CollabError):
    """A token is missing, invalid, expired, or does not grant the requested access."""
