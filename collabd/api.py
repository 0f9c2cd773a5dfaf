"""The replica's HTTP API (mounted under ``/api`` by :mod:`collabd.server`).

=========================================  ==============================================
``GET /api/config``                        ICE servers (and TURN credentials) for the page
``GET /api/rooms``                         rooms: name, size, last change, connected peers
``GET /api/rooms/{room}/text``             plain text of the shared text (``?name=``)
``GET /api/rooms/{room}/update``           full state as a Yjs V1 update (octet-stream)
``GET /api/rooms/{room}/json``             JSON of every root type the replica knows
``GET /api/rooms/{room}/export``           one root as text/markdown/html/delta/json
``GET /api/rooms/{room}/versions``         recorded versions (id, seq, time, contributors)
``POST /api/rooms/{room}/versions``        record a version now (``?label=``)
``GET /api/rooms/{room}/diff``             unified diff of the text (``?from=&to=``)
``POST /api/rooms/{room}/restore``         restore a version as a new change (``?at=``)
``GET /api/rooms/{room}/blame``            who wrote each line, and when (``?at=&root=``)
``GET /api/rooms/{room}/blame-diff``       line diff naming who wrote / deleted each line
``POST /api/rooms/{room}/fork``            new room starting at a version (``?at=&to=``)
``POST /api/rooms/{room}/saved``           is this Yjs snapshot durably stored? (the badge)
``DELETE /api/rooms/{room}``               delete an idle room's archive (--allow-delete)
=========================================  ==============================================

``text``, ``update``, ``json`` and ``export`` take ``?at=<version id or ISO time>`` for time
travel. ``json``, ``export``, ``diff``, ``blame`` and ``blame-diff`` render, diff or replay
peer-written documents: :class:`HeavyReads` runs two at a time, queues eight more and answers
503 (``Retry-After``) beyond, so they never take the worker threads the store writes with.

When signaling access control is on, reads need a token for the room (``?token=`` or
``Authorization: Bearer``), verified like the signaling upgrade; ``/api/rooms`` lists only the
rooms the token grants. Rooms whose password the replica knows are never listed and are
readable only with the password in ``X-Collab-Room-Password`` (the archive must not undo
y-webrtc's encryption). Writes (``POST``, ``DELETE``) are refused when a browser sends a foreign
``Origin`` (no cross-site restores).

Example:
    >>> # curl http://127.0.0.1:8000/api/rooms/notes/text
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from collab.attribution import blame_room
from collab.attribution import diff_room as attributed_diff_room
from collab.document import Document
from collab.errors import NotFoundError, ProtocolError, StorageError
from collab.history import diff_root, text_diff
from collab.render import RenderError, export_update, roots_json
from collab.replica import ArchivalReplica
from collabd.turn import IceConfig, safe_name
from signaling.auth import TokenClaims, TokenError, verify_token
from signaling.limits import TokenBucket
from signaling.settings import SignalingSettings

__all__ = ["RoomOut", "SavedOut", "VersionOut", "api_router"]


class VersionOut(BaseModel):
    """One recorded version."""

    id: int
    seq: int
    created_at: float
    label: str
    contributors: list[Any]


class SavedOut(BaseModel):
    """Whether a peer's state is durably stored."""

    saved: bool
    "Every struct and deletion of the posted snapshot is in the archive (committed)."
    live: bool
    "The room is live in this server's replica (only live rooms are checked)."


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


def _copy(document: Document) -> Document:
    copy = Document(roots=document.roots)
    copy.apply_update(document.get_update())
    return copy


MAX_SNAPSHOT_BODY = 1 << 20
"""Largest snapshot a page may post to ``/saved``."""


