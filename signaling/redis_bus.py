"""Scale-out: several signaling instances share topics through Redis pub/sub.

Semantics (also in README.md):

* Each instance subscribes to the Redis channel ``{prefix}:t:{topic}`` while it has local
  subscribers of ``topic`` and keeps its local subscriber count in the hash
  ``{prefix}:c:{topic}`` (field = instance id), plus a heartbeat key ``{prefix}:alive:{id}``
  (15 s TTL) so counts of a crashed instance stop counting.
* A publish runs one Lua script: it sums the live instances' counts (the publishing instance's
  own count is passed fresh), publishes ``"{clients}\\n{origin}\\n{json}"`` on the topic channel and
  returns the sum. The origin delivers to its local subscribers directly; other instances deliver
  what they receive. Every receiver, on every instance, sees the same ``clients`` (the sum).
  Counts of other instances are eventually consistent (they are written asynchronously).
* When Redis is unreachable: an error is logged once, ``collab_signaling_redis_up`` drops to 0 and
  ``collab_signaling_redis_errors_total`` counts failures; sockets stay open and publishes reach
  local subscribers only (``clients`` = local count). Messages published during the outage do
  not reach other instances and are not replayed. The bus reconnects with backoff, then
  re-subscribes, rewrites its counts and heartbeat, and cross-instance fan-out resumes.

Example:
    >>> # bus = RedisBus("redis://127.0.0.1:6379/0", "collab:signaling", deliver, counts, metrics)
    >>> # await bus.start(); n = await bus.publish("room", raw_json, local_count=2)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable

import anyio
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from signaling.metrics import SignalingMetrics

log = logging.getLogger("signaling.redis")

HEARTBEAT_SECONDS = 5.0
ALIVE_TTL_SECONDS = 15
SUBSCRIBE_WAIT_SECONDS = 2.0
"""How long a socket that opened a topic waits for Redis to confirm the subscription."""
_PUBLISH_LUA = """
local vals = redis.call('HGETALL', KEYS[1])
local n = tonumber(ARGV[4])
for i = 1, #vals, 2 do
  local inst = vals[i]
  if inst ~= ARGV[3] and redis.call('EXISTS', ARGV[2] .. inst) == 1 then
    n = n + tonumber(vals[i + 1])
  end
