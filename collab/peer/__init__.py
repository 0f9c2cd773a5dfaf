"""The Python WebRTC peer: a headless aiortc peer that speaks y-webrtc.

Public names:

* :class:`WebrtcRoom` — join a room with an existing sync room (the archival replica does this);
* :class:`WebrtcPeer` — document, awareness, sync room and WebRTC room in one ``async with``;
* :class:`SignalingClient` — one signaling socket, shareable by many rooms;
* :class:`PeerConfig`, :class:`IceServer` — options;
* :class:`ConnectionStats`, :class:`PeerInfo` — what ``stats()`` / ``peers()`` return;
* :class:`DataChannel` — the aiortc data channel as a :class:`collab.types.Channel`.

This is the only package of collab that imports aiortc.

Example:
    >>> from collab.peer import PeerConfig, WebrtcPeer
    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with WebrtcPeer("room", "ws://127.0.0.1:8000/signaling",
    ...                           config=PeerConfig(ice_servers=[])) as peer:
    ...         peer.document.text().insert(0, "hello")
"""

from __future__ import annotations

from collab.peer.config import IceServer, PeerConfig
from collab.peer.datachannel import DataChannel
from collab.peer.remote import ConnectionStats, RemotePeer
from collab.peer.room import ChannelServer, PeerInfo, RoomCounters, WebrtcRoom
from collab.peer.signaling_client import SignalingClient
from collab.peer.webrtc_peer import SignalingPool, WebrtcPeer

__all__ = [
    "ChannelServer",
    "ConnectionStats",
    "DataChannel",
    "IceServer",
    "PeerConfig",
    "PeerInfo",
    "RemotePeer",
    "RoomCounters",
    "SignalingClient",
    "SignalingPool",
    "WebrtcPeer",
    "WebrtcRoom",
]
