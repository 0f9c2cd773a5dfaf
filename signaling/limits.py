"""The per-socket token bucket (used to shape traffic: a socket over its rate is read more
slowly — TCP backpressure — and closed only after sustained abuse).

Example:
    >>> bucket = TokenBucket(rate=1.0, burst=2, now=0.0)
    >>> bucket.take(0.0), bucket.take(0.0), bucket.take(0.0)
    (True, True, False)
"""

from __future__ import annotations


class TokenBucket:
    """A classic token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    Args:
        rate: refill rate in tokens per second.
        burst: capacity; the bucket starts full.
        now: the current monotonic time.

    Example:
        >>> b = TokenBucket(rate=10.0, burst=1, now=0.0)
        >>> b.take(0.0), b.take(0.05), b.take(0.1)
        (True, False, True)
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("TokenBucket needs rate > 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens at time ``now``; False when the bucket is empty."""
        self._refill(now)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def take_or_wait(self, now: float) -> float:
        """Take one token if there is one (0.0), else the seconds until there is (nothing
        taken): :meth:`take` and :meth:`wait_time` in one refill.

        Example:
            >>> b = TokenBucket(rate=10.0, burst=1, now=0.0)
            >>> b.take_or_wait(0.0), round(b.take_or_wait(0.0), 3)
            (0.0, 0.1)
        """
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def wait_time(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are available (0 when they are now).

        Example:
            >>> b = TokenBucket(rate=10.0, burst=1, now=0.0)
            >>> b.take(0.0), round(b.wait_time(0.0), 3)
            (True, 0.1)
        """
        self._refill(now)
        return max(0.0, (cost - self._tokens) / self._rate)

    def _refill(self, now: float) -> None:
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._last = now