class WriteLimiter:
    """Token buckets for expensive writes (a restore pins a full snapshot, a version too),
    per client address and per room, so one client — or many against one room — cannot
    grow storage quickly. Buckets are kept for at most ``max_keys`` keys (oldest dropped).

    Example:
        >>> limits = WriteLimiter({"restore": (3, 1 / 30)})
        >>> [limits.allow("restore", "10.0.0.1", "r") for _ in range(4)]
        [True, True, True, False]
    """

    def __init__(self, rates: dict[str, tuple[int, float]], max_keys: int = 10_000) -> None:
        self.rates = rates
        self.max_keys = max_keys
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def allow(self, kind: str, client: str, room: str) -> bool:
        """Take one token from the client's and the room's bucket of ``kind``."""
        burst, rate = self.rates[kind]
        now = time.monotonic()
        buckets = [self._bucket((kind, "client", client), burst, rate, now)]
        buckets.append(self._bucket((kind, "room", room), burst, rate, now))
        if not all(b.wait_time(now) <= 0 for b in buckets):
            return False
        for bucket in buckets:
            bucket.take(now)
        return True

    def _bucket(
        self, key: tuple[str, str, str], burst: int, rate: float, now: float
    ) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = TokenBucket(rate, burst, now)
        self._buckets[key] = bucket  # most recently used last
        return bucket


DEFAULT_WRITE_RATES: dict[str, tuple[int, float]] = {
    "restore": (3, 1 / 30),
    "version": (5, 1 / 10),
    "delete": (5, 1 / 10),
    "fork": (3, 1 / 30),
}
"""Burst and sustained rate (per second) of each expensive write, per client and per room."""


class HeavyReads:
    """Admission for the CPU-heavy reads (export, JSON, diffs, blame): at most ``running`` at
    once, at most ``waiting`` more queued, any further one refused at once (503, Retry-After).

    They render, diff or replay peer-written documents in worker threads; unbounded, a burst
    of them filled anyio's default thread pool (40), which the SQLite store also needs for
    every write (archiving stopped), and each waiter held a copy of its document.

    Example:
        >>> gate = HeavyReads(running=1, waiting=0)
        >>> async def two() -> None:  # doctest: +SKIP
        ...     async with gate.slot():
        ...         async with gate.slot():  # raises HTTPException(503)
        ...             pass
    """

    def __init__(self, running: int = 2, waiting: int = 8) -> None:
        self.limiter = anyio.CapacityLimiter(running)
        self.cap = running + waiting
        self.admitted = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.admitted >= self.cap:
            raise HTTPException(
                503, "too many export/diff/blame requests: try again", headers={"Retry-After": "5"}
            )
        self.admitted += 1
        try:
            async with self.limiter:
                yield
        finally:
            self.admitted -= 1


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_same_origin(request: Request) -> None:
    """Refuse cross-site writes: a browser sends ``Origin`` on cross-site POSTs."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(403, "cross-origin write refused")


PASSWORD_HEADER = "x-collab-room-password"


def _check_room_password(request: Request, room: str, passwords: dict[str, str]) -> None:
    """A password room's content is readable only with its password (as in y-webrtc)."""
    password = passwords.get(room)
    if password is None:
        return
    given = request.headers.get(PASSWORD_HEADER, "")
    if not hmac.compare_digest(given.encode(), password.encode()):
        raise HTTPException(403, f"password room: send the password in {PASSWORD_HEADER}")


