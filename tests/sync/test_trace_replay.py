"""Replay the real concurrent trace clownschool through two collab peers over faulty links.

Each trace agent is a "typist" (a plain Document with its own client id) that produces the
update of every txn it authored, forked at exactly the txn's parents (the typist catches up
by applying the recorded updates of the txns its parents include, nothing more). Every such
update is then typed into one of two collab peers (agent 0 -> peer A, the others -> peer B)
and the sync engine carries it to the other peer over a link that duplicates messages, holds
them for a random while (so the peers really edit concurrently), partitions and breaks (then
reconnects). At the end both peers must hold exactly ``endContent``.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup

from collab.document import Document, delete_text, insert_text
from collab.memnet import Faults, Link, MemoryNetwork, wait_idle
from collab.protocol import decode_state_vector
from collab.sync import SyncRoom

TRACE = Path(__file__).resolve().parents[3] / "shared" / "data" / "clownschool.json.gz"

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class Typists:
    """Per-agent documents that can be forked at any txn's parents."""

    def __init__(self, trace: dict[str, Any]) -> None:
        self.txns: list[dict[str, Any]] = trace["txns"]
        self.ascii = all(
            isinstance(p[2], str) and p[2].isascii() for t in self.txns for p in t["patches"]
        )
        n = trace["numAgents"]
        self.docs = [Document(client_id=1000 + a, roots={"text": "text"}) for a in range(n)]
        self.have = [[0] * n for _ in range(n)]  # have[a][b]: txns of agent b applied to a's doc
        self.by_agent: list[list[int]] = [[] for _ in range(n)]  # txn indexes of each agent
        self.updates: list[bytes] = []  # update of each txn
        self.version: list[list[int]] = []  # per txn: txns of each agent it includes

    def run(self, i: int) -> tuple[int, bytes]:
        """Author txn ``i``; returns (agent, update)."""
        txn = self.txns[i]
        agent = txn["agent"]
        n = len(self.docs)
        target = [0] * n
        for p in txn["parents"]:
            target = [max(x, y) for x, y in zip(target, self.version[p], strict=True)]
        doc, have = self.docs[agent], self.have[agent]
        missing: list[int] = []
        for b in range(n):
            if have[b] > target[b]:
                raise AssertionError(f"txn {i}: agent {agent} is ahead of its parents")
            missing.extend(self.by_agent[b][have[b] : target[b]])
            have[b] = target[b]
        for j in sorted(missing):  # txn order is a causal order
            doc.apply_update(self.updates[j], origin="fork")
        if have[agent] != len(self.by_agent[agent]):
            raise AssertionError(f"txn {i}: agent {agent} forks from an old own state")
        produced: list[bytes] = []
        handle = doc.observe(lambda u, o: produced.append(u) if o == "typing" else None)
        with doc.transaction(origin="typing"):
            text = doc.text("text")
            for pos, deleted, inserted in txn["patches"]:
                if self.ascii:
                    if deleted:
                        del text[pos : pos + deleted]
                    if inserted:
                        text.insert(pos, inserted)
                else:
                    if deleted:
                        delete_text(text, pos, deleted)
                    if inserted:
                        insert_text(text, pos, inserted)
        doc.unobserve(handle)
        update = produced[0] if produced else b"\x00\x00"
        self.by_agent[agent].append(i)
        self.updates.append(update)
        have[agent] += 1
        target[agent] = have[agent]
        self.version.append(target)
        return agent, update


@pytest.fixture(scope="module")
def trace() -> dict[str, Any]:
    if not TRACE.exists():
        pytest.skip(f"{TRACE} not present")
    with gzip.open(TRACE) as f:
        data: dict[str, Any] = json.load(f)
    return data


def serve_link(tg: TaskGroup, a: SyncRoom, b: SyncRoom, link: Link) -> None:
    tg.start_soon(a.serve, link.ends[0], "A->B")
    tg.start_soon(b.serve, link.ends[1], "B->A")


@pytest.mark.parametrize("seed", [1])
async def test_clownschool_converges_over_faulty_links(trace: dict[str, Any], seed: int) -> None:
    rng = random.Random(seed)
    typists = Typists(trace)
    a, b = SyncRoom(Document(roots={"text": "text"})), SyncRoom(Document(roots={"text": "text"}))
    net = MemoryNetwork(seed)
    faults = Faults(duplicate=0.02, loss=0.0005, hold=True)
    reconnects = 0
    async with anyio.create_task_group() as tg:
        link = net.link(faults=faults)
        serve_link(tg, a, b, link)
        for i in range(len(trace["txns"])):
            agent, update = typists.run(i)
            host = a if agent == 0 else b
            host.document.apply_update(update, origin="typing")
            if rng.random() < 0.001:
                link.partition()
            elif link.partitioned and rng.random() < 0.02:
                link.heal()
            if rng.random() < 0.3:  # let some traffic through, at random moments
                await wait_idle()
                for _ in range(rng.randrange(1, 20)):
                    if not net.step():
                        break
            if link.closed:
                await wait_idle()
                reconnects += 1
                link = net.link(faults=faults)
                serve_link(tg, a, b, link)
        link.heal()
        for _ in range(100):
            await net.settle()
            if not link.closed:
                break
            reconnects += 1
            link = net.link(faults=faults)
            serve_link(tg, a, b, link)
        expected = trace["endContent"]
        assert str(a.document.text("text")) == expected
        assert str(b.document.text("text")) == expected
        assert decode_state_vector(a.document.state_vector()) == decode_state_vector(
            b.document.state_vector()
        )
        assert a.document.parked == b.document.parked == 0
        tg.cancel_scope.cancel()
    # the faults really happened
    assert net.dropped > 0 or reconnects > 0
