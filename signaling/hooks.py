"""Hooks for composition (e.g. an archival replica following rooms on the same server).

Hooks are plain callables, sync or async. They run one at a time, in event order, on a
background worker, so a slow or failing hook never blocks or breaks signaling; exceptions are
logged and counted (``collab_signaling_hook_errors_total``).

Example:
    >>> opened: list[str] = []
    >>> hooks = SignalingHooks(on_topic_opened=opened.append)
    >>> hooks.on_topic_opened is not None
    True
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from signaling.auth import TokenClaims
from signaling.metrics import SignalingMetrics

log = logging.getLogger("signaling.hooks")


@dataclass(frozen=True, slots=True)
class SubscriberInfo:
    """Who joined or left a topic.

    Attributes:
        socket_id: a process-unique id of the socket.
        address: the client address (host) as seen by the server.
        claims: the verified token claims, or ``None`` when no token was presented.
        endpoint: ``"yjs"`` (y-webrtc protocol) or ``"named"`` (named-peer dialect).
    """

    socket_id: int
    address: str
    claims: TokenClaims | None
    endpoint: str

    @property
    def read_only(self) -> bool:
        """True when the socket presented a read-only token."""
        return self.claims is not None and self.claims.read_only


TopicHook = Callable[[str], Awaitable[None] | None]
SubscriberHook = Callable[[str, SubscriberInfo], Awaitable[None] | None]


@dataclass(slots=True)
class SignalingHooks:
    """Optional callbacks; each may be sync or async.

    Attributes:
        on_topic_opened: ``(topic)`` when a topic gets its first local subscriber.
        on_topic_closed: ``(topic)`` when its last local subscriber leaves.
        on_subscriber_joined: ``(topic, info)`` on every subscription.
        on_subscriber_left: ``(topic, info)`` on every unsubscription / socket close.
    """

    on_topic_opened: TopicHook | None = None
    on_topic_closed: TopicHook | None = None
    on_subscriber_joined: SubscriberHook | None = None
    on_subscriber_left: SubscriberHook | None = None


MAX_QUEUED_HOOKS = 10_000
"""Hook calls waiting at most (subscriptions are peer-driven: the queue must be bounded)."""


class HookRunner:
    """Runs hook calls sequentially on one lazily started asyncio task (bounded queue: when
    it is full, further calls are dropped and counted in ``collab_signaling_hook_dropped``)."""

    def __init__(
        self,
        hooks: SignalingHooks | None,
        metrics: SignalingMetrics,
        max_queued: int = MAX_QUEUED_HOOKS,
    ) -> None:
        self.hooks = hooks if hooks is not None else SignalingHooks()
        self._metrics = metrics
        self._queue: asyncio.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = asyncio.Queue(
            max_queued
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """Whether any hook is set."""
        h = self.hooks
        return any(
            x is not None
            for x in (
                h.on_topic_opened,
                h.on_topic_closed,
                h.on_subscriber_joined,
                h.on_subscriber_left,
            )
        )

    def topic_opened(self, topic: str) -> None:
        """Queue ``on_topic_opened(topic)``."""
        self.submit(self.hooks.on_topic_opened, topic)

    def topic_closed(self, topic: str) -> None:
        """Queue ``on_topic_closed(topic)``."""
        self.submit(self.hooks.on_topic_closed, topic)

    def subscriber_joined(self, topic: str, info: SubscriberInfo) -> None:
        """Queue ``on_subscriber_joined(topic, info)``."""
        self.submit(self.hooks.on_subscriber_joined, topic, info)

    def subscriber_left(self, topic: str, info: SubscriberInfo) -> None:
        """Queue ``on_subscriber_left(topic, info)``."""
        self.submit(self.hooks.on_subscriber_left, topic, info)

    def submit(self, fn: Callable[..., Any] | None, *args: Any) -> None:
        """Queue ``fn(*args)`` (no-op when ``fn`` is None)."""
        if fn is None:
            return
        try:
            self._queue.put_nowait((fn, args))
        except asyncio.QueueFull:
            self._metrics.hook_dropped.inc()
            log.warning("signaling hook queue full, dropped a call")
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            fn, args = await self._queue.get()
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:  # a hook's failure must never break signaling (logged + counted)
                self._metrics.hook_errors.inc()
                log.exception("signaling hook failed", extra={"hook": getattr(fn, "__name__", "?")})
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued hook call has run."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def aclose(self) -> None:
        """Run what is queued, then stop the worker."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                log.debug("hook worker stopped")
            self._task = None
