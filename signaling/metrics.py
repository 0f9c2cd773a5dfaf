"""Prometheus metrics of one signaling service, on its own ``CollectorRegistry``.

Example:
    >>> m = SignalingMetrics()
    >>> m.refusals.labels(reason="rate_limit").inc()
    >>> b"collab_signaling_refusals_total" in m.render()
    True
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


MESSAGE_TYPES = ("subscribe", "unsubscribe", "publish", "ping", "ignored", "named")


class Tally(Collector):
    """The per-frame counters and the fan-out histogram as plain numbers, read by Prometheus
    only when scraped (a ``Counter.inc`` takes a lock: eleven of them per published frame cost
    more than the fan-out itself). Exposed as ``collab_signaling_{messages,bytes}_{in,out}_total``
    and ``collab_signaling_fanout_seconds``.

    Example:
        >>> t = Tally()
        >>> t.messages_in["ping"] += 1
        >>> {s.labels["type"]: s.value for s in next(iter(t.collect())).samples}["ping"]
        1.0
    """

    def __init__(self) -> None:
        self.messages_in = dict.fromkeys(MESSAGE_TYPES, 0)
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._fanout = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self._fanout_sum = 0.0

    def observe_fanout(self, seconds: float) -> None:
        """Count one fan-out's duration (publish received → queued on every subscriber)."""
        self._fanout[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self._fanout_sum += seconds

    def collect(self) -> Iterator[Metric]:
        p = "collab_signaling_"
        by_type = CounterMetricFamily(
            p + "messages_in", "Frames received by message type", labels=["type"]
        )
        for kind, n in self.messages_in.items():
            by_type.add_metric([kind], float(n))
        yield by_type
        yield CounterMetricFamily(p + "messages_out", "Frames sent", value=float(self.messages_out))
        yield CounterMetricFamily(p + "bytes_in", "Bytes received", value=float(self.bytes_in))
        yield CounterMetricFamily(p + "bytes_out", "Bytes sent", value=float(self.bytes_out))
        cumulative, buckets = 0, []
        for bound, n in zip((*map(str, _LATENCY_BUCKETS), "+Inf"), self._fanout, strict=True):
            cumulative += n
            buckets.append((bound, float(cumulative)))
        yield HistogramMetricFamily(
            p + "fanout_seconds",
            "Time from receiving a publish to queueing it on every local subscriber",
            buckets=buckets,
            sum_value=self._fanout_sum,
        )


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
        self.tally = Tally()
        "Frames and bytes in/out (plain integers on the hot path)."
        r.register(self.tally)
        self.refusals = Counter(
            p + "refusals",
            "Refused sockets / closes and ignored frames by reason",
            ["reason"],
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
