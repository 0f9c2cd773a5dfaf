"""Process-level health of ``collab serve``: event-loop stalls, file descriptors, replica
counters — all as Prometheus metrics on the app's registry.

* :class:`LoopMonitor` wakes every ``interval`` seconds and records how late it woke in the
  histogram ``collab_event_loop_stall_seconds``: every room, every signaling socket and the
  HTTP API share this one event loop, so a late wake-up is a stall everyone felt.
* :class:`ReplicaCollector` renders the replica's counters at scrape time (rooms by lifecycle
  state, room failures by reason, remote connections closed by reason, refused offers,
  pending connections) and the process's open file descriptors against its limit.
* :func:`raise_fd_limit` lifts the soft ``ulimit -n`` to the hard limit at start (every WebRTC
  connection holds sockets).

Example:
    >>> from prometheus_client import CollectorRegistry
    >>> monitor = LoopMonitor(CollectorRegistry())
    >>> monitor.interval
    0.02
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Iterator

import anyio
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collab.peer.budget import fd_usage
from collab.replica import ArchivalReplica, RoomState
from collab.service import Service

__all__ = ["LoopMonitor", "ReplicaCollector", "raise_fd_limit"]

log = logging.getLogger("collabd")

_STALL_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft file-descriptor limit to the hard one; returns ``(soft, hard)`` after.

    Example:
        >>> soft, hard = raise_fd_limit()
        >>> soft <= hard or hard == -1
        True
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.info("could not raise the file-descriptor limit: %s", exc)
    return soft, hard


class LoopMonitor(Service):
    """Measures event-loop stalls (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry, interval: float = 0.02) -> None:
        self.interval = interval
        self.worst = 0.0
        "The worst stall seen, seconds."
        self.histogram = Histogram(
            "collab_event_loop_stall_seconds",
            "How late a periodic wake-up ran: the event loop was blocked this long",
            buckets=_STALL_BUCKETS,
            registry=registry,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sample until cancelled."""
        task_status.started()
        while True:
            start = time.monotonic()
            await anyio.sleep(self.interval)
            late = max(0.0, time.monotonic() - start - self.interval)
            self.worst = max(self.worst, late)
            self.histogram.observe(late)


class ReplicaCollector(Collector):
    """Renders a replica's counters at scrape time (see the module docstring)."""

    def __init__(self, replica: ArchivalReplica) -> None:
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        replica = self.replica
        stats = replica.stats
        actors = list(replica.rooms.values())
        live = [a.live for a in actors if a.live is not None]

        loaded = GaugeMetricFamily("collab_replica_rooms_loaded", "Rooms live in memory")
        loaded.add_metric([], len(live))
        yield loaded
        tracked = GaugeMetricFamily(
            "collab_replica_rooms_tracked", "Room actors in any lifecycle state"
        )
        tracked.add_metric([], len(actors))
        yield tracked
        by_state = GaugeMetricFamily(
            "collab_replica_rooms", "Room actors by lifecycle state", labels=["state"]
        )
        for state in RoomState:
            by_state.add_metric([state.value], sum(1 for a in actors if a.state is state))
        yield by_state

        errors = GaugeMetricFamily(
            "collab_replica_storage_errors", "Storage errors seen by the replica"
        )
        errors.add_metric([], stats.storage_errors)
        yield errors
        failures = CounterMetricFamily(
            "collab_replica_room_failures",
            "Room crashes (logged with traceback, room restarted with backoff)",
            labels=["reason"],
        )
        for reason, count in sorted(stats.room_failures.items()):
            failures.add_metric([reason], count)
        yield failures
        refused_rooms = CounterMetricFamily(
            "collab_replica_rooms_refused", "Rooms not archived: max_rooms were tracked"
        )
        refused_rooms.add_metric([], stats.rooms_refused)
        yield refused_rooms

        closed = stats.remote_closed.copy()
        remote_failures = stats.remote_failures
        for room in live:
            closed.update(room.webrtc.counters.close_reasons)
            remote_failures += room.webrtc.counters.remote_failures
        closed_family = CounterMetricFamily(
            "collab_replica_remote_closed",
            "Remote WebRTC connections closed, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(closed.items()):
            closed_family.add_metric([reason], count)
        yield closed_family
        crashed = CounterMetricFamily(
            "collab_replica_remote_failures",
            "Remote connections that crashed (only that connection was closed)",
        )
        crashed.add_metric([], remote_failures)
        yield crashed
        offloaded = CounterMetricFamily(
            "collab_replica_offloaded_updates",
            "Large updates scanned or split in a worker thread, off the shared event loop",
        )
        offloaded.add_metric([], stats.offloaded + sum(room.sync.offloaded for room in live))
        yield offloaded
        refused = CounterMetricFamily(
            "collab_replica_offers_refused",
            "New connections ignored for lack of a pending slot, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(replica.budget.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        evicted = CounterMetricFamily(
            "collab_replica_pending_evicted", "Pending connections evicted for a newcomer"
        )
        evicted.add_metric([], replica.budget.evicted)
        yield evicted
        pending = GaugeMetricFamily(
            "collab_replica_pending_connections", "Connections being set up (not open yet)"
        )
        pending.add_metric([], replica.budget.pending_count)
        yield pending
        connections = GaugeMetricFamily(
            "collab_replica_connections", "Open remote connections (data channel open)"
        )
        connections.add_metric([], sum(room.peers for room in live))
        yield connections

        for name, outage, what in (
            ("collab_store", replica.store.outage, "the store commits"),
            ("collab_replica_signaling", replica.signaling.outage, "the replica's signaling"),
        ):
            up = GaugeMetricFamily(f"{name}_up", f"1 while {what} works")
            up.add_metric([], 1.0 if outage.up else 0.0)
            yield up
            outages = CounterMetricFamily(f"{name}_outages", f"Times {what} started failing")
            outages.add_metric([], outage.outages)
            yield outages

        uncommitted = GaugeMetricFamily(
            "collab_store_uncommitted_updates", "Updates appended but not yet committed"
        )
        counters = replica.store.counters
        uncommitted.add_metric([], counters.appended - counters.committed)
        yield uncommitted

        usage = fd_usage()
        if usage is not None:
            fds = GaugeMetricFamily("collab_process_open_fds", "Open file descriptors")
            fds.add_metric([], usage[0])
            yield fds
            limit = GaugeMetricFamily("collab_process_max_fds", "File-descriptor soft limit")
            limit.add_metric([], usage[1])
            yield limit
