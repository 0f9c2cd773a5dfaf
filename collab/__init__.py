"""collab: the Python core for Yjs over WebRTC.

Public API (one import path): the wire format (:mod:`collab.protocol`, :mod:`collab.lib0`),
signaling encryption (:mod:`collab.crypto`) and the error hierarchy.
"""

from collab.errors import (
    AuthError,
    CollabError,
    NotFoundError,
    ProtocolError,
    StorageError,
    TransportError,
)
from collab.types import Channel

__all__ = [
    "AuthError",
    "Channel",
    "CollabError",
    "NotFoundError",
    "ProtocolError",
    "StorageError",
    "TransportError",
]
