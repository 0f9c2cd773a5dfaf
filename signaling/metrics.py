"""Prometheus metrics of one signaling service, on its own ``CollectorRegistry``.

Example:
    >>> m = SignalingMetrics()
    >>> m.refusals.labels(reason="rate_limit").inc()
    >>> b"collab_signaling_refusals_total" in m.render()
    True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class SignalingMetrics:
    """All metrics of one service instance (a per-app registry, so apps never collide).

    Attributes:
        registry: the ``CollectorRegistry`` rendered at ``/metrics``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = "collab_signaling_"
        self.sockets = Gauge(p + "sockets", "Open sockets", ["endpoint"], registry=r)
        self.topics = Gauge(p + "topics", "Topics with at least one local subscriber", registry=r)
        self.messages_in = Counter(
            p + "messages_in", "Frames received by message type", ["type"], registry=r
        )
        self.messages_out = Counter(p + "messages_out", "Frames sent", registry=r)
        self.bytes_in = Counter(p + "bytes_in", "Bytes received", registry=r)
        self.bytes_out = Counter(p + "bytes_out", "Bytes sent", registry=r)
        self.refusals = Counter(
            p + "refusals",
            "Refused sockets / closes and ignored frames by reason",
            ["reason"],
            registry=r,
        )
        self.fanout_seconds = Histogram(
            p + "fanout_seconds",
            "Time from receiving a publish to queueing it on every local subscriber",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.hook_errors = Counter(p + "hook_errors", "Exceptions raised by hooks", registry=r)
        self.throttled = Counter(
            p + "throttled",
            "Times a socket went over its frame rate and was read more slowly",
            registry=r,
        )
        self.hook_dropped = Counter(
            p + "hook_dropped", "Hook calls dropped because the hook queue was full", registry=r
        )
        self.redis_up = Gauge(p + "redis_up", "1 when the Redis bus is connected", registry=r)
        self.redis_errors = Counter(p + "redis_errors", "Redis bus failures", registry=r)
        self.redis_messages_in = Counter(
            p + "redis_messages_in", "Publishes received from other instances", registry=r
        )

    def render(self) -> bytes:
        """The text exposition format of this registry."""
        return generate_latest(self.registry)
