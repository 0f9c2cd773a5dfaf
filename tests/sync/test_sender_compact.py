"""``Document.compact_own``: a run of our own typing re-encoded from the document (squashed
items) is the same change as the merged updates, in a fraction of the bytes, for pycrdt and
for real Yjs; anything that is not ours alone is left as merged."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pycrdt
import pytest

from collab.document import Document
from collab.protocol import decode_state_vector
from collab.sync import SyncOptions
from tests.support.node import b64, unb64
from tests.support.paths import ROOT
from tests.sync.test_sender_pacing import converged, pair
from tests.sync.yjs_helpers import YjsWorker

TRACE = ROOT.parent / "shared" / "data" / "automerge-paper.json.gz"


def trace_edits(limit: int) -> list[tuple[int, int, str]]:
    """The automerge-paper editing trace (typing, backspacing, moving around), or a
    synthetic stand-in if the shared data is absent."""
    if TRACE.exists():
        with gzip.open(TRACE) as f:
            data = json.load(f)
        edits = [(int(p[0]), int(p[1]), str(p[2])) for t in data["txns"] for p in t["patches"]]
        return edits[:limit]
    out: list[tuple[int, int, str]] = []
    length = 0
    for i in range(limit):
        if i % 5 == 4 and length:
            out.append((length - 1, 1, ""))
            length -= 1
        else:
            pos = length if i % 17 else length // 2
            out.append((pos, 0, "abcdefghij"[i % 10]))
            length += 1
    return out


def windows(edits: list[tuple[int, int, str]], size: int) -> Iterator[tuple[Document, bytes]]:
    """Type ``edits`` one transaction each; after every ``size`` of them yield the document
    and the merge of that window's updates."""
    doc = Document(client_id=77)
    text = doc.text()
    updates: list[bytes] = []
    doc.observe(lambda update, origin: updates.append(update))
    for i, (pos, dels, ins) in enumerate(edits):
        with doc.transaction():
            if dels:
                del text[pos : pos + dels]
            if ins:
                text.insert(pos, ins)
        if i % size == size - 1 or i == len(edits) - 1:
            yield doc, pycrdt.merge_updates(*updates)
            updates.clear()


def test_compact_is_the_same_change_in_fewer_bytes() -> None:
    via_merge, via_compact = Document(), Document()
    merged_bytes = compact_bytes = 0
    for doc, merged in windows(trace_edits(6000), 250):
        compact = doc.compact_own(merged)
        merged_bytes += len(merged)
        compact_bytes += len(compact)
        assert via_merge.apply_update(merged)
        assert via_compact.apply_update(compact)
        assert str(via_compact.text()) == str(doc.text()) == str(via_merge.text())
        assert via_compact.state_vector() == doc.state_vector()
        assert via_compact.get_update(b"\x00") == via_merge.get_update(b"\x00")
    assert compact_bytes * 3 < merged_bytes


def test_real_yjs_applies_compacted_runs(yjs: YjsWorker) -> None:
    """What a stock y-webrtc browser would do with the message: Yjs integrates every
    compacted window (including characters typed and deleted inside one window)."""
    js = yjs.new_doc()
    try:
        for doc, merged in windows(trace_edits(3000), 100):
            yjs.call("apply", doc=js, update=b64(doc.compact_own(merged)), quiet=True)
            assert yjs.call("text", doc=js, name="codemirror")["text"] == str(doc.text())
        js_sv = decode_state_vector(unb64(yjs.call("stateVector", doc=js)["sv"]))
        assert js_sv == decode_state_vector(doc.state_vector())
    finally:
        yjs.call("destroy", doc=js)


def test_updates_that_are_not_ours_alone_stay_merged() -> None:
    ours, theirs = Document(client_id=1), Document(client_id=2)
    updates: list[bytes] = []
    ours.observe(lambda update, origin: updates.append(update))
    ours.text().insert(0, "ab")
    theirs.text().insert(0, "xy")
    ours.apply_update(theirs.get_update(), origin="remote")
    ours.text().insert(0, "c")
    merged = pycrdt.merge_updates(*updates)
    assert ours.compact_own(merged) is merged  # two clients' structs
    foreign = theirs.get_update()
    assert ours.compact_own(foreign) is foreign  # another client's structs only
    updates.clear()
    del ours.text()[0:2]
    (only_deletes,) = updates
    assert ours.compact_own(only_deletes) is only_deletes  # no structs: nothing to squash
    updates.clear()
    for i in range(20):
        ours.text().insert(i, "k")
    typed = pycrdt.merge_updates(*updates)
    assert len(ours.compact_own(typed)) < len(typed)
    with ours.transaction():
        ours.text().insert(0, "open")
        assert ours.compact_own(typed) is typed  # a transaction is open: its state is not final


@pytest.mark.anyio
async def test_a_typed_burst_goes_out_compacted() -> None:
    """Over the wire: the sync room sends our own burst re-encoded (the old sender sent the
    Yrs merge: ~5 bytes per keystroke); the receiver ends with the same text."""
    options = SyncOptions(burst_interval=0.02)
    async with pair(options) as (a, b, channel, _tg):
        updates: list[bytes] = []
        a.document.observe(lambda update, origin: updates.append(update))
        (connection,) = a.connections
        before = connection.stats.bytes_out
        text = a.document.text()
        for i in range(2000):
            text.insert(i, "x")
            if i % 16 == 15:
                await anyio.lowlevel.checkpoint()
                channel.ack()
        with anyio.fail_after(10):
            await converged(a, b)
        sent = connection.stats.bytes_out - before
    assert str(b.document.text()) == "x" * 2000
    assert sent * 2 < len(pycrdt.merge_updates(*updates))
