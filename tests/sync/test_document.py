"""Tests for collab.document: strict updates, origins, batching, code-point text helpers."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab.document import (
    Document,
    delete_text,
    format_text,
    insert_text,
    random_client_id,
    scan_update,
)
from collab.errors import ProtocolError
from collab.protocol import decode_state_vector


def test_client_id_is_31_bit() -> None:
    ids = {random_client_id() for _ in range(200)}
    assert all(0 < i < 2**31 for i in ids)
    assert len(ids) > 190
    doc = Document()
    assert 0 < doc.client_id < 2**31
    assert Document(client_id=42).client_id == 42


def test_apply_update_reports_origin_and_skips_duplicates() -> None:
    a, b = Document(), Document()
    a.text().insert(0, "hello")
    seen: list[tuple[bytes, Any]] = []
    b.observe(lambda update, origin: seen.append((update, origin)))
    origin = object()
    b.apply_update(a.get_update(), origin=origin)
    b.apply_update(a.get_update(), origin="again")  # duplicate: no observer call
    assert [o for _, o in seen] == [origin]
    assert str(b.text()) == "hello"
    assert decode_state_vector(b.state_vector()) == {a.client_id: 5}


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x05", b"\x01\x01\xff\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"],
)
def test_bad_update_is_protocol_error(garbage: bytes) -> None:
    doc = Document()
    with pytest.raises(ProtocolError) as info:
        doc.apply_update(garbage)
    assert info.value.code == "bad-update"
    assert doc.to_json() == {}


def test_local_transaction_is_one_update_with_origin() -> None:
    doc = Document(roots={"codemirror": "text", "m": "map"})
    seen: list[Any] = []
    handle = doc.observe(lambda update, origin: seen.append(origin))
    with doc.transaction(origin="typing"):
        doc.text().insert(0, "ab")
        doc.map("m")["k"] = [1.0, {"x": "é"}]
        with doc.transaction():  # nested joins the outer one
            doc.text().insert(2, "c")
    doc.text().insert(0, "!")  # outside a transaction: origin None
    doc.unobserve(handle)
    doc.text().insert(0, "?")
    assert seen == ["typing", None]
    assert doc.to_json() == {"codemirror": "?!abc", "m": {"k": [1.0, {"x": "é"}]}}


def test_root_kind_conflict_is_misuse() -> None:
    doc = Document(roots={"x": "text"})
    with pytest.raises(ValueError, match="is a text"):
        doc.map("x")


def test_pycrdt_counts_bytes_helpers_count_code_points() -> None:
    doc = Document()
    text = doc.text()
    insert_text(text, 0, "a😀bé")
    insert_text(text, 2, "X")
    assert str(text) == "a😀Xbé"
    delete_text(text, 1, 2)
    assert str(text) == "abé"
    format_text(text, 1, 2, {"bold": True})
    assert text.diff() == [("a", None), ("bé", {"bold": True})]
    with pytest.raises(IndexError):
        insert_text(text, 4, "!")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 50), st.text(alphabet="ab😀é中𝄞", min_size=1, max_size=3), st.booleans()
        ),
        max_size=20,
    )
)
def test_code_point_helpers_match_python_strings(ops: list[tuple[int, str, bool]]) -> None:
    doc = Document()
    text = doc.text()
    model = ""
    for pos, value, is_insert in ops:
        if is_insert or not model:
            i = pos % (len(model) + 1)
            insert_text(text, i, value)
            model = model[:i] + value + model[i:]
        else:
            i = pos % len(model)
            n = min(len(value), len(model) - i)
            delete_text(text, i, n)
            model = model[:i] + model[i + n :]
        assert str(text) == model


def test_trailing_garbage_is_rejected() -> None:
    a = Document()
    a.text().insert(0, "hello")
    update = a.get_update()
    doc = Document()
    with pytest.raises(ProtocolError) as info:
        doc.apply_update(update + b"\x00junk")
    assert info.value.code == "bad-update"
    assert str(doc.text()) == ""
    doc.apply_update(update)
    assert str(doc.text()) == "hello"


def one_client_updates() -> list[bytes]:
    """Updates 0..3 of one client: three text inserts, then a map write."""
    doc = pycrdt.Doc(client_id=7)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=pycrdt.Text)
    for _ in range(3):
        text.insert(0, "a")
    doc.get("m", type=pycrdt.Map)["x"] = 0.0
    return updates


def test_pycrdt_still_loses_pending_updates() -> None:
    """The upstream bug Document works around (found by test_order.py).

    Applying one client's updates in the order 0, 2, 3, 1 leaves 2 and 3 pending forever in
    pycrdt 0.14.13 / yrs 0.28. If this starts failing, pycrdt fixed it and the parking in
    Document.apply_update can go.
    """
    updates = one_client_updates()
    raw = pycrdt.Doc()
    for i in (0, 2, 3, 1):
        raw.apply_update(updates[i])
    assert decode_state_vector(raw.get_state()) == {7: 2}


def test_document_integrates_parked_updates() -> None:
    updates = one_client_updates()
    doc = Document(roots={"t": "text", "m": "map"})
    for i in (0, 2, 3, 1):
        doc.apply_update(updates[i])
    assert decode_state_vector(doc.state_vector()) == {7: 4}
    assert doc.to_json() == {"m": {"x": 0.0}, "t": "aaa"}
    assert doc.parked == 0


def test_scan_sees_the_hole_a_skip_leaves_in_a_merged_update() -> None:
    """Found by the convergence machine: a merged update (client B: an item at clock 0, a Skip
    over clocks 1-2, an item at clock 3) cannot integrate past the hole, so it needs B's own
    clocks up to 3 — not only its other-client origin. Without that, the parked update was
    judged 'stuck with all dependencies present' and dropped."""
    update = bytes.fromhex("0103baa9fdd207000801056172726179017e0a0244e787d8e00600015a00")
    scan = scan_update(update)
    assert scan.ends == {2053067962: 4}
    assert scan.needs == {1813382119: 1, 2053067962: 3}