end
redis.call('PUBLISH', ARGV[1], n .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[5])
return n
"""

Deliver = Callable[[str, int, str], None]
LocalCount = Callable[[str], int]

_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisBus:
    """Cross-instance fan-out for one signaling service.

    Args:
        url: ``redis://`` URL.
        prefix: key/channel prefix shared by cooperating instances.
        deliver: ``(topic, clients, raw_json)`` called for publishes from other instances.
        local_count: returns this instance's subscriber count of a topic.
        metrics: the service metrics.
        instance_id: defaults to a random UUID.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        deliver: Deliver,
        local_count: LocalCount,
        metrics: SignalingMetrics,
        instance_id: str | None = None,
    ) -> None:
        self.instance_id = instance_id or uuid.uuid4().hex
        self._url = url
        self._prefix = prefix
        self._deliver = deliver
        self._local_count = local_count
        self._metrics = metrics
        self._client = aioredis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
        )
        self._script = self._client.register_script(_PUBLISH_LUA)
        self._pubsub: PubSub | None = None
        self._subscribed: set[str] = set()
        self._confirmed: set[str] = set()
        "Topics whose SUBSCRIBE Redis has confirmed on the current connection."
        self._confirm_waiters: dict[str, asyncio.Event] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self._down_since: float | None = None
        self._retry_logged = float("-inf")
        self.last_error: BaseException | None = None
        "The last error talking to Redis (for startup and readiness messages)."
        self._down = asyncio.Event()
        self._down.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._channel_prefix = f"{prefix}:t:".encode()
        self._topics_source: Callable[[], list[str]] | None = None
        metrics.redis_up.set(0)

    @property
    def up(self) -> bool:
        """Whether the bus currently believes Redis is reachable."""
        return self._up.is_set()

    def _channel(self, topic: str) -> str:
        return f"{self._prefix}:t:{topic}"

    def _count_key(self, topic: str) -> str:
        return f"{self._prefix}:c:{topic}"

    def _alive_key(self) -> str:
        return f"{self._prefix}:alive:{self.instance_id}"

    async def start(self) -> None:
        """Start the maintenance and listener tasks (connects in the background)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._maintain()), loop.create_task(self._listen())]

    async def wait_up(self) -> None:
        """Wait until the bus is connected (use with a timeout)."""
        await self._up.wait()

    async def wait_down(self) -> None:
        """Wait until the bus has noticed that Redis is unreachable (use with a timeout)."""
        await self._down.wait()

    def topic_changed(self, topic: str) -> None:
        """Note that the local count of ``topic`` changed (written asynchronously)."""
        self._dirty.add(topic)
        self._wake.set()

    async def subscribed(
        self, topics: Iterable[str], within: float = SUBSCRIBE_WAIT_SECONDS
    ) -> bool:
        """Wait until Redis has confirmed this instance's subscriptions to ``topics`` (at most
        ``within`` seconds in all; at once while Redis is down). Returns whether they are.

        A socket that opens a topic on this instance waits here before its next frame is
        handled: otherwise its first announce can draw an answer from another instance that
        reaches Redis before the SUBSCRIBE, and is lost (y-webrtc never resends it).
        """
        pending = [topic for topic in dict.fromkeys(topics) if topic not in self._confirmed]
        if not pending:
            return True
        if not self._up.is_set():
            return False
        waiters = [self._confirm_waiters.setdefault(t, asyncio.Event()) for t in pending]
        self._wake.set()
        try:
            with anyio.move_on_after(within):
                async with anyio.create_task_group() as tg:

                    async def until_down() -> None:
                        await self._down.wait()  # Redis lost: stop waiting at once
                        tg.cancel_scope.cancel()

                    tg.start_soon(until_down)
                    for waiter in waiters:
                        await waiter.wait()
                    tg.cancel_scope.cancel()
        finally:
            for topic, waiter in zip(pending, waiters, strict=True):
                if self._confirm_waiters.get(topic) is waiter and not waiter.is_set():
                    del self._confirm_waiters[topic]
        missing = [topic for topic in pending if topic not in self._confirmed]
        if missing:
            log.debug("redis subscribe not confirmed in time", extra={"topics": len(missing)})
        return not missing

    def _confirm(self, kind: object, channel: object) -> None:
        if not isinstance(channel, bytes) or not channel.startswith(self._channel_prefix):
            return
        topic = channel[len(self._channel_prefix) :].decode(errors="replace")
        if kind == "subscribe":
            self._confirmed.add(topic)
            waiter = self._confirm_waiters.pop(topic, None)
            if waiter is not None:
                waiter.set()
        elif kind == "unsubscribe":
            self._confirmed.discard(topic)

    async def publish(self, topic: str, raw: str, local_count: int) -> int | None:
        """Publish ``raw`` to other instances; returns the summed ``clients`` or None when down."""
        if not self._up.is_set():
            return None
        try:
            n = await self._script(
                keys=[self._count_key(topic)],
                args=[
                    self._channel(topic),
                    f"{self._prefix}:alive:",
                    self.instance_id,
                    local_count,
                    raw,
                ],
            )
        except _ERRORS as exc:
            self._mark_down(exc)
            return None
        return int(n)

    def _mark_down(self, exc: BaseException) -> None:
        self._metrics.redis_errors.inc()
        self.last_error = exc
        if self._up.is_set():
            self._up.clear()
            self._down.set()
            self._down_since = time.monotonic()
            self._metrics.redis_up.set(0)
            log.error(
                "redis bus down; publishes reach local subscribers only",
                extra={"event": "redis_down", "error": repr(exc), "instance": self.instance_id},
            )
        self._wake.set()

    async def _connect(self) -> None:
        await self._client.ping()
        if self._pubsub is not None:
            await self._close_pubsub()
        pubsub = self._client.pubsub()
        await pubsub.subscribe(f"{self._prefix}:ctl")
        self._pubsub = pubsub
        self._subscribed.clear()
        self._confirmed.clear()
        if self._topics_source is not None:
            self._dirty.update(self._topics_source())
        await self._client.set(self._alive_key(), b"1", ex=ALIVE_TTL_SECONDS)
        await self._flush()
        self._down.clear()
        self._up.set()
        self._metrics.redis_up.set(1)
        self._retry_logged = float("-inf")
        if self._down_since is None:
            log.info(
                "redis bus connected", extra={"event": "redis_up", "instance": self.instance_id}
            )
        else:
            log.warning(
                "redis bus recovered",
                extra={
                    "event": "redis_up",
                    "down_seconds": round(time.monotonic() - self._down_since, 1),
                    "instance": self.instance_id,
                },
            )
        self._down_since = None

    def set_topics_source(self, topics: Callable[[], list[str]]) -> None:
        """Give the bus a way to list local topics (used to resynchronise after reconnect)."""
        self._topics_source = topics

    async def _flush(self) -> None:
        while self._dirty:
            topic = self._dirty.pop()
            n = self._local_count(topic)
            try:
                if n > 0:
                    await self._client.hset(self._count_key(topic), self.instance_id, n)
                    if topic not in self._subscribed and self._pubsub is not None:
                        await self._pubsub.subscribe(self._channel(topic))
                        self._subscribed.add(topic)
                else:
                    await self._client.hdel(self._count_key(topic), self.instance_id)
                    if topic in self._subscribed and self._pubsub is not None:
                        self._subscribed.discard(topic)
                        await self._pubsub.unsubscribe(self._channel(topic))
            except BaseException:
                self._dirty.add(topic)
                raise

    async def _maintain(self) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + HEARTBEAT_SECONDS
        while not self._closing:
            if not self._up.is_set():
                try:
                    await self._connect()
                    backoff = 0.1
                    next_beat = loop.time() + HEARTBEAT_SECONDS
                except _ERRORS as exc:
                    self._metrics.redis_errors.inc()
                    self.last_error = exc
                    now = loop.time()
                    if now - self._retry_logged >= 60.0:  # first failure, then a reminder/min
                        self._retry_logged = now
                        log.warning(
                            "redis bus connect failed; retrying",
                            extra={"event": "redis_retry", "error": repr(exc)},
                        )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                continue
            self._wake.clear()
            try:
                await self._flush()
                if loop.time() >= next_beat:
                    await self._client.set(self._alive_key(), b"1", ex=ALIVE_TTL_SECONDS)
                    next_beat = loop.time() + HEARTBEAT_SECONDS
            except _ERRORS as exc:
                self._mark_down(exc)
                continue
            if not self._dirty:
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - loop.time()))
                except TimeoutError:
                    log.debug("redis heartbeat due")

    async def _listen(self) -> None:
        while not self._closing:
            await self._up.wait()
            pubsub = self._pubsub
            if pubsub is None:
                await asyncio.sleep(0.05)
                continue
            try:
                msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
            except _ERRORS as exc:
                if pubsub is self._pubsub:
                    self._mark_down(exc)
                continue
            if msg is None:
                continue
            if msg.get("type") != "message":
                if pubsub is self._pubsub:
                    self._confirm(msg.get("type"), msg.get("channel"))
                continue
            self._handle(msg.get("channel"), msg.get("data"))

    def _handle(self, channel: object, data: object) -> None:
        if not isinstance(channel, bytes) or not isinstance(data, bytes):
            return
        if not channel.startswith(self._channel_prefix):
            return
        try:
            count_s, origin, raw = data.split(b"\n", 2)
            clients = int(count_s)
            topic = channel[len(self._channel_prefix) :].decode()
            text = raw.decode()
        except ValueError:
            self._metrics.refusals.labels(reason="redis_bad_message").inc()
            log.warning("malformed message on redis channel", extra={"channel": channel[:200]})
            return
        if origin.decode(errors="replace") == self.instance_id:
            return
        self._metrics.redis_messages_in.inc()
        self._deliver(topic, clients, text)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except _ERRORS as exc:
                log.debug("closing pubsub failed", extra={"error": repr(exc)})

    async def stop(self) -> None:
        """Remove this instance's counts and heartbeat (best effort) and stop the tasks."""
        self._closing = True
        was_up = self._up.is_set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                log.debug("redis bus task stopped")
        self._tasks = []
        if was_up:
            try:
                topics = self._topics_source() if self._topics_source is not None else []
                for topic in set(topics) | self._subscribed:
                    await self._client.hdel(self._count_key(topic), self.instance_id)
                await self._client.delete(self._alive_key())
            except _ERRORS as exc:
                log.warning("redis bus cleanup failed", extra={"error": repr(exc)})
        self._up.clear()
        self._metrics.redis_up.set(0)
        await self._close_pubsub()
        await self._client.aclose()
