"""Tests for collab.awareness: y-protocols clock rules, timers (fake clock), caps, modes."""

from __future__ import annotations

import anyio
import pytest

from collab.awareness import Awareness, AwarenessEvent
from collab.protocol import AwarenessEntry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kwargs: object) -> tuple[Awareness, list[AwarenessEvent]]:
    aw = Awareness(1, clock=clock, **kwargs)  # type: ignore[arg-type]
    events: list[AwarenessEvent] = []
    aw.observe(events.append)
    return aw, events


def test_initial_state_like_y_protocols(clock: FakeClock) -> None:
    aw = Awareness(1, clock=clock)
    assert aw.get_local_state() == {}
    assert aw.meta[1].clock == 0
    labelled = Awareness(1, state={"user": {"name": "archive"}}, clock=clock)
    assert labelled.meta[1].clock == 1  # visible at once (clock 0 of unknown clients is ignored)
    hidden = Awareness(1, state=None, clock=clock)
    assert hidden.get_local_state() is None
    assert hidden.encode(hidden.states) == ()


def test_clock_rules(clock: FakeClock) -> None:
    aw, events = make(clock)
    # clock 0 of an unknown client is ignored (y-protocols: currClock 0 < 0 is false)
    assert aw.apply([AwarenessEntry(2, 0, {"a": 1})], "x") is None
    ev = aw.apply([AwarenessEntry(2, 1, {"a": 1})], "x")
    assert ev is not None and ev.added == (2,) and ev.changed
    # older or equal clock with a state: ignored
    assert aw.apply([AwarenessEntry(2, 1, {"a": 2})], "x") is None
    assert aw.states[2] == {"a": 1}
    # newer clock, same state: an update event that is not a change
    ev = aw.apply([AwarenessEntry(2, 2, {"a": 1})], "x")
    assert ev is not None and ev.updated == (2,) and not ev.changed
    # equal clock + null for a known client: removal
    ev = aw.apply([AwarenessEntry(2, 2, None)], "x")
    assert ev is not None and ev.removed == (2,)
    assert 2 not in aw.states and aw.meta[2].clock == 2
    assert [e.origin for e in events] == ["x", "x", "x"]


def test_remote_null_for_our_client_bumps_our_clock(clock: FakeClock) -> None:
    aw, _ = make(clock)
    aw.set_local_state({"me": True})
    own_clock = aw.meta[1].clock
    ev = aw.apply([AwarenessEntry(1, own_clock + 5, None)], "peer")
    assert ev is not None and ev.removed == (1,)
    assert aw.get_local_state() == {"me": True}
    assert aw.meta[1].clock == own_clock + 6
    # what gets re-broadcast is our state with the bumped clock
    assert aw.encode(ev.clients) == (AwarenessEntry(1, own_clock + 6, {"me": True}),)


def test_renewal_and_expiry_with_fake_clock(clock: FakeClock) -> None:
    aw, events = make(clock)
    aw.apply([AwarenessEntry(2, 1, {"a": 1})], "x")
    clock.now += 14.9
    aw.check()
    assert aw.meta[1].clock == 0 and 2 in aw.states
    clock.now += 0.2  # 15.1 s: renew ours
    aw.check()
    assert aw.meta[1].clock == 1
    clock.now += 15.0  # 30.1 s since the remote's update: expired
    aw.check()
    assert 2 not in aw.states
    assert events[-1].removed == (2,) and events[-1].origin == "timeout"
    clock.now += 61.0  # long gone: its clock is forgotten too
    aw.check()
    assert 2 not in aw.meta


def test_max_clients_cap(clock: FakeClock) -> None:
    aw, _ = make(clock, max_clients=3)
    aw.apply([AwarenessEntry(c, 1, {}) for c in (2, 3, 4, 5)], "x")
    assert sorted(aw.states) == [1, 2, 3]
    assert aw.refused == 2
    # known clients still update
    assert aw.apply([AwarenessEntry(2, 2, {"x": 1})], "x") is not None


def test_hide_and_show(clock: FakeClock) -> None:
    aw, events = make(clock, state={"user": {"name": "archive"}})
    aw.set_local_state(None)
    assert events[-1].removed == (1,)
    assert aw.encode([1]) == (AwarenessEntry(1, 2, None),)
    aw.set_local_state({"user": {"name": "archive"}})
    assert events[-1].added == (1,)
    aw.set_local_state_field("cursor", 3)
    assert aw.get_local_state() == {"user": {"name": "archive"}, "cursor": 3}


def test_remove_states(clock: FakeClock) -> None:
    aw, _ = make(clock)
    aw.apply([AwarenessEntry(2, 1, {})], "x")
    ev = aw.remove_states([2, 1, 99], "bye")
    assert ev is not None and ev.removed == (2, 1)
    assert aw.meta[1].clock == 1
    assert aw.remove_states([2], "bye") is None


@pytest.mark.anyio
async def test_run_expires_remote_states() -> None:
    """The timer task (real clock, short timeout) removes a silent remote client."""
    aw = Awareness(1, outdated_timeout=0.3)
    removed = anyio.Event()
    aw.observe(lambda ev: removed.set() if 2 in ev.removed else None)
    aw.apply([AwarenessEntry(2, 1, {"a": 1})], "x")
    async with anyio.create_task_group() as tg:
        tg.start_soon(aw.run)
        with anyio.fail_after(10):
            await removed.wait()
        tg.cancel_scope.cancel()
    assert 2 not in aw.states
    assert aw.get_local_state() == {}
