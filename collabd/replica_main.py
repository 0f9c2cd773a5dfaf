"""``collab replica``: an archival replica against any y-webrtc signaling server.

Example:
    $ collab replica --signaling ws://127.0.0.1:4444 --room notes --room secret:pw \\
        --store sqlite:///var/lib/collab/archive.db
"""

from __future__ import annotations

import logging
import signal

import anyio

from collab.peer.config import IceServer, PeerConfig
from collab.replica import ArchivalReplica, ReplicaOptions, RoomPolicy
from collab.storage import StoreOptions, open_store
from collabd.settings import parse_ice_servers

__all__ = ["parse_room_spec", "run_replica"]

log = logging.getLogger("collabd.replica")


def parse_room_spec(spec: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME:PASSWORD`` (split at the first colon).

    Example:
        >>> parse_room_spec("notes:s3cret"), parse_room_spec("plain")
        (('notes', 's3cret'), ('plain', None))
    """
    name, sep, password = spec.partition(":")
    if not name:
        raise ValueError(f"room spec {spec!r} has an empty name")
    return name, (password if sep else None)


async def run_replica(
    signaling: str,
    rooms: list[str],
    store_url: str,
    *,
    ice_servers: str | None = None,
    text_name: str = "codemirror",
    name: str = "archive",
    lease_ttl: float = 10.0,
) -> None:
    """Run until SIGINT/SIGTERM, then flush, compact and leave every room."""
    ice = parse_ice_servers(ice_servers)
    config = PeerConfig(ice_servers=[IceServer(**server) for server in ice])
    options = ReplicaOptions(policy=RoomPolicy("none"), text_name=text_name, name=name)
    store = open_store(store_url, StoreOptions(lease_ttl=lease_ttl))
    async with store, ArchivalReplica(store, signaling, options=options, peer_config=config) as rep:
        for spec in rooms:
            room, password = parse_room_spec(spec)
            await rep.follow(room, password)
            log.info("replica: following %r%s", room, " (password)" if password else "")
        print(f"collab replica: {len(rooms)} room(s) on {signaling} → {store_url}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("replica: %s received, shutting down", signal.Signals(signum).name)
                return
