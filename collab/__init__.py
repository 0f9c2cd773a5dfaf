"""collab: the Python core for Yjs over WebRTC.

One import path for the public API. The wire format, errors and channel seam load eagerly; the
WebRTC peer (aiortc), the replica and storage load on first use, so ``import collab`` stays
light and the core never pulls in aiortc.

Example:
    >>> import collab
    >>> collab.ProtocolError("truncated").code
    'truncated'
    >>> collab.WebrtcPeer.__name__  # loads collab.peer on first access
    'WebrtcPeer'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from collab.errors import (
    AuthError,
    CollabError,
    NotFoundError,
    ProtocolError,
    StorageError,
    TransportError,
)
from collab.types import Channel

if TYPE_CHECKING:
    from collab.awareness import Awareness
    from collab.document import Document
    from collab.peer import IceServer, PeerConfig, WebrtcPeer, WebrtcRoom
    from collab.replica import ArchivalReplica, ReplicaOptions, RoomPolicy
    from collab.storage import StoreOptions, UpdateStore, open_store
    from collab.sync import SyncRoom

__all__ = [
    "ArchivalReplica",
    "AuthError",
    "Awareness",
    "Channel",
    "CollabError",
    "Document",
    "IceServer",
    "NotFoundError",
    "PeerConfig",
    "ProtocolError",
    "ReplicaOptions",
    "RoomPolicy",
    "StorageError",
    "StoreOptions",
    "SyncRoom",
    "TransportError",
    "UpdateStore",
    "WebrtcPeer",
    "WebrtcRoom",
    "open_store",
]

_LAZY = {
    "Awareness": "collab.awareness",
    "Document": "collab.document",
    "SyncRoom": "collab.sync",
    "IceServer": "collab.peer",
    "PeerConfig": "collab.peer",
    "WebrtcPeer": "collab.peer",
    "WebrtcRoom": "collab.peer",
    "ArchivalReplica": "collab.replica",
    "ReplicaOptions": "collab.replica",
    "RoomPolicy": "collab.replica",
    "StoreOptions": "collab.storage",
    "UpdateStore": "collab.storage",
    "open_store": "collab.storage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'collab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
