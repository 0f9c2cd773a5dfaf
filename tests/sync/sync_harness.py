"""A mesh of in-memory collab peers for convergence tests (used by the Hypothesis machines).

Everything here runs inside one event loop (the tests drive it through an anyio blocking
portal). Peers are :class:`collab.memnet.MemoryPeer` s, edges are links of one seeded
:class:`collab.memnet.MemoryNetwork`; every link holds its messages until the network
delivers them, so delivery order across connections is chosen by the seed and the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from collab.document import RootKind
from collab.memnet import Faults, Link, MemoryNetwork, MemoryPeer, wait_idle
from collab.protocol import decode_state_vector
from collab.sync import SyncOptions

Topology = Literal["mesh", "star", "chain"]

ROOTS: dict[str, RootKind] = {"text": "text", "map": "map", "array": "array"}


def edges_for(n: int, topology: Topology) -> list[tuple[int, int]]:
    """The undirected edges of a topology over peers ``0..n-1``."""
    if topology == "mesh":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    if topology == "star":
        return [(0, j) for j in range(1, n)]
    return [(i, i + 1) for i in range(n - 1)]


@dataclass
class Snapshot:
    """What must be identical on every replica after quiescence."""

    json: dict[str, Any]
    text_diff: list[Any]
    state_vector: dict[int, int]


def snapshot(peer: MemoryPeer) -> Snapshot:
    """Capture a peer's comparable state."""
    doc = peer.room.document
    diff = [(chunk, attrs) for chunk, attrs in doc.text("text").diff()]
    return Snapshot(doc.to_json(), diff, decode_state_vector(doc.state_vector()))


class Mesh:
    """``n`` peers connected along ``edges`` over one network (see module docstring)."""

    def __init__(
        self,
        n: int,
        topology: Topology,
        *,
        seed: int,
        faults: Faults,
        options: SyncOptions | None = None,
    ) -> None:
        self.network = MemoryNetwork(seed)
        self.faults = faults
        self.edges = edges_for(n, topology)
        self.peers = [
            MemoryPeer(
                f"p{i}", roots=dict(ROOTS), options=options or SyncOptions(), seed=seed * 8 + i
            )
            for i in range(n)
        ]
        self.links: dict[tuple[int, int], Link] = {}
        self._tg: TaskGroup | None = None
        self._done = anyio.Event()
        self._stopped = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Own the task group serving every connection until :meth:`stop`."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await self._done.wait()
                tg.cancel_scope.cancel()
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        """Cancel every connection and wait for the task group to finish."""
        self._done.set()
        await self._stopped.wait()

    def connect_missing(self) -> None:
        """Open a fresh link on every edge whose link is gone (both peers alive)."""
        if self._tg is None:
            raise RuntimeError("call run() first")
        for i, j in self.edges:
            link = self.links.get((i, j))
            if link is not None and not link.closed:
                continue
            a, b = self.peers[i], self.peers[j]
            if a.crashed or b.crashed:
                continue
            link = self.network.link(faults=self.faults, name=f"{i}-{j}-{self.network.pending()}")
            self.links[(i, j)] = link
            left, right = link.ends
            self._tg.start_soon(a.room.serve, left, f"p{i}->p{j}")
            self._tg.start_soon(b.room.serve, right, f"p{j}->p{i}")

    async def deliver(self, count: int) -> None:
        """Deliver up to ``count`` held messages (random links), letting rooms react."""
        for _ in range(count):
            await wait_idle()
            if not self.network.step():
                break
        await wait_idle()

    async def heal_and_settle(self) -> None:
        """Heal partitions, restart crashed peers, reconnect, then deliver everything."""
        for link in self.network.links:
            link.heal()
        for peer in self.peers:
            if peer.crashed:
                peer.restart()
        await wait_idle()
        self.connect_missing()
        await self.network.settle()
        # a link may have broken (loss) while settling: repeat until stable
        for _ in range(100):
            if all(
                (link := self.links.get(edge)) is not None and not link.closed
                for edge in self.edges
            ):
                return
            self.connect_missing()
            await self.network.settle()
        raise RuntimeError("links keep breaking")

    def divergence(self) -> str | None:
        """``None`` if every replica is identical, else a description of the difference."""
        snaps = [snapshot(peer) for peer in self.peers]
        first = snaps[0]
        for i, snap in enumerate(snaps[1:], start=1):
            if snap.json != first.json:
                return f"json differs: p0={first.json!r} p{i}={snap.json!r}"
            if snap.text_diff != first.text_diff:
                return f"formatting differs: p0={first.text_diff!r} p{i}={snap.text_diff!r}"
            if snap.state_vector != first.state_vector:
                return f"state vectors differ: p0={first.state_vector} p{i}={snap.state_vector}"
        for p in self.peers:
            aw = p.room.awareness
            cid = p.room.document.client_id
            # y-protocols ignores clock-0 entries of unknown clients: {} at clock 0 stays local
            own = aw.get_local_state() if aw.meta[cid].clock > 0 else None
            for q in self.peers:
                if q is not p and q.room.awareness.states.get(cid) != own:
                    return (
                        f"awareness: {q.name} sees {q.room.awareness.states.get(cid)!r} "
                        f"for {p.name}, which has {own!r}"
                    )
        return None
