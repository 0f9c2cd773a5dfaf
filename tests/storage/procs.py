"""Run ``store_child.py`` in real processes and read their JSON lines (helper for tests)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT

CHILD = Path(__file__).with_name("store_child.py")


class Child:
    """One child process; its stdout lines go to a shared queue as ``(name, dict)``."""

    def __init__(self, name: str, args: list[str], events: queue.Queue[tuple[str, Any]]) -> None:
        self.name = name
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        self.pid = self.proc.pid
        self.stderr = b""
        self.killed = False
        self._reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._reader.start()

    def _read(self, events: queue.Queue[tuple[str, Any]]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            events.put((self.name, json.loads(line)))
        events.put((self.name, {"event": "exited"}))

    def kill(self) -> None:
        """SIGKILL by PID (idempotent) and reap."""
        self.killed = True
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.stderr = self.proc.stderr.read()
            self.proc.stderr.close()
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()


def next_event(
    events: queue.Queue[tuple[str, Any]], children: dict[str, Child], timeout: float = 60.0
) -> tuple[str, dict[str, Any]]:
    """The next line from any child; fails with the child's stderr if one exited by itself."""
    name, event = events.get(timeout=timeout)
    while event["event"] == "exited" and children[name].killed:
        name, event = events.get(timeout=timeout)
    if event["event"] == "exited":
        child = children[name]
        child.kill()
        raise AssertionError(f"{name} exited early: {child.stderr.decode(errors='replace')}")
    return name, event
