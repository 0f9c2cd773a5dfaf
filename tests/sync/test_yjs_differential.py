"""Differential tests against real Yjs (Node, tests/js/yjs_worker.mjs, one long-lived process).

A Python replica (pycrdt via collab.document) and a JS replica (yjs 13.6) edit concurrently —
text edits around emoji on both sides (pycrdt counts UTF-8 bytes, Yjs UTF-16 units, the test
speaks code points and converts), formatting, maps and arrays — exchanging updates at random
points. Afterwards both must hold byte-identical text, equal JSON, equal formatting deltas and
equal state vectors; and the complete update stream applied in one shuffled order to a fresh
Python doc and a fresh JS doc must give the same result there too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collab.awareness import Awareness
from collab.document import Document, delete_text, format_text, insert_text
from collab.protocol import (
    AwarenessEntry,
    decode_awareness_update,
    decode_state_vector,
    encode_awareness_update,
)
from tests.support.node import b64, unb64
from tests.sync.yjs_helpers import YjsWorker

ROOTS: Any = {"t": "text", "m": "map", "a": "array"}
CHARS = st.sampled_from(["a", "b", " ", "é", "中", "😀", "🐍", "𝄞", "\u200d"])
VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.sampled_from([0.5, -2.0, 1e6]), st.text(CHARS, max_size=3)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(["k", "ü"]), inner, max_size=2)
    ),
    max_leaves=4,
)
SIDE = st.sampled_from(["py", "js"])
OP = st.one_of(
    st.tuples(st.just("ins"), SIDE, st.integers(0, 99), st.text(CHARS, min_size=1, max_size=4)),
    st.tuples(st.just("del"), SIDE, st.integers(0, 99), st.integers(1, 3)),
    st.tuples(
        st.just("fmt"), SIDE, st.integers(0, 99), st.integers(1, 4), st.sampled_from(["bold", "em"])
    ),
    st.tuples(st.just("set"), SIDE, st.sampled_from(["x", "y", "ключ"]), VALUES),
    st.tuples(st.just("push"), SIDE, st.integers(0, 99), VALUES),
    st.tuples(st.just("sync"), st.sampled_from(["py->js", "js->py", "both"])),
)


def utf16_index(s: str, code_points: int) -> int:
    return len(s[:code_points].encode("utf-16-le")) // 2


def py_delta(doc: Document) -> list[tuple[str, Any]]:
    return [(chunk, attrs or None) for chunk, attrs in doc.text("t").diff()]


def js_delta(yjs: YjsWorker, name: str) -> list[tuple[str, Any]]:
    delta = yjs.call("text", doc=name, name="t")["delta"]
    return [(op["insert"], op.get("attributes")) for op in delta]


class Pair:
    def __init__(self, yjs: YjsWorker) -> None:
        self.yjs = yjs
        self.py = Document(roots=ROOTS)
        self.js = yjs.new_doc()
        self.to_js: list[bytes] = []
        self.stream: list[bytes] = []  # every update either side produced, in order
        self.py.observe(self._on_py)

    def _on_py(self, update: bytes, origin: Any) -> None:
        if origin != "js":
            self.to_js.append(update)
            self.stream.append(update)

    def js_text(self) -> str:
        return str(self.yjs.call("text", doc=self.js, name="t")["text"])

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "sync":
            if op[1] in ("py->js", "both"):
                self.push_py()
            if op[1] in ("js->py", "both"):
                self.pull_js()
            return
        side = op[1]
        if side == "py":
            self._py_op(kind, op[2:])
        else:
            self._js_op(kind, op[2:])

    def _py_op(self, kind: str, args: tuple[Any, ...]) -> None:
        doc = self.py
        with doc.transaction(origin="local"):
            text = doc.text("t")
            s = str(text)
            if kind == "ins":
                insert_text(text, args[0] % (len(s) + 1), args[1])
            elif kind == "del" and s:
                i = args[0] % len(s)
                delete_text(text, i, min(args[1], len(s) - i))
            elif kind == "fmt" and s:
                i = args[0] % len(s)
                format_text(text, i, min(args[1], len(s) - i), {args[2]: True})
            elif kind == "set":
                doc.map("m")[args[0]] = args[1]
            elif kind == "push":
                arr = doc.array("a")
                arr.insert(args[0] % (len(arr) + 1), args[1])

    def _js_op(self, kind: str, args: tuple[Any, ...]) -> None:
        call, js = self.yjs.call, self.js
        if kind in ("ins", "del", "fmt"):
            s = self.js_text()
            if kind == "ins":
                i = args[0] % (len(s) + 1)
                call("insert", doc=js, name="t", index=utf16_index(s, i), text=args[1])
            elif s:
                i = args[0] % len(s)
                n = min(args[1], len(s) - i)
                start, stop = utf16_index(s, i), utf16_index(s, i + n)
                if kind == "del":
                    call("delete", doc=js, name="t", index=start, length=stop - start)
                else:
                    call(
                        "format",
                        doc=js,
                        name="t",
                        index=start,
                        length=stop - start,
                        attrs={args[2]: True},
                    )
        elif kind == "set":
            call("mapSet", doc=js, name="m", key=args[0], value=args[1])
        elif kind == "push":
            length = len(call("json", doc=js, roots={"a": "array"})["json"]["a"])
            call("arrayInsert", doc=js, name="a", index=args[0] % (length + 1), values=[args[1]])
        self.stream.extend(unb64(u) for u in call("drainUpdates", doc=js)["updates"])
        self._js_pending = True

    def push_py(self) -> None:
        for update in self.to_js:
            self.yjs.call("apply", doc=self.js, update=b64(update), quiet=True)
        self.to_js.clear()

    def pull_js(self) -> None:
        # everything JS has that we lack, as Yjs computes it
        sv = b64(self.py.state_vector())
        update = unb64(self.yjs.call("encodeState", doc=self.js, sv=sv)["update"])
        self.py.apply_update(update, origin="js")


def assert_same(yjs: YjsWorker, py: Document, js: str) -> None:
    reply = yjs.call("text", doc=js, name="t")
    assert reply["text"].encode("utf-8") == str(py.text("t")).encode("utf-8")
    assert js_delta(yjs, js) == py_delta(py)
    assert yjs.call("json", doc=js, roots=ROOTS)["json"] == py.to_json()
    js_sv = decode_state_vector(unb64(yjs.call("stateVector", doc=js)["sv"]))
    assert js_sv == decode_state_vector(py.state_vector())


@settings(max_examples=max(10, settings.default.max_examples * 3 // 5))
@given(ops=st.lists(OP, min_size=1, max_size=30), data=st.data())
def test_python_and_yjs_converge(yjs: YjsWorker, ops: list[Any], data: st.DataObject) -> None:
    pair = Pair(yjs)
    try:
        for op in ops:
            pair.apply(op)
        pair.push_py()
        pair.pull_js()
        assert pair.py.parked == 0
        assert_same(yjs, pair.py, pair.js)

        # the same update stream, one shuffled order, applied on both implementations
        order = data.draw(st.permutations(pair.stream), label="order")
        fresh_py = Document(roots=ROOTS)
        fresh_js = yjs.new_doc()
        try:
            for update in order:
                fresh_py.apply_update(update)
                yjs.call("apply", doc=fresh_js, update=b64(update), quiet=True)
            assert_same(yjs, fresh_py, fresh_js)
            assert fresh_py.to_json() == pair.py.to_json()
        finally:
            yjs.call("destroy", doc=fresh_js)
    finally:
        yjs.call("destroy", doc=pair.js)


def test_emoji_edits_on_both_sides(yjs: YjsWorker) -> None:
    """A fixed scenario: edits right before/after/between astral characters on each side."""
    pair = Pair(yjs)
    try:
        pair.apply(("ins", "py", 0, "a😀b🐍c"))
        pair.apply(("sync", "both"))
        pair.apply(("ins", "js", 2, "X"))  # between 😀 and b (UTF-16 index 3)
        pair.apply(("ins", "py", 4, "Y"))  # between 🐍 and c (UTF-8 offset 10)
        pair.apply(("del", "js", 1, 1))  # delete 😀 (two UTF-16 units)
        pair.apply(("fmt", "py", 3, 2, "bold"))
        pair.apply(("sync", "both"))
        pair.apply(("sync", "both"))
        assert pair.js_text() == str(pair.py.text("t")) == "aXb🐍Yc"
        assert_same(yjs, pair.py, pair.js)
    finally:
        yjs.call("destroy", doc=pair.js)


def test_yjs_merged_updates_are_accepted(yjs: YjsWorker) -> None:
    """Yjs' own mergeUpdates output passes our strict scan and applies identically."""
    js = yjs.new_doc()
    try:
        # UTF-16 indexes that never split a surrogate pair
        for index, s in [(0, "héllo"), (1, "😀"), (3, " wörld"), (0, "🐍")]:
            yjs.call("insert", doc=js, name="t", index=index, text=s)
        updates = yjs.call("drainUpdates", doc=js)["updates"]
        merged = unb64(yjs.call("mergeUpdates", updates=updates)["update"])
        doc = Document(roots={"t": "text"})
        doc.apply_update(merged)
        assert str(doc.text("t")) == yjs.call("text", doc=js, name="t")["text"] == "🐍h😀 wörldéllo"
    finally:
        yjs.call("destroy", doc=js)


