"""Yjs snapshots (delete set + state vector) against real Yjs: what the page posts to
``/api/rooms/{room}/saved`` is decoded the same way, pycrdt's snapshot of the same document is
the same snapshot, and containment answers like a human would."""

from __future__ import annotations

import pytest

from collab.document import Document
from collab.errors import ProtocolError
from collab.snapshot import snapshot_covers, snapshot_of
from collab.yupdate import decode_snapshot
from tests.protocol.wire_helpers import SplitCheckWorker
from tests.support.node import b64, unb64


def _canonical(snapshot: bytes) -> tuple[dict[int, list[tuple[int, int]]], dict[int, int]]:
    delete_set, sv = decode_snapshot(snapshot)
    merged: dict[int, list[tuple[int, int]]] = {}
    for client, ranges in delete_set:
        merged.setdefault(client, []).extend(ranges)
    return {c: sorted(r) for c, r in merged.items()}, sv


@pytest.mark.parametrize(("scenario", "size"), [("rich", 40), ("trace", 2000), ("typing", 300)])
def test_our_snapshot_equals_yjs_snapshot(yjs: SplitCheckWorker, scenario: str, size: int) -> None:
    built = yjs.call(op="build", scenario=scenario, seed=3, size=size)
    js = unb64(yjs.call(op="snapshot", updates=[built["update"]])["snapshot"])
    doc = Document()
    doc.apply_update(unb64(built["update"]))
    ours = snapshot_of(doc)
    assert _canonical(ours) == _canonical(js)
    assert snapshot_covers(ours, js) and snapshot_covers(js, ours)


def test_containment_sees_deletions_the_state_vector_does_not(yjs: SplitCheckWorker) -> None:
    archive = Document(client_id=1)
    archive.text().insert(0, "hello world")
    page = Document(client_id=2)
    page.apply_update(archive.get_update())
    stored = snapshot_of(archive)
    assert snapshot_covers(stored, snapshot_of(page))
    del page.text()[0:6]  # delete-only: the state vector does not move
    assert page.state_vector() == archive.state_vector()
    js_page = unb64(yjs.call(op="snapshot", updates=[b64(page.get_update())])["snapshot"])
    assert not snapshot_covers(stored, js_page)
    archive.apply_update(page.get_update(archive.state_vector()))
    assert snapshot_covers(snapshot_of(archive), js_page)
    # a page that has seen less is covered; one that has seen more is not
    page.text().insert(0, "!")
    assert not snapshot_covers(snapshot_of(archive), snapshot_of(page))
    assert snapshot_covers(snapshot_of(page), snapshot_of(archive))


@pytest.mark.parametrize(
    "bad", [b"", b"\x01", b"\x00\x05\x01", b"\x00\x00\x00", b"\xff" * 12, b"\x01\x07\x01\x00"]
)
def test_malformed_snapshots_are_refused(bad: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        snapshot_covers(b"\x00\x00", bad)
    assert err.value.code == "bad-snapshot"
