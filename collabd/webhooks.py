"""Webhooks of ``collab serve``: every selected archive event, POSTed as signed JSON.

The replica tells :meth:`WebhookSender.emit` about each :class:`collab.replica.ReplicaEvent`
(``room.created``, ``version.recorded``, ``room.restored``, ``room.deleted``). ``emit`` only
queues — one delivery per configured URL — and never waits, so a slow or dead receiver can
never hold the archive up. :meth:`WebhookSender.run` (a :class:`collab.service.Service`)
drains the queue with a few workers sharing one ``httpx.AsyncClient``.

* **Body** — ``{"event", "room", "at", "data", "id"}`` (``at``: Unix time; ``id``: a UUID,
  the same for every URL and every attempt, so receivers can drop duplicates).
* **Headers** — ``X-Collab-Event``, ``X-Collab-Delivery`` (the id), and with a secret
  ``X-Collab-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.
* **Retries** — a 2xx answer delivers; a network error, timeout, 408, 429 or 5xx is retried
  after 0.5 s, doubling up to 30 s, at most ``attempts`` times in all; any other answer
  (the receiver refuses it) or the last failed attempt drops the delivery as ``failed``.
* **Bounds** — at most ``queue`` deliveries and ``queue_bytes`` bytes wait; when either is
  full the *oldest* is dropped (``dropped``). Each request takes at most ``timeout`` s.
* **Metrics** — ``collab_webhook_deliveries_total{result="ok|retry|failed|dropped"}``.
* **Secrets** — the secret never leaves the signature; credentials in a URL are sent as
  HTTP basic auth and every logged URL goes through :func:`collabd.redact.redact_url`.

Example:
    >>> sign(b"0123456789abcdef", b'{"event": "room.deleted"}')[:15]
    'sha256=ff410fcd'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from collab.service import Service
from collabd.redact import redact_url

if TYPE_CHECKING:
    from collab.replica import ReplicaEvent
    from collabd.settings import ServeSettings

__all__ = ["WebhookOptions", "WebhookSender", "sign"]

log = logging.getLogger("collabd.webhooks")

RESULTS = ("ok", "retry", "failed", "dropped")
"""The ``result`` label values of ``collab_webhook_deliveries_total``."""

_RETRIED_STATUS = frozenset({408, 425, 429})


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Collab-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookOptions:
    """Where and how events are delivered."""

    urls: tuple[str, ...]
    "Receivers (http/https); every selected event goes to each."
    secret: bytes | None = None
    "HMAC-SHA256 key of ``X-Collab-Signature`` (None: unsigned)."
    events: frozenset[str] = frozenset(
        ("room.created", "version.recorded", "room.restored", "room.deleted")
    )
    "Event kinds to deliver."
    timeout: float = 10.0
    "Seconds one request may take in all (connect, send, answer)."
    attempts: int = 8
    "Attempts per delivery before it is dropped as failed."
    queue: int = 1000
    "Deliveries waiting at most (the oldest is dropped beyond it)."
    queue_bytes: int = 16 << 20
    "Bytes of waiting bodies at most (a version's contributor list can be long)."
    backoff_initial: float = 0.5
    "First delay between attempts (s); doubles per attempt."
    backoff_max: float = 30.0
    "Largest delay between attempts (s)."
    workers: int = 4
    "Deliveries in flight at once (one slow receiver delays at most this many)."

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> WebhookOptions:
        """The options ``collab serve`` was given (``--webhook-*``)."""
        secret = settings.webhook_secret
        return cls(
            urls=tuple(settings.webhook_urls),
            secret=secret.get_secret_value().encode() if secret is not None else None,
            events=frozenset(settings.webhook_events),
            timeout=settings.webhook_timeout,
            attempts=settings.webhook_attempts,
            queue=settings.webhook_queue,
        )


@dataclass(frozen=True)
class _Delivery:
    url: str
    auth: tuple[str, str] | None
    shown: str
    event: str
    id: str
    body: bytes


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``https://user:pw@host/x`` → (``https://host/x``, (user, pw)): credentials go in a
    header, never in a URL that a client library might log."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, (parts.username, parts.password or "")


class _RedactUrls(logging.Filter):
    """httpx logs every request's URL at INFO: print it without password or query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


