"""The replica's AuthorRecorder names a client id only from that client's own awareness state:
an update relayed by another peer (y-webrtc floods) is never credited to the peer whose
connection carried it, and the name arrives as soon as the writer's awareness does."""

from __future__ import annotations

import pycrdt
import pytest

from collab.awareness import Awareness, AwarenessEntry
from collab.document import Document
from collab.memnet import channel_pair
from collab.replica import ReplicaStats
from collab.replica._authors import AuthorRecorder
from collab.storage.memory import MemoryStore
from collab.sync import Connection, SyncRoom

pytestmark = pytest.mark.anyio


def _update(client: int, text: str) -> bytes:
    doc = pycrdt.Doc(client_id=client)
    doc["codemirror"] = pycrdt.Text(text)
    return doc.get_update()


async def test_a_relayed_update_is_not_credited_to_the_relaying_peer() -> None:
    async with MemoryStore() as store:
        document = Document(client_id=99)
        awareness = Awareness(99)
        recorder = AuthorRecorder("r", store, document, awareness, ReplicaStats())
        ada, grace = 11, 22
        # Ada's connection is the only one: her awareness is known, Grace's not yet
        awareness.apply([AwarenessEntry(ada, 1, {"user": {"name": "Ada", "color": "#a00"}})], "ada")
        via_ada = Connection(SyncRoom(document, awareness), channel_pair()[0], "ada")
        via_ada.remote_clients.add(ada)  # Ada speaks on it, and relays Grace's edit
        relayed = _update(grace, "grace typed this")
        document.apply_update(relayed, origin=via_ada)
        recorder.on_update(relayed, via_ada)
        await recorder.flush()
        assert {a.client: a.name for a in await store.list_authors("r")} == {grace: ""}
        # Grace's own awareness arrives (through Ada too): her row gets her name
        awareness.apply(
            [AwarenessEntry(grace, 1, {"user": {"name": "Grace", "color": "#0a0"}})], "x"
        )
        await recorder.flush()
        assert {a.client: a.name for a in await store.list_authors("r")} == {grace: "Grace"}
