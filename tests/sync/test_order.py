"""Convergence is independent of delivery order, and duplicate delivery is idempotent.

Several replicas make concurrent edits (with partial exchanges in between, so updates depend on
each other); every update any replica produced is collected. Applying that set to a fresh
document in *any* permutation, with any duplicates, must give the same state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collab.document import Document, delete_text, insert_text
from collab.protocol import decode_state_vector

ROOTS: Any = {"t": "text", "m": "map", "a": "array"}
CHARS = st.sampled_from(["a", "b", "é", "中", "😀", "🐍"])

OP = st.one_of(
    st.tuples(st.just("ins"), st.integers(0, 99), st.text(alphabet=CHARS, min_size=1, max_size=3)),
    st.tuples(st.just("del"), st.integers(0, 99), st.integers(1, 3)),
    st.tuples(st.just("set"), st.sampled_from(["x", "y"]), st.integers(0, 9)),
    st.tuples(st.just("push"), st.integers(0, 99), st.integers(0, 9)),
    st.tuples(st.just("sync"), st.integers(0, 99), st.integers(0, 99)),
)


def run_ops(n: int, ops: list[tuple[int, tuple[Any, ...]]]) -> tuple[list[bytes], Document]:
    docs = [Document(roots=ROOTS) for _ in range(n)]
    updates: list[bytes] = []
    for doc in docs:
        doc.observe(lambda update, origin: updates.append(update))
    for who, op in ops:
        doc = docs[who % n]
        kind = op[0]
        with doc.transaction():
            if kind == "ins":
                text = doc.text("t")
                insert_text(text, op[1] % (len(str(text)) + 1), op[2])
            elif kind == "del":
                s = str(doc.text("t"))
                if s:
                    i = op[1] % len(s)
                    delete_text(doc.text("t"), i, min(op[2], len(s) - i))
            elif kind == "set":
                doc.map("m")[op[1]] = float(op[2])
            elif kind == "push":
                arr = doc.array("a")
                arr.insert(op[1] % (len(arr) + 1), float(op[2]))
        if kind == "sync":  # a partial exchange: one replica catches up with another
            src, dst = docs[op[1] % n], docs[op[2] % n]
            dst.apply_update(src.get_update(dst.state_vector()), origin="sync")
    reference = Document(roots=ROOTS)
    for doc in docs:
        reference.apply_update(doc.get_update())
    return updates, reference


def state_of(doc: Document) -> tuple[Any, Any, dict[int, int]]:
    return doc.to_json(), doc.text("t").diff(), decode_state_vector(doc.state_vector())


@given(
    n=st.integers(2, 4),
    ops=st.lists(st.tuples(st.integers(0, 3), OP), min_size=1, max_size=25),
    data=st.data(),
)
def test_any_delivery_order_converges(n: int, ops: list[Any], data: st.DataObject) -> None:
    updates, reference = run_ops(n, ops)
    order = data.draw(st.permutations(updates), label="order")
    doc = Document(roots=ROOTS)
    for update in order:
        doc.apply_update(update)
    assert state_of(doc) == state_of(reference)


@given(
    n=st.integers(2, 4),
    ops=st.lists(st.tuples(st.integers(0, 3), OP), min_size=1, max_size=25),
    data=st.data(),
)
def test_duplicate_delivery_is_idempotent(n: int, ops: list[Any], data: st.DataObject) -> None:
    updates, reference = run_ops(n, ops)
    if not updates:
        return
    extra = data.draw(st.lists(st.sampled_from(updates), max_size=len(updates)), label="dups")
    order = data.draw(st.permutations(updates + extra), label="order")
    doc = Document(roots=ROOTS)
    calls: list[bytes] = []
    doc.observe(lambda update, origin: calls.append(update))
    for update in order:
        doc.apply_update(update)
    assert state_of(doc) == state_of(reference)
    # replaying everything again changes nothing and fires no update
    before = len(calls)
    for update in updates:
        doc.apply_update(update)
    assert len(calls) == before
    assert state_of(doc) == state_of(reference)
