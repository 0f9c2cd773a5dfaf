"""A task group that lives in its own asyncio task, so ``start()``/``close()`` pairs of
independent objects (rooms sharing a signaling client) may be opened and closed in any order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger(__name__)


class TaskRunner:
    """Runs background tasks in a private task group until :meth:`stop`.

    Example:
        >>> runner = TaskRunner("demo")  # doctest: +SKIP
        >>> await runner.start(); runner.spawn(work); await runner.stop()  # doctest: +SKIP
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tg: TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._tg is not None

    async def start(self) -> None:
        """Start the task group (in its own asyncio task)."""
        if self._task is not None:
            raise RuntimeError(f"{self.name} already started")
        ready = anyio.Event()

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                ready.set()
                await anyio.sleep_forever()

        self._task = asyncio.get_running_loop().create_task(main(), name=self.name)
        await ready.wait()

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start ``fn(*args)`` in the group.

        Raises:
            RuntimeError: not running.
        """
        if self._tg is None:
            raise RuntimeError(f"{self.name} is not running")
        self._tg.start_soon(fn, *args)

    async def stop(self) -> None:
        """Cancel every task and wait for them (idempotent). Re-raises a task's crash."""
        tg, task = self._tg, self._task
        self._tg = None
        if tg is None or task is None:
            return
        tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            try:
                await task
            except asyncio.CancelledError:
                log.debug("%s: runner task cancelled", self.name)
