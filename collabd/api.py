"""The replica's HTTP API (mounted under ``/api`` by :mod:`collabd.server`).

=========================================  ==============================================
``GET /api/config``                        ICE servers for the page (``{"iceServers": [...]}``)
``GET /api/rooms``                         rooms: name, size, last change, connected peers
``GET /api/rooms/{room}/text``             plain text of the shared text (``?name=``)
``GET /api/rooms/{room}/update``           full state as a Yjs V1 update (octet-stream)
``GET /api/rooms/{room}/json``             JSON of every root type the replica knows
=========================================  ==============================================

When signaling access control is on, reads need a token for the room (``?token=`` or
``Authorization: Bearer``), verified like the signaling upgrade.

Example:
    >>> # curl http://127.0.0.1:8000/api/rooms/notes/text
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from collab.document import Document
from collab.errors import NotFoundError, StorageError
from collab.replica import ArchivalReplica
from signaling.auth import TokenError, verify_token
from signaling.settings import SignalingSettings

__all__ = ["RoomOut", "api_router"]


class RoomOut(BaseModel):
    """One archived or live room."""

    name: str
    size: int
    updated_at: float | None
    peers: int
    loaded: bool


def _token_of(request: Request) -> str | None:
    token = request.query_params.get("token")
    if token:
        return token
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def api_router(
    replica: Callable[[], ArchivalReplica],
    signaling_settings: SignalingSettings,
    ice_servers: list[dict[str, Any]],
    text_name: str = "codemirror",
) -> APIRouter:
    """Build the ``/api`` router.

    Args:
        replica: returns the running replica (resolved per request, after startup).
        signaling_settings: access control (tokens) shared with signaling.
        ice_servers: what ``/api/config`` tells the page.
        text_name: default shared-text name for ``/text``.
    """
    router = APIRouter(prefix="/api", tags=["archive"])

    def check_read(request: Request, room: str | None = None) -> None:
        if not signaling_settings.auth_required:
            return
        secret = signaling_settings.token_secret
        try:
            verify_token(
                _token_of(request),
                secret.get_secret_value() if secret else "",
                room=room,
                leeway=signaling_settings.token_leeway_seconds,
            )
        except TokenError as exc:
            status = 403 if exc.code == 4403 else 401
            raise HTTPException(status, exc.reason) from None

    def room_access(request: Request, room: str) -> str:
        check_read(request, room)
        return room

    async def load(room: str) -> Document:
        try:
            return await replica().document(room)
        except NotFoundError:
            raise HTTPException(404, f"room {room!r} is not archived") from None
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None

    @router.get("/config")
    async def config() -> dict[str, Any]:
        """ICE servers for browsers (the page passes them to y-webrtc's ``peerOpts``)."""
        return {"iceServers": ice_servers}

    @router.get("/rooms", response_model=list[RoomOut])
    async def rooms(request: Request) -> list[RoomOut]:
        """Every archived or live room (name, bytes stored, last change, connected peers)."""
        check_read(request)
        try:
            summaries = await replica().list_rooms()
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None
        return [RoomOut(**vars(s)) for s in summaries]

    @router.get("/rooms/{room:path}/text", response_class=PlainTextResponse)
    async def text(
        room: str = Depends(room_access),
        name: str = Query(text_name, description="Name of the shared text"),
    ) -> str:
        """Plain text of the room's shared text (default ``codemirror``)."""
        document = await load(room)
        return str(document.text(name))

    @router.get("/rooms/{room:path}/update", response_class=Response)
    async def update(room: str = Depends(room_access)) -> Response:
        """The full document state as one Yjs V1 update (``Y.applyUpdate`` loads it)."""
        document = await load(room)
        return Response(document.get_update(), media_type="application/octet-stream")

    @router.get("/rooms/{room:path}/json")
    async def as_json(room: str = Depends(room_access)) -> dict[str, Any]:
        """Every root type the replica knows the type of, rendered as JSON."""
        document = await load(room)
        return document.to_json()

    return router