class WebhookSender(Service):
    """Queues archive events and delivers them (see the module docstring).

    Args:
        options: receivers, secret, events, bounds.
        registry: where ``collab_webhook_deliveries_total`` is registered (None: nowhere).
    """

    def __init__(self, options: WebhookOptions, registry: CollectorRegistry | None) -> None:
        self.options = options
        self.counts: Counter[str] = Counter()
        "Deliveries by result (``ok``, ``retry``, ``failed``, ``dropped``)."
        self._metric = PromCounter(
            "collab_webhook_deliveries",
            "Webhook deliveries by result: ok, retry (an attempt failed, retried later), "
            "failed (refused or out of attempts), dropped (queue full)",
            ["result"],
            registry=registry,
        )
        for result in RESULTS:
            self._metric.labels(result=result)  # every series exists from the start
        self._queue: deque[_Delivery] = deque()
        self._queued_bytes = 0
        self._wake: anyio.Event | None = None
        self._targets = [(*_split_credentials(url), redact_url(url)) for url in options.urls]

    @property
    def queued(self) -> int:
        """Deliveries waiting (not counting those in flight)."""
        return len(self._queue)

    def _count(self, result: str) -> None:
        self.counts[result] += 1
        self._metric.labels(result=result).inc()

    # ------------------------------------------------------------------ producer side
    def emit(self, event: ReplicaEvent) -> None:
        """Queue ``event`` for every receiver if selected (an ``ArchivalReplica.events``
        callback: never blocks; drops the oldest delivery when the queue is full)."""
        if event.kind not in self.options.events or not self._targets:
            return
        delivery_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "event": event.kind,
                "room": event.room,
                "at": event.at,
                "data": event.data,
                "id": delivery_id,
            },
            separators=(",", ":"),
            default=str,
        ).encode()
        for url, auth, shown in self._targets:
            self._queue.append(_Delivery(url, auth, shown, event.kind, delivery_id, body))
            self._queued_bytes += len(body)
            while len(self._queue) > self.options.queue or (
                self._queued_bytes > self.options.queue_bytes and len(self._queue) > 1
            ):
                self._drop_oldest()
        if self._wake is not None:
            self._wake.set()

    def _drop_oldest(self) -> None:
        dropped = self._queue.popleft()
        self._queued_bytes -= len(dropped.body)
        self._count("dropped")
        total = self.counts["dropped"]
        if total in (1, 10, 100) or total % 1000 == 0:
            log.warning("webhooks: queue full, dropped %d deliveries so far (oldest first)", total)

    # ------------------------------------------------------------------ delivery side
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled (queued deliveries are not kept across a restart)."""
        if not self._targets:
            task_status.started()
            await anyio.sleep_forever()
        httpx_log = logging.getLogger("httpx")
        if not any(isinstance(f, _RedactUrls) for f in httpx_log.filters):
            httpx_log.addFilter(_RedactUrls())
        timeout = httpx.Timeout(self.options.timeout)
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            anyio.create_task_group() as tg,
        ):
            self._wake = anyio.Event()
            for _ in range(self.options.workers):
                tg.start_soon(self._worker, client)
            task_status.started()

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while True:
            while not self._queue:
                assert self._wake is not None
                if self._wake.is_set():
                    self._wake = anyio.Event()
                await self._wake.wait()
            delivery = self._queue.popleft()
            self._queued_bytes -= len(delivery.body)
            await self._deliver(client, delivery)

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Delivery) -> None:
        options = self.options
        delay = options.backoff_initial
        for attempt in range(1, options.attempts + 1):
            outcome, reason = await self._post(client, delivery)
            if outcome == "ok":
                self._count("ok")
                return
            if outcome == "refused" or attempt == options.attempts:
                self._count("failed")
                total = self.counts["failed"]
                if total in (1, 10, 100) or total % 1000 == 0:
                    log.warning(
                        "webhooks: %s to %s failed after %d attempt(s) (%s); %d failed so far",
                        delivery.event,
                        delivery.shown,
                        attempt,
                        reason,
                        total,
                    )
                return
            self._count("retry")
            log.debug("webhooks: %s to %s: %s, retrying", delivery.event, delivery.shown, reason)
            await anyio.sleep(delay)
            delay = min(delay * 2, options.backoff_max)

    async def _post(self, client: httpx.AsyncClient, delivery: _Delivery) -> tuple[str, str]:
        """One attempt: ``ok``, ``retry`` or ``refused``, with a reason safe to log."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "collab-webhooks",
            "X-Collab-Event": delivery.event,
            "X-Collab-Delivery": delivery.id,
        }
        if self.options.secret is not None:
            headers["X-Collab-Signature"] = sign(self.options.secret, delivery.body)
        kwargs: dict[str, Any] = {"content": delivery.body, "headers": headers}
        if delivery.auth is not None:
            kwargs["auth"] = httpx.BasicAuth(*delivery.auth)
        try:
            with anyio.fail_after(self.options.timeout):
                response = await client.post(delivery.url, **kwargs)
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return "retry", type(exc).__name__  # never str(exc): it may hold the URL
        status = response.status_code
        if 200 <= status < 300:
            return "ok", str(status)
        if status >= 500 or status in _RETRIED_STATUS:
            return "retry", f"HTTP {status}"
        return "refused", f"HTTP {status}"
