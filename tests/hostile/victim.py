"""The victim's view: what a legitimate user and the operator see after an attack.

* :func:`write_and_archive` — a legit Python peer types into a room and waits until the
  replica's HTTP API serves the text (then leaves, so only the replica holds it);
* :func:`check_sentinel` — a fresh room opened after (or during) an attack still archives;
* :func:`check_browser_syncs` — a fresh **stock** y-webrtc browser joining a room gets its text
  (:func:`check_peer_syncs`: the same with a fresh Python peer);
* :class:`ResourceWatch` — RSS and open fds of the server process, sampled while an attack
  runs, as growth over a baseline taken before it;
* :func:`stall_events` — event-loop stalls reconstructed from the ping probe's latencies.

Every check raises ``AssertionError`` naming the victim property that broke.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.support.browser import Chromium
from tests.support.marks import needs_chromium, needs_netns
from tests.support.peers import peer, wait_text
from tests.support.servers import CollabServer

ATTACK_MARKS = [
    pytest.mark.anyio,
    pytest.mark.netns,
    pytest.mark.browser,
    needs_netns,
    needs_chromium,
]
"""Marks of an attack judged by a browser: a real ``collab serve`` in the namespace."""

SENTINEL_DEADLINE = 15.0
"""Seconds a fresh room may take to archive a fresh peer's text (normally ~1-3 s)."""
BROWSER_DEADLINE = 15.0
"""Seconds a fresh stock browser may take to receive a room's text (normally ~1-3 s)."""
ARCHIVE_DEADLINE = 15.0
"""Seconds a legit peer's edit may take to reach ``GET /api/rooms/{room}/text``."""
POLL = 0.1
"""Interval when polling the server's HTTP API (another process: no event to wait on)."""

PINGER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pinger.py")
"""The stall probe script (run in its own process)."""

ServerFactory = Callable[..., CollabServer]
"""The ``hostile_server`` fixture: ``hostile_server(env={...}, nofile=N) -> CollabServer``."""


# --------------------------------------------------------------------------- HTTP API


async def archived_text(server: CollabServer, room: str) -> str | None:
    """``GET /api/rooms/{room}/text`` (None while the room is unknown or the server fails)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{server.http}/api/rooms/{room}/text")
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


async def wait_archived(
    server: CollabServer, room: str, expected: str, timeout: float = ARCHIVE_DEADLINE
) -> float:
    """Poll the archive until ``room``'s text equals ``expected``; return the seconds taken.

    Raises:
        AssertionError: not archived within ``timeout`` (the victim property).
    """
    t0 = time.monotonic()
    last: str | None = None
    with anyio.move_on_after(timeout):
        while True:
            last = await archived_text(server, room)
            if last == expected:
                return time.monotonic() - t0
            await anyio.sleep(POLL)
    shown = last if last is None or len(last) < 200 else last[:200] + "…"
    raise AssertionError(
        f"room {room[:60]!r}: the archive did not get the legit text within {timeout:.0f} s "
        f"(expected {expected[:80]!r}, archive has {shown!r})"
    )


async def metric(server: CollabServer, name: str) -> float | None:
    """One unlabelled sample of ``/metrics`` (None if the metric does not exist)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{server.http}/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


# --------------------------------------------------------------------------- legit users


async def write_and_archive(server: CollabServer, room: str, text: str) -> None:
    """A legit Python peer joins ``room``, types ``text`` and leaves once it is archived."""
    async with peer(room, server.signaling) as writer:
        writer.document.text().insert(0, text)
        await wait_archived(server, room, text)


async def check_sentinel(server: CollabServer, label: str = "sentinel") -> float:
    """A fresh room, a fresh peer: its text must reach the archive within the deadline.

    Returns the seconds taken (printed by callers as the margin).
    """
    room = f"{label}-{uuid.uuid4().hex[:8]}"
    text = f"sentinel text {uuid.uuid4().hex}"
    t0 = time.monotonic()
    try:
        with anyio.fail_after(SENTINEL_DEADLINE + 5):
            async with peer(room, server.signaling) as p:
                p.document.text().insert(0, text)
                await wait_archived(server, room, text, SENTINEL_DEADLINE)
    except TimeoutError:
        raise AssertionError(
            f"sentinel room {room!r}: a fresh peer could not even join within "
            f"{SENTINEL_DEADLINE + 5:.0f} s"
        ) from None
    except AssertionError as e:
        raise AssertionError(f"sentinel room no longer archives: {e}") from None
    return time.monotonic() - t0


