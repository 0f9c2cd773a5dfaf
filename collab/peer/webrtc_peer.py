"""One document in one y-webrtc room, in one ``async with``: the everyday Python peer.

:class:`WebrtcPeer` = a :class:`collab.document.Document` + :class:`collab.awareness.Awareness`
+ a :class:`collab.sync.SyncRoom` sync + a :class:`collab.peer.room.WebrtcRoom`. A stock
y-webrtc browser in the same room cannot tell it from another browser.

:class:`SignalingPool` runs one :class:`SignalingClient` per URL for many rooms of one process
(one socket carries them all), under its own ``async with``.

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

import anyio
from anyio.abc import TaskGroup, TaskStatus

from collab.awareness import Awareness
from collab.document import Document
from collab.peer.budget import ConnectionBudget
from collab.peer.config import PeerConfig
from collab.peer.ice_tuning import consent_checks
from collab.peer.remote import ConnectionStats
from collab.peer.room import PeerInfo, WebrtcRoom
from collab.peer.signaling_client import SignalingClient
from collab.service import Service
from collab.sync import SyncOptions, SyncRoom

__all__ = ["SignalingPool", "WebrtcPeer"]

log = logging.getLogger(__name__)

_DEFAULT_STATE: Any = object()


class SignalingPool(Service):
    """One running :class:`SignalingClient` per URL, shared by the rooms it creates.

    Example:
        >>> async with SignalingPool(PeerConfig()) as pool:  # doctest: +SKIP
        ...     async with pool.room("notes", "ws://h/signaling", sync) as room:
        ...         ...
    """

    def __init__(self, config: PeerConfig | None = None) -> None:
        self.config = config or PeerConfig()
        self.budget = ConnectionBudget(
            self.config.max_pending_total,
            fd_reserve=self.config.fd_reserve,
            min_age=self.config.pending_min_age,
        )
        self._clients: dict[str, SignalingClient] = {}
        self._tg: TaskGroup | None = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the clients' tasks until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._tg = None
                self._clients.clear()

    def client(self, url: str) -> SignalingClient:
        """The running client for ``url`` (started on first use).

        Raises:
            RuntimeError: the pool is not running.
        """
        client = self._clients.get(url)
        if client is None:
            if self._tg is None:
                raise RuntimeError("SignalingPool is not running: use `async with pool:`")
            client = self._clients[url] = SignalingClient(url, self.config)
            self._tg.start_soon(client.run)  # ready at once: it connects in the background
        return client

    def room(self, name: str, url: str, sync: Any, *, password: str | None = None) -> WebrtcRoom:
        """A :class:`WebrtcRoom` on the shared client for ``url`` (not started yet)."""
        return WebrtcRoom(
            name,
            self.client(url),
            sync,
            password=password,
            config=self.config,
            budget=self.budget,
        )


class WebrtcPeer(Service):
    """A Python peer editing one document in one y-webrtc room.

    A :class:`~collab.service.Service`: ``async with WebrtcPeer(...) as peer:`` (or
    ``await tg.start(peer.run)``). Leaving the block tells the other peers we left (awareness
    ``null``) before the connections close.

    Args:
        room: the room name.
        signaling: ``ws://`` URL or a (shared) :class:`SignalingClient`.
        password: the room password (encrypts signaling like y-webrtc), or None.
        config: ICE servers, limits, timers (:class:`PeerConfig`).
        document: an existing document (a fresh one by default).
        awareness_state: our initial awareness state (``{}`` like y-protocols; None = hidden).
        sync_options: options of the sync room.

    Attributes:
        document: the shared :class:`~collab.document.Document` (edit it; observe it).
        awareness: the shared :class:`~collab.awareness.Awareness`.
        sync: the :class:`~collab.sync.SyncRoom` serving every data channel.
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
        self.sync = SyncRoom(self.document, self.awareness, options=sync_options)
        self.room = WebrtcRoom(room, signaling, self.sync, password=password, config=config)
        self._consent_interval = config.consent_interval if config is not None else None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the awareness timers and the room until cancelled (ready once subscribed).

        ``config.consent_interval`` applies to every connection made by the room's tasks.
        """
        try:
            with consent_checks(self._consent_interval):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.awareness.run)
                    await tg.start(self.room.run)
                    task_status.started()
                    await anyio.sleep_forever()
        finally:
            self.sync.close()

    async def before_stop(self) -> None:
        """Tell connected peers we left (awareness ``null``) while the channels still run."""
        if self.awareness.get_local_state() is not None and self.room.connected_peers():
            self.awareness.set_local_state(None)
            with anyio.move_on_after(2):
                await self.room.flush()

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
        await self.sync.wait_connected_synced()

    async def stats(self) -> list[ConnectionStats]:
        """Per-connection stats (state, RTT, messages/bytes in and out)."""
        return await self.room.stats()
