"""One callback registry for every observable object (document, awareness, sync room).

``observe(callback) -> handle`` / ``unobserve(handle)`` is the same in every collab class; the
registry keeps the callbacks by handle and hands out a snapshot to iterate (a callback may
unobserve itself while being called). What to do when a callback raises is the caller's
policy, so the caller loops.

Example:
    >>> seen = []
    >>> observers: Observers[Callable[[int], None]] = Observers()
    >>> handle = observers.add(seen.append)
    >>> for callback in observers:
    ...     callback(1)
    >>> observers.remove(handle); bool(observers), seen
    (False, [1])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Observers"]

C = TypeVar("C", bound=Callable[..., Any])


class Observers(Generic[C]):
    """Callbacks by handle (see the module docstring)."""

    __slots__ = ("_callbacks", "_next", "_snapshot")

    def __init__(self) -> None:
        self._callbacks: dict[int, C] = {}
        self._next = 0
        self._snapshot: tuple[C, ...] = ()

    def add(self, callback: C) -> int:
        """Register ``callback``; returns its handle."""
        handle = self._next
        self._next += 1
        self._callbacks[handle] = callback
        self._snapshot = tuple(self._callbacks.values())
        return handle

    def remove(self, handle: int) -> None:
        """Unregister a handle (unknown handles are ignored)."""
        if self._callbacks.pop(handle, None) is not None:
            self._snapshot = tuple(self._callbacks.values())

    def __iter__(self) -> Iterator[C]:
        # the snapshot is rebuilt on add/remove, not per iteration: documents iterate their
        # observers once per transaction
        return iter(self._snapshot)

    def __bool__(self) -> bool:
        return bool(self._callbacks)
