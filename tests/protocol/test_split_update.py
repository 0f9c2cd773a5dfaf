"""split_update against REAL Yjs (Node worker) and pycrdt: every chunk is a valid V1 update.

The documents are built by stock Yjs (keystrokes, a 5 MB paste, the automerge-paper trace,
rich docs with formatting/embeds/maps/arrays/XML/nested types/several clients) and by pycrdt;
the chunks are applied in order and shuffled, and the result must equal the original.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from collab.errors import ProtocolError
from collab.protocol import (
    SyncStep2,
    SyncUpdate,
    decode_message,
    decode_state_vector,
)
from collab.update_split import split_update, split_update_messages, step2_messages
from collab.yupdate import REF_SKIP, decode_update, update_state_vector
from tests.protocol.wire_helpers import SplitCheckWorker
from tests.support.node import b64, unb64
from tests.support.paths import ROOT

# (scenario, size parameter, max_bytes values)
SCENARIOS: list[tuple[str, int, tuple[int, ...]]] = [
    ("keystrokes", 1500, (120, 1024, 16384)),
    ("rich", 50, (200, 1024, 16384)),
    ("paste", 200_000, (100, 1024, 16384)),
    ("paste", 5_000_000, (16384, 262144)),
    ("trace", 0, (1024, 16384)),
]


MAX_OUT_OF_ORDER_CHUNKS = 150


def _build(yjs: SplitCheckWorker, scenario: str, size: int, seed: int = 1) -> dict[str, Any]:
    built = yjs.call(op="build", scenario=scenario, seed=seed, size=size)
    built["update_bytes"] = unb64(built["update"])
    return built


def _apply(yjs: SplitCheckWorker, chunks: list[bytes], kinds: dict[str, str]) -> dict[str, Any]:
    return yjs.call(op="apply", updates=[b64(c) for c in chunks], roots=kinds)


def _assert_same(result: dict[str, Any], built: dict[str, Any]) -> None:
    assert not result["pending"]
    assert result["roots"] == built["roots"]
    assert decode_state_vector(unb64(result["sv"])) == decode_state_vector(unb64(built["sv"]))


@pytest.mark.parametrize(
    ("scenario", "size", "limits"), SCENARIOS, ids=[f"{s[0]}-{s[1]}" for s in SCENARIOS]
)
def test_yjs_docs_split_and_reassemble_in_yjs(
    yjs: SplitCheckWorker, scenario: str, size: int, limits: tuple[int, ...]
) -> None:
    built = _build(yjs, scenario, size)
    update = built["update_bytes"]
    for max_bytes in limits:
        chunks = split_update(update, max_bytes)
        assert all(len(c) <= max_bytes for c in chunks)
        if len(update) > max_bytes:
            assert len(chunks) > 1
        # in order: causal order means Yjs never has to park pending structs
        in_order = _apply(yjs, chunks, built["kinds"])
        _assert_same(in_order, built)
        assert not any(in_order["pendingEach"]), "chunks are not in causal order"
        # shuffled and reversed: Yjs keeps pending structs/deletions until they can apply.
        # (Yjs retries its whole pending set on every update, which is quadratic: keep the
        # out-of-order runs to a moderate number of chunks and bytes.)
        if len(chunks) <= MAX_OUT_OF_ORDER_CHUNKS and len(update) <= 1_000_000:
            shuffled = list(chunks)
            random.Random(max_bytes).shuffle(shuffled)
            _assert_same(_apply(yjs, shuffled, built["kinds"]), built)
            _assert_same(_apply(yjs, chunks[::-1], built["kinds"]), built)


def test_big_paste_with_astral_chars_is_cut_between_code_points(yjs: SplitCheckWorker) -> None:
    built = _build(yjs, "paste", 20_000, seed=7)
    text = built["roots"]["t"]["text"]
    assert "\ufffd" not in text and any(ord(ch) > 0xFFFF for ch in text)
    for max_bytes in (64, 97, 300):  # odd sizes put cut points everywhere
        chunks = split_update(built["update_bytes"], max_bytes)
        assert all(len(c) <= max_bytes for c in chunks)
        result = _apply(yjs, chunks, built["kinds"])
        assert result["roots"]["t"]["text"] == text  # no U+FFFD from a split surrogate pair
        _assert_same(result, built)


def test_chunks_apply_in_pycrdt_in_order(yjs: SplitCheckWorker) -> None:
    for scenario, size in (("keystrokes", 800), ("paste", 100_000), ("trace", 3000)):
        built = _build(yjs, scenario, size)
        for max_bytes in (150, 4096):
            doc = pycrdt.Doc()
            doc["t"] = text = pycrdt.Text()
            for chunk in split_update(built["update_bytes"], max_bytes):
                doc.apply_update(chunk)
            assert str(text) == built["roots"]["t"]["text"]
            assert decode_state_vector(doc.get_state()) == decode_state_vector(unb64(built["sv"]))


def test_rich_doc_structs_survive_pycrdt(yjs: SplitCheckWorker) -> None:
    built = _build(yjs, "rich", 30, seed=3)
    doc = pycrdt.Doc()
    for chunk in split_update(built["update_bytes"], 256):
        doc.apply_update(chunk)
    assert decode_state_vector(doc.get_state()) == decode_state_vector(unb64(built["sv"]))
    doc["t"] = text = pycrdt.Text()
    assert str(text) == built["roots"]["t"]["text"]


def test_unsplittable_struct_over_the_limit_raises_too_large(yjs: SplitCheckWorker) -> None:
    built = _build(yjs, "unsplittable", 5000)
    with pytest.raises(ProtocolError) as info:
        split_update(built["update_bytes"], 4096)
    assert info.value.code == "too-large"
    assert "cannot fit" in str(info.value)
    # with room for the biggest struct it splits fine
    chunks = split_update(built["update_bytes"], 5200)
    assert len(chunks) >= 2
    _assert_same(_apply(yjs, chunks, built["kinds"]), built)


def test_small_update_is_returned_unchanged() -> None:
    doc = pycrdt.Doc()
    doc["t"] = text = pycrdt.Text()
    text += "hi"
    update = doc.get_update()
    assert split_update(update, len(update)) == [update]


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        split_update(b"\x00\x00", 0)


def test_too_small_for_any_struct_raises_too_large() -> None:
    doc = pycrdt.Doc()
    doc["t"] = text = pycrdt.Text()
    text += "x" * 100
    with pytest.raises(ProtocolError) as info:
        split_update(doc.get_update(), 12)
    assert info.value.code == "too-large"


def test_malformed_update_raises_protocol_error() -> None:
    doc = pycrdt.Doc()
    doc["t"] = text = pycrdt.Text()
    text += "x" * 100
    update = doc.get_update()
    for bad in (update[:-3], update + b"\x01", b"\x05" + update[1:]):
        with pytest.raises(ProtocolError):
            split_update(bad, 40)


def test_split_update_messages_frames_and_marks_last_as_step2(yjs: SplitCheckWorker) -> None:
    built = _build(yjs, "keystrokes", 1000, seed=5)
    limit = 2048
    messages = split_update_messages(built["update_bytes"], limit, as_step2=True)
    assert len(messages) > 2
    decoded = [decode_message(m, max_size=limit) for m in messages]
    assert all(len(m) <= limit for m in messages)
    assert all(isinstance(d, SyncUpdate) for d in decoded[:-1])
    assert isinstance(decoded[-1], SyncStep2)
    payloads = [d.update for d in decoded]
    _assert_same(_apply(yjs, payloads, built["kinds"]), built)
    plain = split_update_messages(built["update_bytes"], limit)
    assert all(isinstance(decode_message(m), SyncUpdate) for m in plain)
    with pytest.raises(ValueError):
        split_update_messages(b"\x00\x00", 3)


# ------------------------------------------------------------------ Hypothesis


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), rounds=st.integers(1, 40), max_bytes=st.integers(90, 3000))
def test_random_yjs_docs(yjs: SplitCheckWorker, seed: int, rounds: int, max_bytes: int) -> None:
    built = _build(yjs, "rich", rounds, seed=seed)
    chunks = split_update(built["update_bytes"], max_bytes)
    assert all(len(c) <= max_bytes for c in chunks)
    result = _apply(yjs, chunks, built["kinds"])
    _assert_same(result, built)
    assert not any(result["pendingEach"])
    shuffled = list(chunks)
    random.Random(seed).shuffle(shuffled)
    _assert_same(_apply(yjs, shuffled, built["kinds"]), built)


_ASCII = st.text(alphabet="abcdefgh \n", min_size=1, max_size=30)
_ANY_TEXT = st.text(min_size=1, max_size=400).filter(lambda s: "\x00" not in s)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=6,
)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.floats(0, 1), _ASCII),
        st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 20)),
        st.tuples(st.just("append"), _ANY_TEXT),  # arbitrary unicode, incl. astral chars
        st.tuples(st.just("map"), st.text(max_size=8), _JSONISH),
        st.tuples(st.just("array"), st.lists(_JSONISH, min_size=1, max_size=30)),
        st.tuples(
            st.just("sync"),
        ),
    ),
    min_size=3,
    max_size=60,
)


def _pycrdt_doc(client_id: int) -> tuple[pycrdt.Doc, pycrdt.Text, pycrdt.Map, pycrdt.Array]:
    doc = pycrdt.Doc(client_id=client_id)
    doc["t"] = text = pycrdt.Text()
    doc["m"] = ymap = pycrdt.Map()
    doc["a"] = array = pycrdt.Array()
    return doc, text, ymap, array


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.text(min_size=50, max_size=1500), ops=_OPS, max_bytes=st.integers(80, 700))
def test_random_pycrdt_docs(
    yjs: SplitCheckWorker, base: str, ops: list[tuple[Any, ...]], max_bytes: int
) -> None:
    docs = [_pycrdt_doc(1), _pycrdt_doc(2**40 + 3)]
    docs[1][1].insert(0, "base:")
    docs[0][1].insert(0, base)  # one big struct of arbitrary unicode (astral chars included)
    for i, op in enumerate(ops):
        _doc, text, ymap, array = docs[i % 2]
        if op[0] == "insert":
            # pycrdt indexes text in UTF-8 bytes: only insert where that is unambiguous
            if str(text).isascii():
                text.insert(int(op[1] * len(text)), op[2])
            else:
                text += op[2]
        elif op[0] == "delete" and len(text) > 0 and str(text).isascii():
            start = int(op[1] * (len(text) - 1))
            del text[start : min(len(text), start + op[2])]
        elif op[0] == "append":
            text += op[1]
        elif op[0] == "map":
            ymap[op[1]] = op[2]
        elif op[0] == "array":
            array.extend(op[1])
        elif op[0] == "sync":
            a, b = docs[0][0], docs[1][0]
            b.apply_update(a.get_update(b.get_state()))
            a.apply_update(b.get_update(a.get_state()))
    source, text, ymap, array = docs[0]
    source.apply_update(docs[1][0].get_update(source.get_state()))
    update = source.get_update()
    try:
        chunks = split_update(update, max_bytes)
    except ProtocolError as e:
        # legitimate only when one array/map value cannot fit on its own
        assert e.code == "too-large" and "value #" in str(e)
        assert max_bytes < 400
        return
    assert all(len(c) <= max_bytes for c in chunks)
    assert len(chunks) == 1 or len(update) > max_bytes
    event(f"chunks: {'1' if len(chunks) == 1 else '2-9' if len(chunks) < 10 else '10+'}")
    copy, text2, map2, array2 = _pycrdt_doc(99)
    for chunk in chunks:
        copy.apply_update(chunk)
    assert str(text2) == str(text)
    assert map2.to_py() == ymap.to_py()
    assert array2.to_py() == array.to_py()
    assert decode_state_vector(copy.get_state()) == decode_state_vector(source.get_state())
    assert update_state_vector(update) == decode_state_vector(source.get_state())
    # and stock Yjs agrees with pycrdt about what the chunks contain
    result = _apply(yjs, chunks, {"t": "text", "m": "map", "a": "array"})
    assert result["roots"]["t"]["text"] == str(text)
    assert decode_state_vector(unb64(result["sv"])) == decode_state_vector(source.get_state())
    # every chunk decodes strictly on its own
    for chunk in chunks:
        decode_update(chunk)


def test_step2_messages_answer_a_step1_in_pieces(yjs: SplitCheckWorker) -> None:
    doc = pycrdt.Doc(client_id=77)
    doc["t"] = text = pycrdt.Text()
    text += "old "
    remote_sv = doc.get_state()
    old = doc.get_update()
    text += "new 😀 " * 2000
    messages = step2_messages(doc, remote_sv, 4096)
    assert len(messages) > 3 and all(len(m) <= 4096 for m in messages)
    decoded = [decode_message(m) for m in messages]
    assert isinstance(decoded[-1], SyncStep2)
    assert all(isinstance(d, SyncUpdate) for d in decoded[:-1])
    payloads = [old] + [d.update for d in decoded]  # type: ignore[union-attr]
    result = _apply(yjs, payloads, {"t": "text"})
    assert result["roots"]["t"]["text"] == str(text)
    assert not any(result["pendingEach"])


def test_updates_with_skip_structs_split_like_the_original(yjs: SplitCheckWorker) -> None:
    golden = json.loads((ROOT / "tests" / "data" / "golden.json").read_text(encoding="utf-8"))
    update = bytes.fromhex(next(u for u in golden["updates"] if "Skip" in u["name"])["hex"])
    kinds = {"t": "text"}
    whole = _apply(yjs, [update], kinds)
    assert whole["pending"]  # clock 1 of client 11 is missing: Yjs parks clock 2
    for max_bytes in (20, 24, 30):
        chunks = split_update(update, max_bytes)
        assert len(chunks) > 1 and all(len(c) <= max_bytes for c in chunks)
        for chunk in chunks:
            for section in decode_update(chunk).clients:
                assert section.structs[0].ref != REF_SKIP and section.structs[-1].ref != REF_SKIP
        pieces = _apply(yjs, chunks, kinds)
        assert pieces["roots"] == whole["roots"] and pieces["sv"] == whole["sv"]
        assert pieces["pending"]
