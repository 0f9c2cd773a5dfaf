"""Process-wide admission of new WebRTC connections: pending caps and file descriptors.

A connection that is offered but not open yet holds UDP sockets (file descriptors) and memory
until ICE and DTLS finish or ``connect_timeout`` passes. Anyone in a room can send offers, so
the number of such *pending* connections is capped per room (``PeerConfig.max_pending``) and
across every room of the process (:class:`ConnectionBudget`, ``max_pending_total``), and no new
connection starts while the process is short of file descriptors (``fd_reserve`` of
``ulimit -n``). At a cap the oldest pending connection that had ``pending_min_age`` seconds to
finish is evicted in favour of the newcomer — a flood of offers that never complete cannot
lock legitimate peers out — and only when none is old enough is the newcomer ignored.

Example:
    >>> budget = ConnectionBudget(max_pending_total=2)
    >>> budget.pending_count
    0
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["ConnectionBudget", "Evictable", "fd_usage"]

log = logging.getLogger(__name__)


class Evictable(Protocol):
    """What the budget needs from a connection (``RemotePeer`` implements it)."""

    @property
    def pending(self) -> bool:
        """True while offered/answering/connecting (not open, not closed)."""
        ...

    @property
    def pending_since(self) -> float:
        """``time.monotonic()`` when the current attempt started."""
        ...

    def close(self, reason: str) -> None:
        """Close the connection (idempotent)."""
        ...


def fd_usage() -> tuple[int, int] | None:
    """``(open file descriptors, soft limit)`` of this process, or None where unknown.

    Example:
        >>> usage = fd_usage()
        >>> usage is None or usage[0] <= usage[1]
        True
    """
    try:
        count = len(os.listdir("/proc/self/fd"))
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except OSError:
        return None
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    return count, soft


class ConnectionBudget:
    """Tracks every connection of the process that is not open yet (see the module docstring).

    Args:
        max_pending_total: pending connections allowed across all rooms.
        fd_reserve: fraction of the descriptor limit kept free.
        min_age: pending connections younger than this are never evicted.
        fd_usage: ``() -> (open, limit) | None`` (injectable for tests).
    """

    def __init__(
        self,
        max_pending_total: int = 128,
        *,
        fd_reserve: float = 0.25,
        min_age: float = 1.0,
        fd_usage: Callable[[], tuple[int, int] | None] = fd_usage,
    ) -> None:
        self.max_pending_total = max_pending_total
        self.fd_reserve = fd_reserve
        self.min_age = min_age
        self._fd_usage = fd_usage
        self._tracked: set[Evictable] = set()
        self._fd_checked = -1.0
        self._fd_ok = True
        self.refused: Counter[str] = Counter()
        "New connections ignored, by reason (``room-pending``, ``pending``, ``fds``)."
        self.evicted = 0
        "Pending connections closed to make room for a newcomer."

    @property
    def pending_count(self) -> int:
        """Connections currently pending (offered/answering/connecting)."""
        return sum(1 for r in self._tracked if r.pending)

    def track(self, remote: Evictable) -> None:
        """Count ``remote`` while it is pending (call once, when it is created)."""
        self._tracked.add(remote)

    def forget(self, remote: Evictable) -> None:
        """Stop counting ``remote`` (it closed)."""
        self._tracked.discard(remote)

    def fds_ok(self) -> bool:
        """False while fewer than ``fd_reserve`` of the descriptor limit are free (checked at
        most every 250 ms: listing ``/proc/self/fd`` costs O(open fds))."""
        now = time.monotonic()
        if now - self._fd_checked >= 0.25:
            self._fd_checked = now
            usage = self._fd_usage()
            self._fd_ok = usage is None or usage[0] < usage[1] * (1 - self.fd_reserve)
        return self._fd_ok

    def admit(
        self, room_pending: Sequence[Evictable], room_cap: int, *, count: bool = True
    ) -> str | None:
        """Make room for one new pending connection in a room whose pending connections are
        ``room_pending``; returns None when admitted, else the refusal reason (counted unless
        ``count`` is false: a retry of an already counted refusal).

        Evicts (closes) the oldest evictable pending connection of the room, or of the
        process, when a cap is reached.
        """
        now = time.monotonic()
        if len(room_pending) >= room_cap and not self._evict(room_pending, now):
            return self._refuse("room-pending", count)
        everywhere = [r for r in self._tracked if r.pending]
        if len(everywhere) >= self.max_pending_total and not self._evict(everywhere, now):
            return self._refuse("pending", count)
        if not self.fds_ok():
            if not self._evict(everywhere, now):
                return self._refuse("fds", count)
            self._fd_checked = -1.0  # re-check after the eviction released its sockets
        return None

    def _evict(self, candidates: Sequence[Evictable], now: float) -> bool:
        old = [r for r in candidates if r.pending and now - r.pending_since >= self.min_age]
        if not old:
            return False
        victim = min(old, key=lambda r: r.pending_since)
        self.evicted += 1
        victim.close("evicted")
        return True

    def _refuse(self, reason: str, count: bool = True) -> str:
        if not count:
            return reason
        self.refused[reason] += 1
        if self.refused[reason] in (1, 10, 100, 1000) or self.refused[reason] % 10_000 == 0:
            log.warning("connection refused (%s), %d so far", reason, self.refused[reason])
        return reason
