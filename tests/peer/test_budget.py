"""ConnectionBudget: pending caps per room and per process, eviction of stale attempts,
file-descriptor reserve (collab.peer.budget)."""

from __future__ import annotations

import time

from collab.peer.budget import ConnectionBudget, fd_usage


class FakeRemote:
    def __init__(self, age: float) -> None:
        self.pending_since = time.monotonic() - age
        self.reason: str | None = None

    @property
    def pending(self) -> bool:
        return self.reason is None

    def close(self, reason: str) -> None:
        self.reason = reason


def tracked(budget: ConnectionBudget, *ages: float) -> list[FakeRemote]:
    remotes = [FakeRemote(age) for age in ages]
    for remote in remotes:
        budget.track(remote)
    return remotes


def test_room_cap_evicts_the_oldest_stale_attempt() -> None:
    budget = ConnectionBudget(100, min_age=1.0, fd_usage=lambda: None)
    room = tracked(budget, 5.0, 3.0, 0.1)
    assert budget.admit(list(room), room_cap=3) is None
    assert [r.reason for r in room] == ["evicted", None, None]
    assert budget.evicted == 1 and budget.pending_count == 2


def test_fresh_attempts_are_never_evicted_the_newcomer_waits() -> None:
    budget = ConnectionBudget(100, min_age=1.0, fd_usage=lambda: None)
    room = tracked(budget, 0.2, 0.1)
    assert budget.admit(list(room), room_cap=2) == "room-pending"
    assert all(r.reason is None for r in room)
    assert budget.refused["room-pending"] == 1


def test_process_cap_spans_rooms() -> None:
    budget = ConnectionBudget(3, min_age=1.0, fd_usage=lambda: None)
    other_room = tracked(budget, 9.0, 0.1, 0.1)
    assert budget.admit([], room_cap=16) is None  # evicts the stale one in the other room
    assert other_room[0].reason == "evicted"
    tracked(budget, 0.1)
    assert budget.admit([], room_cap=16) == "pending"


def test_fd_reserve_refuses_when_descriptors_run_low() -> None:
    usage = [(100, 1000)]
    budget = ConnectionBudget(100, fd_reserve=0.25, min_age=1.0, fd_usage=lambda: usage[0])
    assert budget.admit([], room_cap=16) is None
    usage[0] = (800, 1000)
    budget._fd_checked = -1.0  # the check is cached for 250 ms
    assert budget.admit([], room_cap=16) == "fds"
    stale = tracked(budget, 5.0)
    budget._fd_checked = -1.0
    assert budget.admit([], room_cap=16) is None  # a stale attempt gives its sockets back
    assert stale[0].reason == "evicted"


def test_forgotten_remotes_do_not_count() -> None:
    budget = ConnectionBudget(2, fd_usage=lambda: None)
    a, b = tracked(budget, 0.1, 0.1)
    budget.forget(a)
    assert budget.pending_count == 1
    b.close("open")  # opened: not pending any more
    assert budget.pending_count == 0


def test_fd_usage_reads_this_process() -> None:
    usage = fd_usage()
    assert usage is None or 0 < usage[0] <= usage[1]
