"""The one launcher of the processes tests start, and waits on what other processes do.

Every process runs in its own session (so it and everything it spawns are ended together, by
its process group), its merged output is drained by a thread into memory and a log file (a
chatty process never blocks on a full pipe), and it is ended by PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from tests.support.paths import ROOT


class Process:
    """A subprocess whose merged output is kept (:meth:`output`) and copied to ``log_path``.

    ``start()`` may be called again after :meth:`kill`/:meth:`stop` (a restart); output from
    an earlier run never matches :meth:`wait_for_line` of a later one.
    """

    def __init__(
        self,
        args: list[str],
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        *,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.pass_fds = tuple(pass_fds)
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._mark = 0  # lines before the current run (a restart must not match old output)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            self._mark = len(self._lines)
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=self.pass_fds,
        )
        self._thread = threading.Thread(
            target=self._drain, args=(self.proc,), daemon=True, name=f"drain-{self.proc.pid}"
        )
        self._thread.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "start() first"
        return self.proc.pid

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(open(self.log_path, "ab")) if self.log_path else None
            for raw in proc.stdout:
                if log is not None:
                    log.write(raw)
                    log.flush()
                with self._cond:
                    self._lines.append(raw.decode(errors="replace"))
                    self._cond.notify_all()
        proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> str:
        """Block until an output line of this run matches ``pattern``.

        Raises:
            RuntimeError: the process ended, or ``timeout`` passed, first (with its last
                output).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = self._mark
            while True:
                for line in self._lines[seen:]:
                    if re.search(pattern, line):
                        return line
                seen = len(self._lines)
                if (
                    self.proc is not None
                    and self.proc.poll() is not None
                    and not (self._thread and self._thread.is_alive())
                ):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        tail = "".join(self._lines[-30:])
        raise RuntimeError(f"{self.args[:3]} did not print {pattern!r}; last output:\n{tail}")

    def wait_ready(self, pattern: str, timeout: float = 30.0) -> str:
        """:meth:`wait_for_line` for the line saying the process is ready; a process that
        does not get there is killed before the error is raised."""
        try:
            return self.wait_for_line(pattern, timeout)
        except BaseException:
            self.kill()
            raise

    def output(self) -> str:
        """Everything the process printed so far, over all its runs."""
        with self._cond:
            return "".join(self._lines)

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Send ``sig`` to the process group and wait until all of it is gone (SIGKILL after
        ``timeout``)."""
        if self.proc is None:
            return
        stop_process_group(self.proc, sig, timeout)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (graceful: e.g. the replica flushes and compacts), then wait."""
        self.kill(signal.SIGTERM)


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> None:
    """End a process we started in its own session, and everything it spawned, by its PID:
    ``sig`` to the group, SIGKILL if the process outlives ``timeout`` and again if any of its
    group does (Chromium's helpers keep writing to the profile until they are all gone)."""
    pgid = proc.pid
    if proc.poll() is None or group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    try:
        poll_until(lambda: not group_alive(pgid), 5, f"process group {pgid} to exit")
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        poll_until(lambda: not group_alive(pgid), 5, f"process group {pgid} to die")


def poll_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Block, polling a condition another process controls (readiness, exit) until it holds.

    Raises:
        TimeoutError: naming ``what``, after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll a condition another process controls (no event exists for it) until it holds,
    without blocking the event loop (``TimeoutError`` after ``timeout``)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(interval)
