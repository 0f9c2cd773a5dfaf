"""Hypothesis stateful convergence tests: 2–6 peers, any topology, random edits and faults.

The machine drives a :class:`sync_harness.Mesh` living in an anyio blocking portal (one event
loop per example). Rules make concurrent edits (Text insert/delete/format with ASCII,
non-ASCII and astral-plane characters; Map set/delete with nested values; Array
insert/delete), deliver some in-flight messages (random interleaving across connections),
partition/heal links, break links, crash and restart peers, and change awareness states.
``converge`` heals everything, waits for quiescence and requires identical replicas; the
same check runs at teardown.

``BrokenRelayMachine`` runs the same rules against a room that does not relay remote updates
to its other connections; the harness must find the divergence.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from collab.document import delete_text, format_text, insert_text
from collab.memnet import Faults
from collab.sync import SyncOptions
from tests.sync.sync_harness import Mesh, Topology

ALPHABET = st.sampled_from(["a", "b", "Z", " ", "\n", "é", "ß", "中", "😀", "🐍", "𝄞"])
TEXT = st.text(alphabet=ALPHABET, min_size=1, max_size=6)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000).map(float),
    st.text(alphabet=ALPHABET, max_size=4),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "v", "ü"]), inner, max_size=3),
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(["a", "b", "c", "ключ", "🔑"])
ATTRS = st.sampled_from([{"bold": True}, {"italic": True}, {"bold": None}, {"color": "red"}])


class ConvergenceMachine(RuleBasedStateMachine):
    """Random edits + faults on a mesh; replicas must converge after healing."""

    options = SyncOptions()

    def __init__(self) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        self.portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        self.mesh: Mesh | None = None

    # ------------------------------------------------------------------ setup

    @initialize(
        n=st.integers(2, 6),
        topology=st.sampled_from(["mesh", "star", "chain"]),
        seed=st.integers(0, 2**32 - 1),
        loss=st.sampled_from([0.0, 0.0, 0.01, 0.05]),
        duplicate=st.sampled_from([0.0, 0.1, 0.3]),
    )
    def setup(self, n: int, topology: Topology, seed: int, loss: float, duplicate: float) -> None:
        faults = Faults(loss=loss, duplicate=duplicate, hold=True)
        self.mesh = self.portal.call(
            lambda: Mesh(n, topology, seed=seed, faults=faults, options=self.options)
        )
        self.portal.start_task_soon(self._run_mesh)
        self.portal.call(self._started)

    async def _run_mesh(self) -> None:
        assert self.mesh is not None
        import anyio

        async with anyio.create_task_group() as tg:
            await tg.start(self.mesh.run)

    async def _started(self) -> None:
        from collab.memnet import wait_idle

        assert self.mesh is not None
        await wait_idle()
        self.mesh.connect_missing()

    @property
    def m(self) -> Mesh:
        assert self.mesh is not None
        return self.mesh

    def _peer_index(self, data: int) -> int:
        return data % len(self.m.peers)

    def _alive(self, i: int) -> bool:
        return not self.m.peers[i].crashed

    def _edit(self, i: int, fn: Any) -> None:
        peer = self.m.peers[i]

        def run() -> None:
            if peer.crashed:
                return
            doc = peer.room.document
            with doc.transaction():
                fn(doc)

        self.portal.call(run)

    # ------------------------------------------------------------------ edits

    @rule(peer=st.integers(0, 5), pos=st.integers(0, 10_000), value=TEXT)
    def insert_text(self, peer: int, pos: int, value: str) -> None:
        def fn(doc: Any) -> None:
            text = doc.text("text")
            s = str(text)
            insert_text(text, pos % (len(s) + 1), value)

        self._edit(self._peer_index(peer), fn)

    @rule(peer=st.integers(0, 5), pos=st.integers(0, 10_000), length=st.integers(1, 4))
    def delete_text(self, peer: int, pos: int, length: int) -> None:
        def fn(doc: Any) -> None:
            text = doc.text("text")
            s = str(text)
            if s:
                start = pos % len(s)
                delete_text(text, start, min(length, len(s) - start))

        self._edit(self._peer_index(peer), fn)

    @rule(peer=st.integers(0, 5), pos=st.integers(0, 10_000), length=st.integers(1, 5), attrs=ATTRS)
    def format_text(self, peer: int, pos: int, length: int, attrs: dict[str, Any]) -> None:
        def fn(doc: Any) -> None:
            text = doc.text("text")
            s = str(text)
            if s:
                start = pos % len(s)
                format_text(text, start, min(length, len(s) - start), attrs)

        self._edit(self._peer_index(peer), fn)

    @rule(peer=st.integers(0, 5), key=KEYS, value=JSON_VALUE)
    def map_set(self, peer: int, key: str, value: Any) -> None:
        self._edit(self._peer_index(peer), lambda doc: doc.map("map").__setitem__(key, value))

    @rule(peer=st.integers(0, 5), key=KEYS)
    def map_delete(self, peer: int, key: str) -> None:
        def fn(doc: Any) -> None:
            m = doc.map("map")
            if key in m:
                del m[key]

        self._edit(self._peer_index(peer), fn)

    @rule(peer=st.integers(0, 5), pos=st.integers(0, 10_000), value=JSON_VALUE)
    def array_insert(self, peer: int, pos: int, value: Any) -> None:
        def fn(doc: Any) -> None:
            a = doc.array("array")
            a.insert(pos % (len(a) + 1), value)

        self._edit(self._peer_index(peer), fn)

    @rule(peer=st.integers(0, 5), pos=st.integers(0, 10_000))
    def array_delete(self, peer: int, pos: int) -> None:
        def fn(doc: Any) -> None:
            a = doc.array("array")
            if len(a):
                del a[pos % len(a)]

        self._edit(self._peer_index(peer), fn)

    @rule(peer=st.integers(0, 5), name=st.text(alphabet=ALPHABET, max_size=3))
    def set_awareness(self, peer: int, name: str) -> None:
        p = self.m.peers[self._peer_index(peer)]
        self.portal.call(
            lambda: None if p.crashed else p.room.awareness.set_local_state({"name": name})
        )

    @rule(src=st.integers(0, 5), dst=st.integers(0, 5), data=st.data())
    def side_channel(self, src: int, dst: int, data: st.DataObject) -> None:
        """Another provider (y-indexeddb, a second transport) hands ``dst`` some of ``src``'s
        updates out of order: they may stay pending until their dependencies arrive."""
        source = self.m.peers[self._peer_index(src)]
        target = self.m.peers[self._peer_index(dst)]
        if source is target or target.crashed or not source.log:
            return
        recent = source.log[-6:]
        indexes = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
        picked = [recent[i % len(recent)] for i in indexes]

        def run() -> None:
            for update in picked:
                target.room.document.apply_update(update, origin="provider")

        self.portal.call(run)

    # ------------------------------------------------------------------ network

    @rule(count=st.integers(1, 30))
    def deliver(self, count: int) -> None:
        self.portal.call(self.m.deliver, count)

    @rule(edge=st.integers(0, 100))
    def partition(self, edge: int) -> None:
        edges = self.m.edges
        link = self.m.links.get(edges[edge % len(edges)])
        if link is not None:
            self.portal.call(link.partition)

    @rule(edge=st.integers(0, 100))
    def heal(self, edge: int) -> None:
        edges = self.m.edges
        link = self.m.links.get(edges[edge % len(edges)])
        if link is not None:
            self.portal.call(link.heal)

    @rule(edge=st.integers(0, 100))
    def break_link(self, edge: int) -> None:
        edges = self.m.edges
        link = self.m.links.get(edges[edge % len(edges)])
        if link is not None:
            self.portal.call(link.break_)

    @rule()
    def reconnect(self) -> None:
        async def run() -> None:
            from collab.memnet import wait_idle

            await wait_idle()
            self.m.connect_missing()

        self.portal.call(run)

    @rule(peer=st.integers(0, 5))
    def crash(self, peer: int) -> None:
        p = self.m.peers[self._peer_index(peer)]
        if not p.crashed:
            self.portal.call(p.crash)

    @rule(peer=st.integers(0, 5))
    def restart(self, peer: int) -> None:
        p = self.m.peers[self._peer_index(peer)]
        if p.crashed:
            self.portal.call(p.restart)

    # ------------------------------------------------------------------ checks

    @precondition(lambda self: self.mesh is not None)
    @rule()
    def converge(self) -> None:
        self.portal.call(self.m.heal_and_settle)
        problem = self.portal.call(self.m.divergence)
        assert problem is None, problem

    @invariant()
    def no_callback_errors(self) -> None:
        if self.mesh is not None:
            for peer in self.m.peers:
                assert peer.room.callback_errors == 0
                doc = peer.room.document
                assert doc.stuck == 0 and doc.parked_dropped == 0

    def teardown(self) -> None:
        try:
            if self.mesh is not None:
                self.converge()
        finally:
            try:
                if self.mesh is not None:
                    self.portal.call(self.m.stop)
            finally:
                self._stack.close()


ConvergenceMachine.TestCase.settings = settings(
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=settings.default.max_examples,
)
TestConvergence = ConvergenceMachine.TestCase


class EchoConvergenceMachine(ConvergenceMachine):
    """The same machine with y-webrtc's echo of updates to their origin connection."""

    options = SyncOptions(echo_to_origin=True)


EchoConvergenceMachine.TestCase.settings = settings(
    ConvergenceMachine.TestCase.settings, max_examples=max(settings.default.max_examples // 4, 10)
)
TestEchoConvergence = EchoConvergenceMachine.TestCase


class BrokenRelayMachine(ConvergenceMachine):
    """Same machine over rooms that forget to relay remote updates (an injected bug)."""

    options = SyncOptions(relay=False)


def test_harness_catches_missing_relay() -> None:
    """A sync without relaying diverges on a chain/star; the harness must notice."""
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            BrokenRelayMachine,
            settings=settings(
                max_examples=300,
                stateful_step_count=25,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[p for p in settings.default.phases if p.name != "shrink"],
            ),
        )
