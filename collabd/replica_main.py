"""``collab replica``: an archival replica against any y-webrtc signaling server.

Example:
    $ collab replica --signaling ws://127.0.0.1:4444 --room notes --room secret:pw \\
        --store sqlite:///var/lib/collab/archive.db
"""

from __future__ import annotations

import logging
import signal

import anyio

from collab.errors import StorageError
from collab.peer.config import IceServer, PeerConfig
from collab.replica import ArchivalReplica, RoomPolicy
from collab.storage import StoreOptions, open_store
from collabd.redact import redact_url
from collabd.settings import ReplicaSettings, parse_ice_servers
from collabd.startup import USAGE, StartupError, explain_storage

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


async def run_replica(settings: ReplicaSettings) -> None:
    """Run until SIGINT/SIGTERM, then flush, compact and leave every room.

    Raises:
        StartupError: a bad option, or a store that cannot be opened (one line, exit code).
    """
    try:
        ice = parse_ice_servers(settings.ice_servers)
        config = PeerConfig(ice_servers=[IceServer(**server) for server in ice])
        specs = [parse_room_spec(spec) for spec in settings.room]
        replica = ArchivalReplica(
            open_store(settings.store, StoreOptions(lease_ttl=settings.lease_ttl)),
            settings.signaling,
            options=settings.replica_options(policy=RoomPolicy("none"), name=settings.name),
            peer_config=config,
        )
    except (ValueError, TypeError) as exc:
        raise StartupError(str(exc), "see collab replica --help", USAGE) from exc
    store = replica.store
    try:
        await store.start()
    except StorageError as exc:
        raise explain_storage(exc, settings.store) from exc
    try:
        async with replica as rep:
            for room, password in specs:
                await rep.follow(room, password)
                log.info("replica: following %r%s", room, " (password)" if password else "")
            print(
                f"collab replica: {len(specs)} room(s) on {redact_url(settings.signaling)} → "
                f"{redact_url(settings.store)}",
                flush=True,
            )
            await _until_signalled()
    finally:
        await store.close()


async def _until_signalled() -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("replica: %s received, shutting down", signal.Signals(signum).name)
            return
