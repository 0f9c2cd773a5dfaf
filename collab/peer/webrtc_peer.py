"""One document in one y-webrtc room, in one ``async with``: the everyday Python peer.

:class:`WebrtcPeer` = a :class:`collab.document.Document` + :class:`collab.awareness.Awareness`
+ a :class:`collab.sync.SyncRoom` hub + a :class:`collab.peer.room.WebrtcRoom`. A stock
y-webrtc browser in the same room cannot tell it from another browser.

:class:`SignalingPool` shares one :class:`SignalingClient` per URL between many rooms of one
process (the archival replica follows many rooms this way).

Example:
    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with WebrtcPeer("notes", "ws://127.0.0.1:8000/signaling",
    ...                           config=PeerConfig(ice_servers=[])) as peer:
    ...         peer.awareness.set_local_state({"user": {"name": "py"}})
    ...         peer.document.text().insert(0, "hello from Python")
    ...         await peer.wait_for_peers(1)
    ...         print(peer.peers(), await peer.stats())
"""

from __future__ import annotations

import logging
from typing import Any

from collab.awareness import Awareness
from collab.document import Document
from collab.peer._runner import TaskRunner
from collab.peer.config import PeerConfig
from collab.peer.connection import ConnectionStats
from collab.peer.room import PeerInfo, WebrtcRoom
from collab.peer.signaling_client import SignalingClient
from collab.sync import SyncOptions, SyncRoom

__all__ = ["SignalingPool", "WebrtcPeer"]

log = logging.getLogger(__name__)

_DEFAULT_STATE: Any = object()


class SignalingPool:
    """One shared :class:`SignalingClient` per URL.

    Example:
        >>> pool = SignalingPool(PeerConfig())
        >>> pool.client("ws://h/signaling") is pool.client("ws://h/signaling")
        True
    """

    def __init__(self, config: PeerConfig | None = None) -> None:
        self.config = config or PeerConfig()
        self._clients: dict[str, SignalingClient] = {}

    def client(self, url: str) -> SignalingClient:
        """The client for ``url`` (created on first use; rooms start/close it)."""
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = SignalingClient(url, self.config)
        return client

    def room(self, name: str, url: str, hub: Any, *, password: str | None = None) -> WebrtcRoom:
        """A :class:`WebrtcRoom` on the shared client for ``url`` (not started yet)."""
        return WebrtcRoom(name, self.client(url), hub, password=password, config=self.config)


class WebrtcPeer:
    """A Python peer editing one document in one y-webrtc room.

    Args:
        room: the room name.
        signaling: ``ws://`` URL or a (shared) :class:`SignalingClient`.
        password: the room password (encrypts signaling like y-webrtc), or None.
        config: ICE servers, limits, timers (:class:`PeerConfig`).
        document: an existing document (a fresh one by default).
        awareness_state: our initial awareness state (``{}`` like y-protocols; None = hidden).
        sync_options: options of the sync hub.

    Attributes:
        document: the shared :class:`~collab.document.Document` (edit it; observe it).
        awareness: the shared :class:`~collab.awareness.Awareness`.
        hub: the :class:`~collab.sync.SyncRoom` serving every data channel.
        room: the :class:`WebrtcRoom` (signaling + connections).
    """

    def __init__(
        self,
        room: str,
        signaling: str | SignalingClient,
        *,
        password: str | None = None,
        config: PeerConfig | None = None,
        document: Document | None = None,
        awareness_state: Any = _DEFAULT_STATE,
        sync_options: SyncOptions | None = None,
    ) -> None:
        self.document = document if document is not None else Document()
        state = {} if awareness_state is _DEFAULT_STATE else awareness_state
        self.awareness = Awareness(self.document.client_id, state=state)
        self.hub = SyncRoom(self.document, self.awareness, options=sync_options)
        self.room = WebrtcRoom(room, signaling, self.hub, password=password, config=config)
        self._runner = TaskRunner(f"peer {room}")

    async def start(self) -> None:
        """Join the room (returns at once; see :meth:`wait_for_peers`)."""
        await self._runner.start()
        self._runner.spawn(self.awareness.run)
        await self.room.start()

    async def close(self) -> None:
        """Tell peers we left (awareness ``null``), leave the room, stop timers (idempotent)."""
        if not self._runner.running:
            return
        try:
            if self.awareness.get_local_state() is not None and self.room.connected_peers():
                self.awareness.set_local_state(None)
                await self.room.flush()
            await self.room.close()
        finally:
            self.hub.close()
            await self._runner.stop()

    async def __aenter__(self) -> WebrtcPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def peer_id(self) -> str:
        """Our y-webrtc peer id in this room."""
        return self.room.peer_id

    def peers(self) -> list[PeerInfo]:
        """Remote peers (any state)."""
        return self.room.peers()

    def connected_peers(self) -> list[str]:
        """Remote peer ids with an open data channel."""
        return self.room.connected_peers()

    async def wait_for_peers(self, count: int) -> list[str]:
        """Wait until ``count`` peers have an open data channel (wrap in ``fail_after``)."""
        return await self.room.wait_for_peers(count)

    async def wait_synced(self) -> None:
        """Wait until every connection received the remote's sync step 2."""
        await self.hub.wait_connected_synced()

    async def stats(self) -> list[ConnectionStats]:
        """Per-connection stats (state, RTT, messages/bytes in and out)."""
        return await self.room.stats()