def test_awareness_bytes_roundtrip_with_y_protocols(yjs: YjsWorker) -> None:
    """Our awareness entries and y-protocols' agree both ways, clock rules included."""
    js = yjs.new_doc(client_id=77)
    try:
        yjs.call("awarenessCreate", doc=js)
        yjs.call("awarenessSetLocal", doc=js, state={"user": {"name": "Zoë 🐍"}})
        ours = Awareness(5, state={"user": {"name": "archive"}})
        # JS -> Python
        update = unb64(yjs.call("awarenessEncode", doc=js)["update"])
        ours.apply(decode_awareness_update(update), origin="js")
        assert ours.states[77] == {"user": {"name": "Zoë 🐍"}}
        # Python -> JS, including a clock-0 entry JS must ignore, as we do
        entries = (*ours.encode([5]), AwarenessEntry(6, 0, {"ghost": True}))
        yjs.call("awarenessApply", doc=js, update=b64(encode_awareness_update(entries)))
        states = yjs.call("awarenessStates", doc=js)
        assert states["states"]["5"] == {"user": {"name": "archive"}}
        assert "6" not in states["states"]
        assert states["meta"]["5"] == ours.meta[5].clock
        # a remote null for JS's own client makes JS bump its clock, as our Awareness does
        yjs.call(
            "awarenessApply",
            doc=js,
            update=b64(encode_awareness_update([AwarenessEntry(77, 1, None)])),
        )
        assert yjs.call("awarenessStates", doc=js)["meta"]["77"] == 2
        mine = Awareness(9, state={"x": 1})
        mine.apply([AwarenessEntry(9, 1, None)], origin="peer")
        assert mine.meta[9].clock == 2 and mine.get_local_state() == {"x": 1}
    finally:
        yjs.call("destroy", doc=js)