async def check_browser_syncs(
    chromium: Chromium, page_url: str, server: CollabServer, room: str, expected: str
) -> float:
    """A fresh stock y-webrtc page joins ``room``: its text must equal ``expected`` within
    :data:`BROWSER_DEADLINE`. Returns the seconds taken."""
    page = await chromium.open(page_url)
    try:
        t0 = time.monotonic()
        await page.evaluate(
            "a => window.collabTest.start(a)", {"room": room, "signaling": server.signaling}
        )
        try:
            await page.wait_for_function(
                "expected => window.collabTest.text() === expected",
                arg=expected,
                timeout=BROWSER_DEADLINE * 1000,
                polling=50,
            )
        except Exception as e:  # playwright's TimeoutError
            if "Timeout" not in type(e).__name__:
                raise
            text = await page.evaluate("() => window.collabTest.text()")
            conns = await page.evaluate("() => window.collabTest.conns()")
            raise AssertionError(
                f"room {room[:60]!r}: a fresh stock y-webrtc browser did not get the text "
                f"within {BROWSER_DEADLINE:.0f} s (expected {expected[:80]!r}, has "
                f"{str(text)[:80]!r}; its connections: {conns})"
            ) from None
        elapsed = time.monotonic() - t0
        assert await page.evaluate("() => window.collabTest.conns().bc") == []
        return elapsed
    finally:
        await page.close()


async def check_peer_syncs(server: CollabServer, room: str, expected: str) -> float:
    """A fresh Python peer joins ``room``: its text must equal ``expected`` within
    :data:`BROWSER_DEADLINE`. Returns the seconds taken."""
    t0 = time.monotonic()
    async with peer(room, server.signaling) as p:
        try:
            await wait_text(p, expected, BROWSER_DEADLINE)
        except TimeoutError:
            raise AssertionError(
                f"room {room[:60]!r}: a fresh peer did not get the text within "
                f"{BROWSER_DEADLINE:.0f} s (expected {expected[:80]!r}, has "
                f"{str(p.document.text())[:80]!r})"
            ) from None
    return time.monotonic() - t0


def assert_alive(server: CollabServer) -> None:
    assert server.proc is not None and server.proc.poll() is None, "the server process died"


