"""Report a failing dependency the way an operator wants to read it: once when it starts,
a reminder while it lasts, once when it recovers.

:class:`Outage` tracks one dependency (the store, the signaling server, Redis). ``fail()`` on
every failed attempt logs at the first one, then at most every ``repeat_every`` seconds
("still failing, N attempts"); ``ok()`` after a failure logs the recovery with its duration.
:attr:`Outage.up` and :attr:`Outage.failures` feed metrics.

Example:
    >>> import logging
    >>> outage = Outage("storage", logging.getLogger("demo"), clock=iter([0.0, 1.0, 2.0]).__next__)
    >>> outage.fail("disk full"); outage.fail("disk full"); outage.up
    False
    >>> outage.ok(); outage.up, outage.failures
    (True, 2)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Outage"]


class Outage:
    """One dependency's failure/recovery reporting (see the module docstring).

    Args:
        name: what is failing, as operators call it (``storage``, ``signaling``, ``redis``).
        log: where to log.
        repeat_every: seconds between reminders while the failure lasts.
        clock: a monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        name: str,
        log: logging.Logger,
        *,
        repeat_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.log = log
        self.repeat_every = repeat_every
        self.clock = clock
        self.up = True
        "False from the first failure until the next success."
        self.failures = 0
        "Failed attempts, ever (a counter)."
        self.outages = 0
        "Times the dependency went from up to down (a counter)."
        self._since = 0.0
        self._attempts = 0
        self._last_report = 0.0

    def fail(self, detail: str) -> None:
        """One failed attempt (``detail``: the error, without secrets)."""
        now = self.clock()
        self.failures += 1
        self._attempts += 1
        if self.up:
            self.up = False
            self.outages += 1
            self._since = self._last_report = now
            self.log.error("%s is failing: %s (retrying)", self.name, detail)
        elif now - self._last_report >= self.repeat_every:
            self._last_report = now
            self.log.error(
                "%s still failing after %.0f s (%d attempts): %s",
                self.name,
                now - self._since,
                self._attempts,
                detail,
            )

    def ok(self) -> None:
        """A successful attempt: logs the recovery if it was failing."""
        if self.up:
            return
        self.up = True
        self.log.warning(
            "%s recovered after %.1f s (%d failed attempts)",
            self.name,
            self.clock() - self._since,
            self._attempts,
        )
        self._attempts = 0
