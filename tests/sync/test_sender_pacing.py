"""The sender side of collab.sync in a burst: pacing, merging in rounds, no delay at typing rate.

The channel double behaves like aiortc's :class:`~collab.peer.datachannel.DataChannel` as seen
by the sync room: ``writable`` is False while something sent is unacknowledged, and
``wait_writable`` / ``try_send`` follow it. The test decides when the remote acknowledges.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import pycrdt
import pytest
from anyio.abc import TaskGroup

import collab.sync
from collab.document import Document
from collab.memnet import MemoryChannel, MemoryNetwork, wait_idle
from collab.protocol import SyncUpdate, decode_message
from collab.sync import SyncOptions, SyncRoom, _merge

pytestmark = pytest.mark.anyio


class AckedChannel(MemoryChannel):
    """A memory channel with aiortc's acknowledgement view: every message sent stays
    unacknowledged until :meth:`ack` (``auto_ack``: at once). Records when each update
    message was handed over."""

    def __init__(self, *args: object, auto_ack: bool = False) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.auto_ack = auto_ack
        self.unacked = False
        self._acked = anyio.Event()
        self.update_times: list[float] = []

    @property
    def writable(self) -> bool:
        return not self.unacked

    async def wait_writable(self) -> None:
        while self.unacked:
            await self._acked.wait()

    def ack(self) -> None:
        self.unacked = False
        self._acked.set()
        self._acked = anyio.Event()

    def _handed_over(self, message: bytes) -> None:
        if isinstance(decode_message(message), SyncUpdate):
            self.update_times.append(time.monotonic())
        self.unacked = not self.auto_ack

    async def send(self, message: bytes) -> None:
        self._handed_over(message)
        await super().send(message)

    def try_send(self, message: bytes) -> bool:
        if self.unacked or len(message) > self.max_message_size:
            return False
        self._link._transmit(self._side, bytes(message))
        self._handed_over(message)
        return True


@asynccontextmanager
async def pair(
    options: SyncOptions, *, auto_ack: bool = False
) -> AsyncIterator[tuple[SyncRoom, SyncRoom, AckedChannel, TaskGroup]]:
    """Room A (sending over an :class:`AckedChannel`) connected to room B."""
    a, b = SyncRoom(options=options), SyncRoom()
    link = MemoryNetwork().link()
    left = AckedChannel(link, 0, 1 << 20, auto_ack=auto_ack)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.serve, left, "a->b")
        tg.start_soon(b.serve, link.ends[1], "b->a")
        await wait_idle()
        yield a, b, left, tg
        tg.cancel_scope.cancel()


async def converged(a: SyncRoom, b: SyncRoom) -> None:
    changed = [anyio.Event()]
    handle = b.document.observe(lambda update, origin: changed[0].set())
    try:
        while str(b.document.text()) != str(a.document.text()):
            await changed[0].wait()
            changed[0] = anyio.Event()
    finally:
        b.document.unobserve(handle)


async def test_a_burst_goes_out_at_most_once_per_burst_interval() -> None:
    """While the previous message is unacknowledged, update messages are at least
    ``burst_interval`` apart (the old sender sent one per ``coalesce_wait``, 5 ms); what was
    typed meanwhile is merged, and the receiver gets every keystroke."""
    interval = 0.05
    options = SyncOptions(
        burst_interval=interval, coalesce_max_updates=1_000_000, coalesce_max_bytes=1 << 30
    )
    async with pair(options) as (a, b, channel, _tg):
        text = a.document.text()
        for i in range(3000):
            text.insert(i, "x")
            if i % 16 == 15:
                await anyio.lowlevel.checkpoint()  # the sender gets a turn now and then
                channel.ack()  # and the remote keeps acknowledging
        with anyio.fail_after(10):
            await converged(a, b)
    times = channel.update_times
    assert len(times) >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= interval * 0.9, gaps
    assert str(b.document.text()) == "x" * 3000


async def test_a_run_cut_by_the_merge_limits_is_followed_at_once() -> None:
    """Pacing never lets the outbox grow: when one message cannot take every queued update
    (``coalesce_max_updates``), the rest follows without waiting ``burst_interval``."""
    options = SyncOptions(burst_interval=30.0, coalesce_max_updates=10, coalesce_wait=0.001)
    async with pair(options) as (a, b, _channel, _tg):
        for i in range(100):  # queued before the sender runs: ten runs of ten
            a.document.text().insert(i, "y")
        with anyio.fail_after(5):
            await converged(a, b)
        (connection,) = a.connections
        assert connection.stats.updates_coalesced == 90


async def test_typing_rate_updates_go_out_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An update more than ``burst_interval`` after the previous message, with nothing
    unacknowledged, goes out at once (no task switch, no wait); one typed sooner waits for
    the interval and goes out merged with what followed it."""
    clock = [1000.0]
    monkeypatch.setattr(collab.sync, "_now", lambda: clock[0])
    options = SyncOptions(burst_interval=0.05)
    async with pair(options, auto_ack=True) as (a, b, channel, _tg):
        text = a.document.text()
        for i in range(3):  # typing rate: a keystroke every 0.2 s (of the pacing clock)
            text.insert(i, "k")
            assert len(channel.update_times) == i + 1  # handed over within the edit
            await wait_idle()
            assert str(b.document.text()) == "k" * (i + 1)
            clock[0] += 0.2
        text.insert(3, "1")  # a burst: 1 ms apart
        clock[0] += 0.001
        text.insert(4, "2")
        text.insert(5, "3")
        await wait_idle()
        assert len(channel.update_times) == 4
        assert str(b.document.text()) == "kkk1"  # "2" and "3" wait for the interval ...
        with anyio.fail_after(5):
            await converged(a, b)  # ... then go out together
        assert len(channel.update_times) == 5
        (connection,) = a.connections
        assert connection.stats.updates_coalesced == 1


def test_merging_in_rounds_equals_merging_at_once() -> None:
    """``_merge`` (rounds of at most 32 updates) gives the same update bytes as one
    ``pycrdt.merge_updates`` call, for inserts and deletes across two clients."""
    doc = Document(client_id=11)
    other = Document(client_id=12)
    updates: list[bytes] = []
    doc.observe(lambda update, origin: updates.append(update))
    text = doc.text()
    for i in range(300):
        with doc.transaction():
            text.insert(i // 2, chr(ord("a") + i % 26))
            if i % 7 == 6:
                del text[i // 3 : i // 3 + 2]
        if i % 50 == 0:
            other.apply_update(doc.get_update())
            other.text().insert(0, "Z")
            doc.apply_update(other.get_update(doc.state_vector()), origin="remote")
    assert len(updates) > 100
    merged = _merge(list(updates))
    assert merged == pycrdt.merge_updates(*updates)
    rebuilt = Document()
    rebuilt.apply_update(merged)
    assert str(rebuilt.text()) == str(text)