@contextlib.contextmanager
def _archive_errors(room: str, bad: str) -> Iterator[None]:
    """Map the archive's errors to HTTP: unknown room/version 404, a bad version or time 422
    (``bad`` prefixes the reason), a failing store 503 (its code only, never its message)."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, f"room {room!r}: {exc.code}") from None
    except ValueError as exc:
        raise HTTPException(422, f"{bad} {exc}") from None
    except StorageError as exc:
        raise HTTPException(503, f"storage error: {exc.code}") from None


def api_router(
    replica: Callable[[], ArchivalReplica],
    signaling_settings: SignalingSettings,
    ice_servers: IceConfig | list[dict[str, Any]],
    text_name: str = "codemirror",
    *,
    allow_delete: bool = False,
) -> APIRouter:
    """Build the ``/api`` router.

    Args:
        replica: returns the running replica (resolved per request, after startup).
        signaling_settings: access control (tokens) shared with signaling.
        ice_servers: what ``/api/config`` tells the page: an :class:`IceConfig` (TURN
            credentials minted per request, transport policy), or plain ``RTCIceServer`` dicts.
        text_name: default shared-text name for ``/text``.
    """
    router = APIRouter(prefix="/api", tags=["archive"])
    ice = ice_servers if isinstance(ice_servers, IceConfig) else IceConfig(tuple(ice_servers))
    limiter = WriteLimiter(DEFAULT_WRITE_RATES)
    heavy = HeavyReads()  # export, json, diff, blame, blame-diff: two at a time, eight queued

    def limit(request: Request, kind: str, room: str) -> None:
        client = request.client.host if request.client is not None else "unknown"
        if not limiter.allow(kind, client, room):
            burst, rate = DEFAULT_WRITE_RATES[kind]
            raise HTTPException(
                429,
                f"too many {kind} requests: {burst} at once, then one every {1 / rate:.0f} s",
                headers={"Retry-After": str(int(1 / rate))},
            )

    def check_read(
        request: Request, room: str | None = None, write: bool = False
    ) -> TokenClaims | None:
        if write:
            _check_same_origin(request)
        if room is not None:
            _check_room_password(request, room, replica().options.passwords)
        if not signaling_settings.auth_required:
            return None
        secret = signaling_settings.token_secret
        try:
            claims = verify_token(
                _token_of(request),
                secret.get_secret_value() if secret else "",
                room=room,
                leeway=signaling_settings.token_leeway_seconds,
            )
        except TokenError as exc:
            status = 403 if exc.code == 4403 else 401
            raise HTTPException(status, exc.reason) from None
        if write and claims.read_only:
            raise HTTPException(403, "read-only token")
        return claims

    def room_write(request: Request, room: str) -> str:
        check_read(request, room, write=True)
        return room

    def room_access(request: Request, room: str) -> str:
        check_read(request, room)
        return room

    async def load(room: str, at: str | None = None) -> Document:
        with _archive_errors(room, "bad ?at="):
            return await replica().document_at(room, at)

    at_query = Query(None, description="Version id or ISO 8601 time (default: now)")

    @router.get("/config")
    async def config(request: Request, response: Response) -> dict[str, Any]:
        """What the page passes to y-webrtc's ``peerOpts.config`` (RTCConfiguration):
        ``iceServers``, plus ``iceTransportPolicy: "relay"`` when relay-only. With
        ``--turn-secret`` every answer carries a fresh time-limited TURN credential
        (``username = "<expiry>:<name>"``, the token's subject or a random name) and
        ``credentialTtl``, its remaining seconds (never past the token's expiry). TURN
        credentials are only handed to token holders when access control is on."""
        claims = check_read(request)
        response.headers["Cache-Control"] = "no-store"  # minted per request
        name = safe_name(claims.subject if claims is not None else None)
        return ice.page_config(name, not_after=claims.expires_at if claims is not None else None)

    @router.get("/rooms", response_model=list[RoomOut])
    async def rooms(request: Request) -> list[RoomOut]:
        """Every archived or live room (name, bytes stored, last change, connected peers)."""
        claims = check_read(request)
        try:
            summaries = await replica().list_rooms()
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None
        hidden = replica().options.passwords  # password rooms stay unlisted
        return [
            RoomOut(**vars(s))
            for s in summaries
            if s.name not in hidden and (claims is None or claims.allows(s.name))
        ]

    @router.get("/rooms/{room:path}/text", response_class=PlainTextResponse)
    async def text(
        room: str = Depends(room_access),
        name: str = Query(text_name, description="Name of the shared text"),
        at: str | None = at_query,
    ) -> str:
        """Plain text of the room's shared text (default ``codemirror``)."""
        document = await load(room, at)
        if name not in document.roots:  # never declare new roots on the live document
            document = _copy(document)
        try:
            return str(document.text(name))
        except ValueError as exc:  # the root exists with another type
            raise HTTPException(422, str(exc)) from None

    @router.get("/rooms/{room:path}/update", response_class=Response)
    async def update(room: str = Depends(room_access), at: str | None = at_query) -> Response:
        """The full document state as one Yjs V1 update (``Y.applyUpdate`` loads it)."""
        document = await load(room, at)
        return Response(document.get_update(), media_type="application/octet-stream")

    @router.get("/rooms/{room:path}/json")
    async def as_json(
        room: str = Depends(room_access), at: str | None = at_query
    ) -> dict[str, Any]:
        """Every root type, rendered as JSON: the declared ones plus the kinds inferred from
        the document's items (Yjs does not record root types): texts as strings, maps and
        arrays like ``toJSON()``, XML fragments as ProseMirror JSON. 422 when nested deeper
        than ``collab.render.MAX_DEPTH``."""
        async with heavy.slot():
            document = await load(room, at)
            state = document.get_update()
            declared: dict[str, str] = dict(document.roots)
            try:
                return await anyio.to_thread.run_sync(roots_json, state, declared)
            except RenderError as exc:
                raise HTTPException(422, str(exc)) from None

    @router.get("/rooms/{room:path}/export", response_class=Response)
    async def export(
        room: str = Depends(room_access),
        format: str | None = Query(
            None, max_length=16, description="text, markdown, html, delta, json or yjs"
        ),
        root: str | None = Query(None, max_length=1024, description="Root type name"),
        at: str | None = at_query,
    ) -> Response:
        """One root type rendered: ``Y.XmlFragment`` (TipTap/ProseMirror) as ``html``,
        ``markdown``, ``text`` or ProseMirror ``json``; ``Y.Text`` as ``text``, ``markdown`` or a
        Quill ``delta``; maps and arrays as ``json``. Defaults: the room's main root (the shared
        text, else the ``default``/``prosemirror`` fragment, else the first by kind and name)
        and its kind's first format. 404 for an unknown root, 422 for a format the root's kind
        lacks or a document nested too deeply to render."""
        async with heavy.slot():
            document = await load(room, at)
            state = document.get_update()
            try:
                result = await anyio.to_thread.run_sync(
                    export_update, state, root, format, text_name
                )
            except NotFoundError as exc:
                raise HTTPException(404, str(exc)) from None
            except (RenderError, ProtocolError) as exc:
                raise HTTPException(422, str(exc)) from None
        headers = {"X-Collab-Root": quote(result.root), "X-Collab-Kind": result.kind}
        if result.format == "html":  # stored content: never run it on our origin
            headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
            headers["X-Content-Type-Options"] = "nosniff"
        return Response(result.data, media_type=result.media_type, headers=headers)

    @router.get("/rooms/{room:path}/versions", response_model=list[VersionOut])
    async def versions(room: str = Depends(room_access)) -> list[VersionOut]:
        """Recorded versions, oldest first (after a pause in editing, every N changes, or
        on demand)."""
        await load(room)  # 404 for unknown rooms
        try:
            found = await replica().versions(room)
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None
        return [VersionOut(**vars(v)) for v in found]

    @router.post("/rooms/{room:path}/versions", response_model=VersionOut)
    async def create_version(
        request: Request,
        room: str = Depends(room_write),
        label: str = Query("", max_length=1024),
    ) -> VersionOut:
        """Record a version now (rate-limited per client and per room: each pins a snapshot)."""
        limit(request, "version", room)
        try:
            version = await replica().create_version(room, label)
        except NotFoundError as exc:
            raise HTTPException(404, f"room {room!r}: {exc.code}") from None
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None
        return VersionOut(**vars(version))

    @router.get("/rooms/{room:path}/diff", response_class=PlainTextResponse)
    async def diff(
        room: str = Depends(room_access),
        from_: str = Query(..., alias="from", description="Version id or ISO time"),
        to: str | None = Query(None, description="Version id or ISO time (default: now)"),
        name: str = Query(text_name, description="Name of the shared text"),
        root: str | None = Query(None, max_length=1024, description="Root type (any kind)"),
        summary: bool = Query(False, description="JSON: diff, structural summary, line"),
    ) -> Response:
        """Unified diff between two versions (or a version and now): of the shared text by
        default; with ``root=`` of any root type (Markdown for XML fragments, pretty JSON for
        maps and arrays; header ``X-Collab-Summary`` counts blocks/marks, keys or items); with
        ``summary=true`` a JSON object ``{root, kind, diff, summary, line}``."""
        async with heavy.slot():
            before = await load(room, from_)
            after = await load(room, to)
            before_label, after_label = f"{room}@{from_}", f"{room}@{to or 'now'}"
            if root is None and not summary:
                a, b = str(before.text(name)), str(after.text(name))
                return PlainTextResponse(  # off the loop: difflib on peer-written text
                    await anyio.to_thread.run_sync(text_diff, a, b, before_label, after_label)
                )
            old, new = before.get_update(), after.get_update()
            try:
                found = await anyio.to_thread.run_sync(
                    lambda: diff_root(old, new, before_label, after_label, root, text_name)
                )
            except NotFoundError as exc:
                raise HTTPException(404, str(exc)) from None
            except RenderError as exc:
                raise HTTPException(422, str(exc)) from None
        if summary:
            return JSONResponse(
                {
                    "root": found.root,
                    "kind": found.kind,
                    "diff": found.diff,
                    "summary": found.summary,
                    "line": found.line,
                }
            )
        return PlainTextResponse(found.diff, headers={"X-Collab-Summary": found.line})

    @router.post("/rooms/{room:path}/saved", response_model=SavedOut)
    async def saved(request: Request, room: str = Depends(room_access)) -> SavedOut:
        """Whether the posted Yjs snapshot (``Y.encodeSnapshot(Y.snapshot(doc))``: the delete
        set and state vector of a browser's document) is durably stored, deletions included.
        The page's "Saved to archive" badge turns green only on this answer: no peer's
        awareness claim can."""
        body = await _read_body(request, MAX_SNAPSHOT_BODY)
        rep = replica()
        live = room in rep.rooms and rep.rooms[room].live is not None
        try:
            ok = await rep.saved_covers(room, body)
        except ProtocolError as exc:
            raise HTTPException(422, f"bad snapshot: {exc.code}") from None
        return SavedOut(saved=ok, live=live)

    @router.post("/rooms/{room:path}/restore", response_model=VersionOut | None)
    async def restore(
        request: Request,
        room: str = Depends(room_write),
        at: str = Query(..., description="Version id or ISO time to restore"),
    ) -> VersionOut | None:
        """Restore a version as a new change that every connected peer receives
        (rate-limited per client and per room: each pins a full snapshot)."""
        await load(room, at)  # 404/422 before touching the live room
        limit(request, "restore", room)
        try:
            version = await replica().restore(room, at)
        except NotFoundError as exc:
            raise HTTPException(404, f"room {room!r}: {exc.code}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None
        return None if version is None else VersionOut(**vars(version))

    async def seq_of(room: str, at: str | None) -> int | None:
        if at is None:
            return None
        with _archive_errors(room, "bad version:"):
            return (await replica().resolve_version(room, at)).seq

    @router.get("/rooms/{room:path}/blame")
    async def blame(
        room: str = Depends(room_access),
        at: str | None = at_query,
        root: str = Query(text_name, max_length=1024, description="Name of the shared text"),
    ) -> dict[str, Any]:
        """Per line of a text root: the client ids that wrote it (most characters first),
        when its newest character was stored, and ``authors`` (name, colour, first seen) from
        the awareness names the replica recorded. Replayed from the stored log off the event
        loop (bounded; from the newest snapshot when the log is long). 422 for a non-text
        root (maps and arrays have no lines: use the diff)."""
        await load(room)  # 404 for unknown rooms
        seq = await seq_of(room, at)
        try:
            async with heavy.slot():  # replays are CPU work
                result = await blame_room(replica().store, room, seq, root)
        except NotFoundError as exc:
            raise HTTPException(404, f"room {room!r}: {exc.code}") from None
        except (ValueError, ProtocolError) as exc:
            raise HTTPException(422, str(exc)) from None
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None
        return result.to_json()

    @router.get("/rooms/{room:path}/blame-diff")
    async def blame_diff(
        room: str = Depends(room_access),
        from_: str = Query(..., alias="from", description="Version id or ISO time"),
        to: str | None = Query(None, description="Version id or ISO time (default: now)"),
        root: str = Query(text_name, max_length=1024, description="Name of the shared text"),
        context: int = Query(3, ge=-1, le=1000, description="Kept lines around changes"),
    ) -> dict[str, Any]:
        """The line diff between two versions with attribution: every line names who wrote
        it; a deleted line also names whose updates deleted it (``deleted_by``; ``null`` for
        a delete-only update, whose deleter Yjs does not record)."""
        await load(room)
        start = await seq_of(room, from_)
        end = await seq_of(room, to)
        if start is None:  # from_ is required: never happens
            raise HTTPException(422, "from is required")
        try:
            async with heavy.slot():
                return await attributed_diff_room(
                    replica().store, room, start, end, root, context=context
                )
        except NotFoundError as exc:
            raise HTTPException(404, f"room {room!r}: {exc.code}") from None
        except (ValueError, ProtocolError) as exc:
            raise HTTPException(422, str(exc)) from None
        except StorageError as exc:
            raise HTTPException(503, f"storage error: {exc.code}") from None

    @router.post("/rooms/{room:path}/fork", status_code=201)
    async def fork(
        request: Request,
        room: str = Depends(room_write),
        at: str = Query(..., description="Version id or ISO time to start from"),
        to: str = Query(..., min_length=1, max_length=256, description="The new room's name"),
    ) -> dict[str, Any]:
        """Create room ``to`` whose history starts at version ``at`` of this room (first
        version ``forked from ROOM@V``; authors copied); peers joining it get that state.
        409 if ``to`` exists, 404 for an unknown room or version; same-origin, write token
        for both rooms, rate-limited per client and per room. Password rooms cannot be
        forked here (the copy would not be encrypted)."""
        check_read(request, to, write=True)
        passwords = replica().options.passwords
        if room in passwords or to in passwords:
            raise HTTPException(422, "password rooms cannot be forked through the API")
        await seq_of(room, at)  # 404/422 before spending a token
        limit(request, "fork", room)
        try:
            version = await replica().fork(room, at, to)
        except NotFoundError as exc:
            raise HTTPException(404, f"room {room!r}: {exc.code}") from None
        except StorageError as exc:
            status = 409 if exc.code in ("room-exists", "not-owner") else 503
            raise HTTPException(status, f"room {to!r}: {exc.code}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"room": to, "version": VersionOut(**vars(version)).model_dump()}

    @router.delete("/rooms/{room:path}", status_code=204, response_class=Response)
    async def delete_room(request: Request, room: str = Depends(room_write)) -> Response:
        """Delete a room's whole archive: log, snapshots, versions (rate-limited). Refused
        with 409 while the room is loaded here (its peers would bring the document back), and
        with 403 unless the server was started with ``--allow-delete``."""
        if not allow_delete:
            raise HTTPException(403, "deleting rooms is off: start collab serve --allow-delete")
        limit(request, "delete", room)
        try:
            existed = await replica().delete_room(room)
        except StorageError as exc:
            status = 409 if exc.code in ("room-loaded", "not-owner") else 503
            raise HTTPException(status, f"room {room!r}: {exc.code}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if not existed:
            raise HTTPException(404, f"room {room!r}: no-room")
        return Response(status_code=204)

    return router
