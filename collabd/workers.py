"""``collab serve --workers N``: one supervisor, N worker processes, every core archives.

The archival replica is CPU-bound (DTLS/SCTP in aiortc, Yjs merges, commits) and Python runs
it on one core. ``--workers N`` runs N complete ``collab serve`` processes side by side, and
the two facilities the multi-instance deployment already has share the work between them:

* **the supervisor** (this process) binds the public port once and one loopback-only private
  port per worker, then starts N workers (``python -c 'collabd.workers.worker_main()'``) that
  inherit those sockets (``pass_fds``); the kernel hands each new connection to whichever
  worker accepts it. It prints the banner once every worker's replica is on signaling, and
  restarts a worker that dies (logged, counted in the workers' ``collab_worker_restarts``,
  capped exponential backoff 0.5 s doubling to 30 s, reset after 60 s of life). SIGINT or
  SIGTERM stops every worker gracefully (SIGTERM, SIGKILL after 60 s); a worker gets SIGTERM
  from the kernel if the supervisor is SIGKILLed (``PR_SET_PDEATHSIG``), so none is orphaned.
* **signaling**: every worker runs the signaling service; they share topics through Redis
  (``COLLAB_REDIS_URL``, as separate ``collab serve`` instances do), so two browsers in a room
  find each other whichever worker took their sockets.
* **archiving**: the store must be PostgreSQL — SQLite cannot be written by several processes
  safely, so ``--workers`` > 1 without ``--store postgresql://…`` is a usage error (exit 2).
  Each room's **lease** decides which worker archives it. Rooms are spread by a hash of their
  name (:func:`slot_of`): a worker whose signaling sees a room open that hashes to another
  worker tells that worker (an internal POST on its private port, repeated every
  ``SYNC_INTERVAL`` seconds as a heartbeat with the full list); if that worker has not
  answered for ``FALLBACK_AFTER`` seconds (dead, restarting), the worker archives the room
  itself — it takes the lease once the dead one's expires — and hands it back (leaves it:
  snapshot, commit, release) once that worker answers ready again. A restarted worker uses
  the same owner id as its predecessor (``<supervisor id>-w<slot>``), so it takes its rooms
  back at once (the lease token still fences any late write of the dead process).
* **the HTTP API**: a request about a room whose lease another worker holds is forwarded to
  that worker's private port (:class:`WorkerRouter`), so writes (restore, versions, delete)
  work and reads see the owner's live document whichever worker the request reached. If the
  owner does not answer, the request is served locally (this worker then waits for the
  lease like any replica).
* ``GET /api/rooms`` asks every worker and merges the lists (a room's peers summed).
* **metrics**: ``/metrics`` on the public port answers with every worker's metrics, each
  sample labelled ``worker="<slot>"`` (a worker that does not answer is ``collab_worker_up 0``).

Example:
    >>> slot_of("notes", 1), slot_of("notes", 2) in (0, 1)
    (0, True)
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import Process, TaskStatus

from collab.service import Service
from collabd.startup import USAGE, StartupError

if TYPE_CHECKING:
    import httpx
    import psycopg

    from collab.replica import ArchivalReplica
    from collabd.server import Served
    from collabd.settings import ServeSettings

__all__ = [
    "WorkerContext",
    "WorkerRouter",
    "check_workers",
    "merge_metrics",
    "run_supervisor",
    "slot_of",
    "worker_main",
]

log = logging.getLogger("collabd.workers")

ENV_WORKER = "COLLAB_WORKER"
"""JSON the supervisor hands a worker: slot, count, inherited fds, private ports, owner id
prefix, restarts so far (never a secret)."""
ENV_KEY = "COLLAB_WORKER_KEY"
"""The workers' shared internal key (signaling's internal socket and worker-to-worker calls);
in the environment, never on a command line."""
ENV_SETTINGS = "COLLAB_WORKER_SETTINGS"
"""The supervisor's ``ServeSettings`` as JSON (secrets included: environment only)."""
FORWARD_HEADER = "x-collab-worker"
"""Carries the internal key on worker-to-worker requests: the receiver serves them itself."""
SYNC_INTERVAL = 2.0
"""Seconds between a worker's heartbeats telling each other worker the rooms routed to it."""
SYNC_TIMEOUT = 5.0
"""Seconds a heartbeat may take (a worker saturated by its replica answers late)."""
FALLBACK_AFTER = 15.0
"""A worker that has not answered a heartbeat for this long has its open rooms archived by
the asking worker. Long: a worker saturated by its replica answers late, a restarted one
takes its rooms back by itself within seconds, and a fallback that is handed back costs a
reconnection per room; this is for a worker that stays away."""
SYNC_EXPIRY = 10 * SYNC_INTERVAL
"""A worker's routed rooms are forgotten after this long without a heartbeat from it."""
RESTART_INITIAL, RESTART_MAX, RESTART_RESET = 0.5, 30.0, 60.0
"""Restart backoff of a dead worker (s): first delay, cap, life after which it resets."""
STOP_TIMEOUT = 60.0
"""Seconds workers get to stop gracefully (flush, snapshot, release leases) before SIGKILL."""
MAX_INTERNAL_BODY = 8 << 20
"""Largest worker-to-worker topic list (topics are bounded by signaling's own caps)."""
MAX_FORWARD_BODY = 4 << 20
"""Largest API request body forwarded to another worker (the API's own largest is 1 MiB)."""
_PR_SET_PDEATHSIG = 1