# --------------------------------------------------------------------------- resources


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (``/proc/PID/status`` VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class ResourceWatch:
    """Peak RSS/fd growth of a process over a baseline taken on entry, sampled every
    ``interval`` s by a background task (another process's /proc: polling is the only way).

    Use ``async with ResourceWatch(pid) as watch: ...`` then :attr:`rss_growth`,
    :attr:`fd_growth`, or :meth:`line` for a printable figure.
    """

    pid: int
    interval: float = 0.05
    base_rss: float = 0.0
    base_fds: int = 0
    peak_rss: float = 0.0
    peak_fds: int = 0
    samples: int = 0
    _tg: Any = field(default=None, repr=False)

    def sample(self) -> None:
        try:
            self.peak_rss = max(self.peak_rss, rss_mb(self.pid))
            self.peak_fds = max(self.peak_fds, open_fds(self.pid))
            self.samples += 1
        except (FileNotFoundError, ProcessLookupError, RuntimeError):
            pass  # the process is gone: assert_alive reports it

    async def _run(self) -> None:
        while True:
            self.sample()
            await anyio.sleep(self.interval)

    async def __aenter__(self) -> ResourceWatch:
        self.base_rss = self.peak_rss = rss_mb(self.pid)
        self.base_fds = self.peak_fds = open_fds(self.pid)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.sample()
        self._tg.cancel_scope.cancel()
        # the sampler is ours and only ever cancelled: let the body's exception (an
        # AssertionError naming the victim property) propagate unwrapped
        await self._tg.__aexit__(None, None, None)

    @property
    def rss_growth(self) -> float:
        return self.peak_rss - self.base_rss

    @property
    def fd_growth(self) -> int:
        return self.peak_fds - self.base_fds

    def check(self, *, max_rss_mb: float | None = None, max_fds: int | None = None) -> None:
        """Assert the peak growth stayed under the bounds (the operator's victim property)."""
        if max_rss_mb is not None:
            assert self.rss_growth < max_rss_mb, (
                f"server RSS grew by {self.rss_growth:.1f} MB, bound {max_rss_mb} MB: {self.line()}"
            )
        if max_fds is not None:
            assert self.fd_growth < max_fds, (
                f"server open fds grew by {self.fd_growth}, bound {max_fds}: {self.line()}"
            )

    def line(self) -> str:
        return (
            f"RSS {self.base_rss:.0f} MB -> peak {self.peak_rss:.0f} MB "
            f"(+{self.rss_growth:.1f} MB); fds {self.base_fds} -> peak {self.peak_fds} "
            f"(+{self.fd_growth}); {self.samples} samples"
        )


# --------------------------------------------------------------------------- stalls


@dataclass(frozen=True)
class Stalls:
    """Event-loop stalls seen by the ping probe."""

    worst_ms: float
    p99_ms: float
    p50_ms: float
    pings: int
    events: list[float]
    """Duration (ms) of each stall: pings answered together form one stall."""

    def over(self, ms: float) -> int:
        """How many distinct stalls lasted at least ``ms``."""
        return sum(1 for e in self.events if e >= ms)

    def line(self) -> str:
        return (
            f"worst {self.worst_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, p50 {self.p50_ms:.1f} ms, "
            f"stalls >= 25 ms: {self.over(25)}, >= 50 ms: {self.over(50)}, "
            f">= 100 ms: {self.over(100)} "
            f"({self.pings} pings)"
        )


def stall_events(sent: list[float], latency: list[float], gap: float = 0.003) -> Stalls:
    """Group pings whose pongs arrived together (within ``gap`` s): each group is one stall
    of the server's loop, lasting as long as its oldest ping waited."""
    if not latency:
        return Stalls(0, 0, 0, 0, [])
    arrivals = sorted((s + lat, lat) for s, lat in zip(sent, latency, strict=True))
    events: list[float] = []
    group_end, group_worst = arrivals[0]
    for arrival, lat in arrivals[1:]:
        if arrival - group_end <= gap:
            group_worst = max(group_worst, lat)
        else:
            events.append(group_worst * 1000)
            group_worst = lat
        group_end = arrival
    events.append(group_worst * 1000)
    ms = sorted(x * 1000 for x in latency)
    return Stalls(
        worst_ms=ms[-1],
        p99_ms=ms[int(0.99 * (len(ms) - 1))],
        p50_ms=ms[len(ms) // 2],
        pings=len(ms),
        events=events,
    )


class StallProbe:
    """``pinger.py`` in its own process: ``async with StallProbe(url) as probe: ...;
    stalls = await probe.stop()``. Pings every ``interval`` s from :meth:`__aenter__` on."""

    def __init__(self, url: str, interval: float = 0.01) -> None:
        self.url = url
        self.interval = interval
        self._proc: Process | None = None
        self._out: BufferedByteReceiveStream | None = None

    async def __aenter__(self) -> StallProbe:
        self._proc = await anyio.open_process(
            [sys.executable, PINGER, self.url, str(self.interval)],
            stdin=-1,
            stdout=-1,
            stderr=None,
        )
        assert self._proc.stdout is not None
        self._out = BufferedByteReceiveStream(self._proc.stdout)
        with anyio.fail_after(15):
            line = await self._out.receive_until(b"\n", 100)
        assert line == b"ready", f"stall probe did not start: {line!r}"
        return self

    async def stop(self) -> Stalls:
        """Stop pinging; the stalls seen since the probe started."""
        assert self._proc is not None and self._proc.stdin is not None and self._out is not None
        await self._proc.stdin.send(b"stop\n")
        with anyio.fail_after(20):
            line = await self._out.receive_until(b"\n", 1 << 24)
            await self._proc.wait()
        result = json.loads(line)
        return stall_events(result["sent"], result["latency"])

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()  # our own child, by its handle
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await proc.wait()
        if proc is not None:
            await proc.aclose()
