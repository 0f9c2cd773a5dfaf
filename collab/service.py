"""One lifecycle for every long-running object: ``async with`` = a task group running ``run``.

A :class:`Service` implements :meth:`Service.run` (``await task_status`` style: call
``task_status.started()`` once ready, then work until cancelled). Two ways to run it, both
structured — every task has a parent that awaits it:

* inside your own task group: ``await tg.start(service.run)`` (how the replica starts its room
  actors and how a room starts its signaling client);
* ``async with service:`` — enters a task group in the caller's task, starts :meth:`run` in it
  and waits until it is ready; leaving the block runs :meth:`before_stop` (the graceful part,
  e.g. telling peers we leave, while everything still runs), then cancels :meth:`run` and
  waits for it. A crash inside ``run`` cancels the ``async with`` body and is re-raised when the
  block exits: it surfaces where it happened instead of being parked in a detached task.

``start()`` / ``close()`` are the same two halves for callers that cannot use ``async with``
(they must be called from the same task, like any anyio task group).

Example:
    >>> import anyio
    >>> class Ticker(Service):
    ...     ticks = 0
    ...     async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
    ...         task_status.started()
    ...         while True:
    ...             self.ticks += 1
    ...             await anyio.sleep(0.001)
    >>> async def main() -> bool:
    ...     async with Ticker() as t:
    ...         await anyio.sleep(0.01)
    ...     return t.ticks > 0
    >>> anyio.run(main)
    True
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus

__all__ = ["Service"]


class Service:
    """Base class: subclasses implement :meth:`run` (see the module docstring)."""

    _service_stack: AsyncExitStack | None = None
    _service_tg: TaskGroup | None = None

    async def run(self, *, task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Work until cancelled; call ``task_status.started()`` once ready for callers."""
        raise NotImplementedError

    async def before_stop(self) -> None:
        """The graceful part of leaving ``async with`` (runs shielded, while :meth:`run` still
        runs). Keep it bounded in time. The default does nothing."""

    @property
    def running(self) -> bool:
        """True between ``__aenter__`` and ``__aexit__``."""
        return self._service_tg is not None

    async def __aenter__(self) -> Self:
        if self._service_stack is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        stack = AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        try:
            await tg.start(self.run)
        except BaseException:
            tg.cancel_scope.cancel()
            await stack.aclose()
            raise
        self._service_stack, self._service_tg = stack, tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, tg = self._service_stack, self._service_tg
        if stack is None or tg is None:
            return False
        self._service_stack = self._service_tg = None
        try:
            with anyio.CancelScope(shield=True):
                await self.before_stop()
        finally:
            tg.cancel_scope.cancel()
            suppressed = await stack.__aexit__(exc_type, exc, tb)
        return bool(suppressed)

    async def start(self) -> None:
        """``__aenter__`` for callers that cannot use ``async with`` (same task as close)."""
        await self.__aenter__()

    async def close(self) -> None:
        """``__aexit__`` for callers that used :meth:`start` (idempotent)."""
        await self.__aexit__(None, None, None)