def slot_of(room: str, count: int) -> int:
    """The worker a room is routed to first (a stable hash of its name).

    Example:
        >>> [slot_of(r, 2) for r in ("a", "a")] == [slot_of("a", 2)] * 2
        True
    """
    digest = hashlib.blake2b(room.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def check_workers(settings: ServeSettings, redis_url: str | None) -> None:
    """The usage errors of ``--workers`` > 1 (one line each, exit 2).

    Raises:
        StartupError: SQLite store, or no Redis for signaling.
    """
    n = settings.workers
    if not settings.store_url.startswith(("postgresql://", "postgres://")):
        raise StartupError(
            f"--workers {n} needs --store postgresql://… (SQLite cannot be written by "
            "several processes)",
            "",
            USAGE,
        )
    if not redis_url:
        raise StartupError(
            f"--workers {n} needs COLLAB_REDIS_URL (the workers share signaling through Redis)",
            "",
            USAGE,
        )


# ---------------------------------------------------------------------- worker side


@dataclass
class WorkerContext:
    """What a worker process knows about itself and its siblings (from the supervisor)."""

    slot: int
    count: int
    public: socket.socket
    private: socket.socket
    ready_fd: int
    ports: list[int]
    "Every worker's private port, by slot."
    key: str
    owner_prefix: str
    restarts: int

    @classmethod
    def from_environment(cls) -> WorkerContext | None:
        """The context of a worker started by the supervisor, else ``None``."""
        raw = os.environ.get(ENV_WORKER)
        if not raw:
            return None
        info = json.loads(raw)
        public = socket.socket(fileno=int(info["public_fd"]))
        private = socket.socket(fileno=int(info["private_fd"]))
        return cls(
            slot=int(info["slot"]),
            count=int(info["count"]),
            public=public,
            private=private,
            ready_fd=int(info["ready_fd"]),
            ports=[int(p) for p in info["ports"]],
            key=os.environ[ENV_KEY],
            owner_prefix=str(info["owner_prefix"]),
            restarts=int(info["restarts"]),
        )

    @property
    def owner_id(self) -> str:
        """The replica's lease owner id: the same for every incarnation of this slot."""
        return f"{self.owner_prefix}-w{self.slot}"

    def slot_of_owner(self, owner: str) -> int | None:
        """The slot of a lease owner id of this supervisor's workers (else ``None``)."""
        prefix = f"{self.owner_prefix}-w"
        if not owner.startswith(prefix) or not owner[len(prefix) :].isdigit():
            return None
        slot = int(owner[len(prefix) :])
        return slot if slot < self.count else None

    def banner(self) -> str:
        """The worker's line (the supervisor prints the ``collab is serving on`` banner)."""
        return f"collab worker {self.slot} is serving (pid {os.getpid()})"

    def install(self, served: Served, settings: ServeSettings) -> WorkerRouter:
        """Make ``served`` one of the workers: lease owner id, room routing of the signaling
        hooks, API forwarding and aggregated metrics (an ASGI middleware)."""
        from starlette.middleware import Middleware

        served.replica.options.owner_id = self.owner_id
        router = WorkerRouter(self, served, settings.store_url)
        runner = served.service.hooks  # the signaling service's hook runner
        runner.hooks.on_topic_opened = router.topic_opened
        runner.hooks.on_topic_closed = router.topic_closed
        runner.hooks.on_subscriber_joined = router.subscriber_joined
        # innermost (after the Host check), so every request it sees passed that check
        served.app.user_middleware.append(Middleware(_RouterMiddleware, router=router))
        served.service.metrics.registry.register(_WorkerCollector(router))
        served.worker = router
        # the heartbeats (every SYNC_INTERVAL) and metrics scrapes between workers are not
        # worth a log line each; forwarded API requests keep theirs (on the owner)
        siblings = tuple(f"//127.0.0.1:{port}/" for port in self.ports)
        logging.getLogger("uvicorn.access").addFilter(
            lambda record: "/internal/worker/" not in record.getMessage()
        )
        logging.getLogger("httpx").addFilter(
            lambda record: not any(s in record.getMessage() for s in siblings)
        )
        return router


def _reveal(settings: ServeSettings) -> dict[str, Any]:
    from pydantic import SecretStr

    values = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values[name] = value.get_secret_value()
    return values


def worker_main() -> None:
    """Entry point of a worker process (started by the supervisor, never by hand)."""
    from collabd.cli import _configure_logging
    from collabd.server import run_serve
    from collabd.settings import ServeSettings

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    info = json.loads(os.environ[ENV_WORKER])
    if os.getppid() != int(info["parent"]):  # the supervisor died before prctl: not orphaned
        sys.exit(1)
    settings = ServeSettings(**json.loads(os.environ.pop(ENV_SETTINGS)))
    _configure_logging(settings)
    slot = int(info["slot"])

    def tag(record: logging.LogRecord) -> bool:
        record.worker = slot  # every line says which worker wrote it (worker=N)
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)
    try:
        run_serve(settings)
    except StartupError as exc:
        print(exc.line(), file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


@dataclass
class _Remote:
    topics: set[str] = field(default_factory=set)
    seen: float = 0.0


class WorkerRouter(Service):
    """A worker's routing: which rooms its replica wants (its own hashed rooms opened
    anywhere, plus rooms whose worker does not answer), and which worker serves an API call.

    Runs the heartbeat to the other workers, the PostgreSQL connection for lease lookups and
    the HTTP client for forwarding.
    """

    def __init__(self, ctx: WorkerContext, served: Served, store_url: str) -> None:
        self.ctx = ctx
        self.replica: ArchivalReplica = served.replica
        self.store_url = store_url
        self.local: set[str] = set()
        "Topics with a subscriber on this worker's signaling."
        self.remote: dict[int, _Remote] = {}
        "Topics other workers route to this one, by their slot."
        self.fallback: set[str] = set()
        "Local topics of workers that did not answer: archived here meanwhile."
        self.wanted: set[str] = set()
        "Rooms the replica was told about (opened and not closed since)."
        self.joined: dict[int, set[str]] = {}
        "Topics that saw a subscriber join since the last message to their worker."
        self.forwarded = 0
        self.forward_failures = 0
        self.sync_failures = 0
        self._changed = anyio.Event()
        self._client: httpx.AsyncClient | None = None
        self._db: psycopg.AsyncConnection[Any] | None = None
        self._db_lock = anyio.Lock()
        self._running = False
        self._started = time.monotonic()
        self._answered: dict[int, float] = {}

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=30.0) as client:
            self._client = client
            self._running = True
            self._started = time.monotonic()
            try:
                await self._apply()  # what siblings sent before the replica ran
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._heartbeat)
                    tg.start_soon(self._tell_ready)
                    task_status.started()
                    await anyio.sleep_forever()
            finally:
                self._running = False
                self._client = None
                if self._db is not None:
                    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                        await self._db.close()

    async def _tell_ready(self) -> None:
        """Tell the supervisor (one byte on the ready pipe) once the replica is on signaling
        (connections meanwhile wait in the shared socket's backlog)."""
        await self.replica.signaling.wait_connected()
        try:
            os.write(self.ctx.ready_fd, b"1")
            os.close(self.ctx.ready_fd)
        except OSError as exc:
            log.warning("worker %d: cannot tell the supervisor it is ready: %s", self.ctx.slot, exc)

    async def _heartbeat(self) -> None:
        while True:
            await self._sync_all()
            await self._expire_remotes()
            with anyio.move_on_after(SYNC_INTERVAL):
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # ------------------------------------------------------------------ signaling hooks
    async def topic_opened(self, topic: str) -> None:
        self.local.add(topic)
        await self._route_changed()

    async def topic_closed(self, topic: str) -> None:
        self.local.discard(topic)
        self.fallback.discard(topic)
        await self._route_changed()

    async def subscriber_joined(self, topic: str, info: Any = None) -> None:
        slot = slot_of(topic, self.ctx.count)
        if slot == self.ctx.slot or topic in self.fallback:
            await self.replica.on_subscriber_joined(topic, info)
        else:
            self.joined.setdefault(slot, set()).add(topic)
            self._notify()

    async def _route_changed(self) -> None:
        await self._apply()
        self._notify()

    async def _apply(self) -> None:
        """Tell the replica about rooms newly wanted here, or no longer wanted (once the
        router runs: the replica runs then)."""
        if not self._running:
            return
        mine = {t for t in self.local if slot_of(t, self.ctx.count) == self.ctx.slot}
        now = mine | self.fallback
        for remote in self.remote.values():
            now |= remote.topics
        opened, closed = now - self.wanted, self.wanted - now
        self.wanted = now
        for topic in opened:
            await self.replica.on_topic_opened(topic)
        for topic in closed:
            await self.replica.on_topic_closed(topic)

    # ------------------------------------------------------------------ worker to worker
    def _routed_to(self, slot: int) -> list[str]:
        return sorted(t for t in self.local if slot_of(t, self.ctx.count) == slot)

    async def _sync_all(self) -> None:
        async with anyio.create_task_group() as tg:
            for slot in range(self.ctx.count):
                if slot != self.ctx.slot:
                    tg.start_soon(self._sync, slot)

    async def _sync(self, slot: int) -> None:
        """Send ``slot`` the full list of local topics routed to it (and the joins)."""
        topics = self._routed_to(slot)
        joined = sorted(self.joined.pop(slot, set()))
        body = {"from": self.ctx.slot, "topics": topics, "joined": joined}
        ok = False
        with anyio.move_on_after(SYNC_TIMEOUT):
            try:
                response = await self._internal("POST", slot, "/internal/worker/topics", body)
                # "ready": its replica runs and takes the rooms at once (else: still starting)
                ok = response.status_code == 200 and bool(response.json().get("ready"))
            except Exception as exc:  # noqa: BLE001 - a dead sibling: archive its rooms here
                log.debug("worker %d: worker %d does not answer: %s", self.ctx.slot, slot, exc)
        before = set(self.fallback)
        now = time.monotonic()
        if ok:
            self._answered[slot] = now
            self.fallback -= set(topics)
        else:
            self.sync_failures += 1
            if now - self._answered.get(slot, self._started) < FALLBACK_AFTER:
                self.joined.setdefault(slot, set()).update(joined)  # tell it next time
                return
            self.fallback |= set(topics)
            for topic in joined:
                await self.replica.on_subscriber_joined(topic)
        if self.fallback != before:
            if ok:
                log.info(
                    "worker %d: worker %d answers again; handing %d room(s) back",
                    self.ctx.slot,
                    slot,
                    len(before - self.fallback),
                )
            else:
                log.warning(
                    "worker %d: worker %d does not answer; archiving its %d open room(s) here "
                    "(once their leases expire)",
                    self.ctx.slot,
                    slot,
                    len(topics),
                )
            await self._apply()
            for topic in before - self.fallback - self.wanted:
                # leave (snapshot, commit, release the lease): its worker takes it at once;
                # the peers hold every update meanwhile and sync them to the new owner
                actor = self.replica.rooms.get(topic)
                if actor is not None:
                    actor.stop()

    async def on_topics(self, body: dict[str, Any]) -> None:
        """A sibling's heartbeat: the topics it routes here (full list) and recent joins."""
        sender = int(body["from"])
        if not 0 <= sender < self.ctx.count or sender == self.ctx.slot:
            raise ValueError("bad sender")
        remote = self.remote.setdefault(sender, _Remote())
        remote.topics = {str(t) for t in body["topics"]}
        remote.seen = time.monotonic()
        await self._apply()
        for topic in body.get("joined", []):
            if str(topic) in self.wanted:
                await self.replica.on_subscriber_joined(str(topic))

    async def _expire_remotes(self) -> None:
        now = time.monotonic()
        gone = [s for s, r in self.remote.items() if now - r.seen > SYNC_EXPIRY]
        for slot in gone:
            del self.remote[slot]
        if gone:
            await self._apply()

    async def _internal(
        self, method: str, slot: int, path: str, body: Any = None
    ) -> httpx.Response:
        assert self._client is not None, "the router is not running"
        return await self._client.request(
            method,
            f"http://127.0.0.1:{self.ctx.ports[slot]}{path}",
            json=body,
            headers={FORWARD_HEADER: self.ctx.key},
        )

    def is_internal(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether a request carries this supervisor's worker key."""
        for name, value in headers:
            if name == FORWARD_HEADER.encode():
                return hmac.compare_digest(value, self.ctx.key.encode())
        return False

    # ------------------------------------------------------------------ leases
    async def owner_slot(self, room: str) -> int | None:
        """The worker holding ``room``'s lease now (``None``: nobody, or not one of ours)."""
        import psycopg

        async with self._db_lock:
            for attempt in (1, 2):
                try:
                    if self._db is None or self._db.closed:
                        self._db = await psycopg.AsyncConnection.connect(
                            self.store_url, autocommit=True
                        )
                    cursor = await self._db.execute(
                        "SELECT owner FROM room_leases WHERE room = %s AND expires_at > now()",
                        (room,),
                    )
                    row = await cursor.fetchone()
                    return self.ctx.slot_of_owner(str(row[0])) if row else None
                except psycopg.errors.UndefinedTable:
                    return None
                except psycopg.Error as exc:
                    if self._db is not None:
                        await self._db.close()
                    self._db = None
                    if attempt == 2:
                        log.warning("worker %d: lease lookup failed: %s", self.ctx.slot, exc)
        return None

    # ------------------------------------------------------------------ metrics
    async def gather_metrics(self) -> str:
        """Every worker's ``/metrics``, each sample labelled with its worker."""
        texts: dict[int, str | None] = {}

        async def fetch(slot: int) -> None:
            try:
                with anyio.fail_after(10):
                    response = await self._internal("GET", slot, "/metrics")
                texts[slot] = response.text if response.status_code == 200 else None
            except Exception:  # noqa: BLE001 - a worker that does not answer is up 0
                texts[slot] = None

        async with anyio.create_task_group() as tg:
            for slot in range(self.ctx.count):
                tg.start_soon(fetch, slot)
        return merge_metrics(dict(sorted(texts.items())))


_ROOM_PATH = re.compile(r"^/api/rooms/(.+)$")


def room_of(method: str, path: str) -> str | None:
    """The room an API request is about (``/api/rooms/{room}/<action>``, or
    ``DELETE /api/rooms/{room}``), else ``None``.

    Example:
        >>> room_of("GET", "/api/rooms/a/b/text"), room_of("DELETE", "/api/rooms/a/b")
        ('a/b', 'a/b')
    """
    found = _ROOM_PATH.match(path)
    if found is None:
        return None
    rest = found.group(1)
    if method == "DELETE":
        return rest
    room, sep, _action = rest.rpartition("/")
    return room if sep and room else None


_HOP = {b"content-length", b"transfer-encoding", b"connection", b"content-encoding", b"keep-alive"}


class _RouterMiddleware:
    """ASGI: aggregated ``/metrics``, the internal heartbeat endpoint, and API requests about
    a room another worker holds forwarded to it (see the module docstring)."""

    def __init__(self, app: Any, router: WorkerRouter) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        router = self.router
        internal = router.is_internal(scope["headers"])
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/internal/worker/"):
            await self._internal(internal, path, receive, send)
            return
        if internal:
            await self.app(scope, receive, send)
            return
        if path == "/metrics" and method == "GET":
            text = await router.gather_metrics()
            await _respond(send, 200, text.encode(), b"text/plain; version=0.0.4; charset=utf-8")
            return
        if path == "/api/rooms" and method == "GET":
            await self._rooms(scope, send)
            return
        room = room_of(method, path)
        if room is not None:
            slot = await router.owner_slot(room)
            if (
                slot is not None
                and slot != router.ctx.slot
                and await self._forward(slot, scope, receive, send)
            ):
                return
        await self.app(scope, receive, send)

    async def _internal(self, ok: bool, path: str, receive: Any, send: Any) -> None:
        if not ok or path != "/internal/worker/topics":
            await _respond(send, 404, b"not found", b"text/plain")
            return
        try:
            body = json.loads(await _body(receive, MAX_INTERNAL_BODY))
            await self.router.on_topics(body)
        except (ValueError, KeyError, TypeError) as exc:
            await _respond(send, 400, str(exc).encode(), b"text/plain")
            return
        ready = b'{"ready": true}' if self.router._running else b'{"ready": false}'
        await _respond(send, 200, ready, b"application/json")

    async def _rooms(self, scope: Any, send: Any) -> None:
        """``GET /api/rooms`` of every worker, merged: a room's connected peers summed over
        the workers, ``loaded`` if any worker holds it (the stored facts are the same)."""
        router = self.router
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        headers.append((FORWARD_HEADER.encode(), router.ctx.key.encode()))
        query = scope.get("query_string", b"").decode("latin-1")
        answers: dict[int, httpx.Response] = {}

        async def fetch(slot: int) -> None:
            assert router._client is not None
            port = router.ctx.ports[slot]
            with contextlib.suppress(Exception):  # a worker that does not answer is left out
                answers[slot] = await router._client.get(
                    f"http://127.0.0.1:{port}/api/rooms" + (f"?{query}" if query else ""),
                    headers=headers,
                    timeout=30.0,
                )

        async with anyio.create_task_group() as tg:
            for slot in range(router.ctx.count):
                tg.start_soon(fetch, slot)
        own = answers.get(router.ctx.slot)
        if own is None or own.status_code != 200:
            status = own.status_code if own is not None else 503
            body = own.content if own is not None else b'{"detail": "unavailable"}'
            await _respond(send, status, body, b"application/json")
            return
        merged: dict[str, dict[str, Any]] = {}
        for response in answers.values():
            if response.status_code != 200:
                continue
            for row in response.json():
                seen = merged.setdefault(row["name"], dict(row, peers=0, loaded=False))
                seen["peers"] += row["peers"]
                seen["loaded"] = seen["loaded"] or row["loaded"]
                seen["size"] = max(seen["size"], row["size"])
                if (row["updated_at"] or 0) > (seen["updated_at"] or 0):
                    seen["updated_at"] = row["updated_at"]
        body = json.dumps([merged[name] for name in sorted(merged)]).encode()
        await _respond(send, 200, body, b"application/json")

    async def _forward(self, slot: int, scope: Any, receive: Any, send: Any) -> bool:
        """Replay the request on ``slot``'s private port; ``False`` if it does not answer
        (the request is then served here)."""
        router = self.router
        client = router._client
        if client is None:
            return False
        try:
            body = await _body(receive, MAX_FORWARD_BODY)
        except ValueError:
            await _respond(send, 413, b"body too large", b"text/plain")
            return True
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        headers.append((FORWARD_HEADER.encode(), router.ctx.key.encode()))
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"http://127.0.0.1:{router.ctx.ports[slot]}{scope.get('raw_path', b'').decode()}"
        if not scope.get("raw_path"):
            url = f"http://127.0.0.1:{router.ctx.ports[slot]}{scope['path']}"
        if query:
            url += f"?{query}"
        try:
            response = await client.request(
                scope["method"], url, headers=headers, content=body, timeout=60.0
            )
        except Exception as exc:  # noqa: BLE001 - the owner died meanwhile: serve it here
            router.forward_failures += 1
            log.warning("worker %d: forwarding to worker %d failed: %s", router.ctx.slot, slot, exc)
            replayed = body

            async def again() -> dict[str, Any]:
                nonlocal replayed
                chunk, replayed = replayed, b""
                return {"type": "http.request", "body": chunk, "more_body": False}

            await self.app(scope, again, send)
            return True
        router.forwarded += 1
        content = response.content
        out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})
        return True


async def _body(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ValueError(f"body over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _WorkerCollector:
    """``collab_worker_*``: this worker's restarts (as the supervisor counted them when it
    started it), routed rooms, API requests forwarded."""

    def __init__(self, router: WorkerRouter) -> None:
        self.router = router

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        r = self.router
        yield GaugeMetricFamily(
            "collab_worker_restarts", "Times the supervisor restarted this worker.", r.ctx.restarts
        )
        yield GaugeMetricFamily(
            "collab_worker_wanted_rooms", "Rooms routed to this worker's replica.", len(r.wanted)
        )
        yield GaugeMetricFamily(
            "collab_worker_fallback_rooms",
            "Rooms archived here because their worker did not answer.",
            len(r.fallback),
        )
        yield CounterMetricFamily(
            "collab_worker_forwarded_requests",
            "API requests forwarded to the worker holding the room.",
            r.forwarded,
        )
        yield CounterMetricFamily(
            "collab_worker_forward_failures",
            "Forwards whose worker did not answer (served here instead).",
            r.forward_failures,
        )
        yield CounterMetricFamily(
            "collab_worker_sync_failures",
            "Heartbeats to another worker that were not answered.",
            r.sync_failures,
        )


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?(\s.*)$")


def _labelled(line: str, slot: int) -> str:
    found = _SAMPLE.match(line)
    if found is None:
        return line
    name, labels, rest = found.groups()
    inner = labels[1:-1] if labels else ""
    joined = f'worker="{slot}"' + (f",{inner}" if inner else "")
    return f"{name}{{{joined}}}{rest}"


def merge_metrics(texts: dict[int, str | None]) -> str:
    """Merge Prometheus text expositions of several workers: each family once (its HELP and
    TYPE lines), its samples from every worker labelled ``worker="<slot>"``, plus
    ``collab_worker_up``.

    Example:
        >>> print(merge_metrics({0: "# TYPE x gauge\\nx 1\\n", 1: None}), end="")
        # HELP collab_worker_up Whether the worker answered this scrape.
        # TYPE collab_worker_up gauge
        collab_worker_up{worker="0"} 1
        collab_worker_up{worker="1"} 0
        # TYPE x gauge
        x{worker="0"} 1
    """
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    up = [
        "# HELP collab_worker_up Whether the worker answered this scrape.",
        "# TYPE collab_worker_up gauge",
    ]
    for slot, text in texts.items():
        up.append(f'collab_worker_up{{worker="{slot}"}} {0 if text is None else 1}')
        current = ""
        for line in (text or "").splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                current = line.split(" ", 3)[2]
                family = headers.setdefault(current, [])
                if not any(h.split(" ", 3)[:3] == line.split(" ", 3)[:3] for h in family):
                    family.append(line)
                samples.setdefault(current, [])
            elif line and not line.startswith("#"):
                samples.setdefault(current, []).append(_labelled(line, slot))
    out = up
    for name in samples:
        out += headers.get(name, [])
        out += samples[name]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- supervisor


def run_supervisor(settings: ServeSettings) -> None:
    """``collab serve --workers N`` (N > 1): check, bind, start N workers, keep them running.

    Raises:
        StartupError: a usage error (SQLite, no Redis), a socket that cannot be bound, or a
            worker that could not start.
    """
    from pydantic import ValidationError

    from collabd.options import invalid_setting
    from collabd.redact import redact_url
    from collabd.runtime import raise_fd_limit
    from collabd.startup import bind_listener, check_tls
    from signaling.server import load_settings

    try:
        redis_url = load_settings().redis_url
    except ValidationError as exc:
        raise invalid_setting(exc) from exc
    check_workers(settings, redis_url)
    scheme = "http"
    if settings.tls_cert is not None:
        check_tls(settings.tls_cert, settings.tls_key)
        scheme = "https"
    raise_fd_limit()
    public = bind_listener(settings.host, settings.port)
    privates = [bind_listener("127.0.0.1", 0) for _ in range(settings.workers)]
    port = public.getsockname()[1]
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    if ":" in shown:
        shown = f"[{shown}]"
    banner = (
        f"collab is serving on {scheme}://{shown}:{port}/  "
        f"(archive: {redact_url(settings.store_url)}, {settings.workers} workers)"
    )
    supervisor = Supervisor(settings, public, privates, banner)
    anyio.run(supervisor.run)


class Supervisor:
    """Starts N workers on the inherited sockets and keeps them running (module docstring)."""

    def __init__(
        self,
        settings: ServeSettings,
        public: socket.socket,
        privates: list[socket.socket],
        banner: str,
    ) -> None:
        self.settings = settings
        self.public = public
        self.privates = privates
        self.banner = banner
        self.count = len(privates)
        self.key = secrets.token_urlsafe(32)
        self.owner_prefix = f"serve-{secrets.token_hex(4)}"
        self.restarts = [0] * self.count
        self.pids: list[int | None] = [None] * self.count
        self.stopping = False
        self._ready = [anyio.Event() for _ in range(self.count)]
        self._procs: list[Process | None] = [None] * self.count

    def _env(self, slot: int, ready_fd: int) -> dict[str, str]:
        info = {
            "slot": slot,
            "count": self.count,
            "public_fd": self.public.fileno(),
            "private_fd": self.privates[slot].fileno(),
            "ready_fd": ready_fd,
            "ports": [s.getsockname()[1] for s in self.privates],
            "owner_prefix": self.owner_prefix,
            "restarts": self.restarts[slot],
            "parent": os.getpid(),
        }
        env = dict(os.environ)
        env[ENV_WORKER] = json.dumps(info)
        env[ENV_KEY] = self.key
        env[ENV_SETTINGS] = json.dumps(_reveal(self.settings))
        return env

    async def run(self) -> None:
        # signals are caught from the start: a SIGTERM right after the banner stops cleanly
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await self._run(signals)

    async def _run(self, signals: AsyncIterator[int]) -> None:
        try:
            async with anyio.create_task_group() as tg:
                for slot in range(self.count):
                    tg.start_soon(self._keep, slot)
                try:
                    with anyio.fail_after(180):
                        for event in self._ready:
                            await event.wait()
                except TimeoutError:
                    raise StartupError("the workers did not start within 180 s") from None
                print(self.banner, flush=True)
                log.info("collab: %d workers ready", self.count)
                async for signum in signals:
                    name = signal.Signals(signum).name
                    log.info("collab: %s received, stopping %d workers", name, self.count)
                    break
                self.stopping = True
                await self._stop_all()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            startup = [e for e in group.exceptions if isinstance(e, StartupError)]
            if startup:
                self.stopping = True
                with anyio.CancelScope(shield=True):
                    await self._stop_all()
                raise startup[0] from None
            raise

    async def _stop_all(self) -> None:
        procs = [p for p in self._procs if p is not None and p.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT):
            for proc in procs:
                await proc.wait()
        for proc in procs:
            if proc.returncode is None:
                log.error("collab: worker pid %d did not stop in time; SIGKILL", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _keep(self, slot: int) -> None:
        """Run worker ``slot``; restart it whenever it dies (capped backoff)."""
        failures = 0
        while not self.stopping:
            started = time.monotonic()
            rc = await self._run_once(slot)
            if self.stopping:
                return
            if not self._ready[slot].is_set():
                raise StartupError(
                    f"worker {slot} exited during start-up ({_describe(rc)}); see its error above"
                )
            lived = time.monotonic() - started
            failures = 1 if lived >= RESTART_RESET else failures + 1
            delay = min(RESTART_MAX, RESTART_INITIAL * 2 ** (failures - 1))
            self.restarts[slot] += 1
            log.error(
                "collab: worker %d (pid %s) exited (%s) after %.1f s; restart %d in %.1f s",
                slot,
                self.pids[slot],
                _describe(rc),
                lived,
                self.restarts[slot],
                delay,
            )
            await anyio.sleep(delay)

    async def _run_once(self, slot: int) -> int:
        read_fd, write_fd = os.pipe()
        try:
            proc = await anyio.open_process(
                [sys.executable, "-c", "from collabd.workers import worker_main; worker_main()"],
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                env=self._env(slot, write_fd),
                pass_fds=(self.public.fileno(), self.privates[slot].fileno(), write_fd),
            )
        finally:
            os.close(write_fd)
        self._procs[slot] = proc
        self.pids[slot] = proc.pid
        log.info("collab: worker %d started (pid %d)", slot, proc.pid)
        try:
            async with anyio.create_task_group() as tg:

                async def ready() -> None:
                    await anyio.wait_readable(read_fd)
                    if os.read(read_fd, 1):  # b"": the worker exited first
                        self._ready[slot].set()

                tg.start_soon(ready)
                rc = await proc.wait()
                tg.cancel_scope.cancel()
        finally:
            os.close(read_fd)
            self._procs[slot] = None
        return rc


def _describe(rc: int) -> str:
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-rc).name}"
    return f"exit code {rc}"
