"""Cross-implementation round trips through a long-lived real lib0 / y-webrtc Node worker.

Python writeAny → JS readAny → JS writeAny → Python readAny, byte-identical; Python
encrypt_json → y-webrtc crypto.js decryptJson and back (non-ASCII passwords and rooms).
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab import crypto
from collab.lib0 import UNDEFINED, decode_any, encode_any
from tests.protocol.wire_helpers import SplitCheckWorker
from tests.support.node import b64, unb64

_INT64 = st.integers(-(2**63), 2**63 - 1)
_SCALARS = (
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.integers(-(2**31), 2**31)
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | _INT64
    | st.floats(allow_nan=False)  # NaN payload bits are not preserved by JS
    | st.floats(width=32, allow_nan=False)
    | st.just(-0.0)
    | st.text()
    | st.binary(max_size=40)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and a == b
            and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _js_round_trip(yjs: SplitCheckWorker, encoded: list[bytes]) -> list[bytes]:
    response = yjs.call(op="any_roundtrip", values=[b64(e) for e in encoded])
    return [unb64(x) for x in response["values"]]


_INDEX_KEY = re.compile(r"^(0|[1-9][0-9]*)$")


def _has_index_key(value: Any) -> bool:
    """Whether ``value`` holds an object key that JavaScript treats as an array index."""
    if isinstance(value, dict):
        return any(
            (_INDEX_KEY.match(k) is not None and int(k) < 2**32 - 1) or _has_index_key(v)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_has_index_key(v) for v in value)
    return False


def _normal(value: Any) -> Any:
    """What readAny gives back for a Python value (tuples → lists, bytearray → bytes)."""
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_VALUES, min_size=1, max_size=10))
def test_write_any_round_trips_through_lib0(yjs: SplitCheckWorker, values: list[Any]) -> None:
    encoded = [encode_any(v) for v in values]
    back = _js_round_trip(yjs, encoded)
    for value, ours, theirs in zip(values, encoded, back, strict=True):
        assert _same(decode_any(theirs), _normal(value))
        if not _has_index_key(value):
            # lib0 re-encodes exactly what we wrote (same 125/124/123/122 tag choices)
            assert theirs == ours
        else:
            # JS objects list array-index keys ("0", "1", ...) first, in numeric order
            assert len(theirs) == len(ours) and sorted(theirs) == sorted(ours)


def test_nan_round_trips() -> None:
    data = encode_any(float("nan"))
    assert data[0] == 123
    assert math.isnan(decode_any(data))


_PASSWORDS = st.text(min_size=0, max_size=12)
_ROOMS = st.text(min_size=1, max_size=12)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=_PASSWORDS, room=_ROOMS, values=st.lists(_VALUES, min_size=1, max_size=4))
def test_encryption_interoperates_with_y_webrtc(
    yjs: SplitCheckWorker, password: str, room: str, values: list[Any]
) -> None:
    key = crypto.derive_key(password, room)
    ours = [crypto.encrypt_json(v, key) for v in values]
    decrypted = yjs.call(
        op="decrypt_json", password=password, room=room, envelopes=[b64(e) for e in ours]
    )["values"]
    for value, data in zip(values, decrypted, strict=True):
        assert _same(decode_any(unb64(data)), _normal(value))
    theirs = yjs.call(
        op="encrypt_json",
        password=password,
        room=room,
        values=[b64(encode_any(v)) for v in values],
    )["envelopes"]
    for value, envelope in zip(values, theirs, strict=True):
        assert _same(crypto.decrypt_json(unb64(envelope), key), _normal(value))
        # and as the base64 text y-webrtc puts in publish.data
        assert _same(crypto.open_payload(envelope, key), _normal(value))


def test_non_ascii_password_and_room(yjs: SplitCheckWorker) -> None:
    password, room = "pässwörd 🔑 中文", "комната/ü 😀"
    key = crypto.derive_key(password, room)
    value = {"type": "announce", "from": "peer-ü"}
    (decrypted,) = yjs.call(
        op="decrypt_json",
        password=password,
        room=room,
        envelopes=[b64(crypto.encrypt_json(value, key))],
    )["values"]
    assert decode_any(unb64(decrypted)) == value
    wrong = crypto.derive_key(password, room + "x")
    assert wrong != key


def test_lone_surrogates_are_encoded_like_text_encoder(yjs: SplitCheckWorker) -> None:
    values = ["a\ud800b", {"\udc00": "\ud83d\ude00"}]
    encoded = [encode_any(v) for v in values]
    back = _js_round_trip(yjs, encoded)
    assert back == encoded
    assert decode_any(back[0]) == "a\ufffdb"
    assert decode_any(back[1]) == {"\ufffd": "😀"}
    # y-webrtc derives the key from TextEncoder bytes too
    key = crypto.derive_key("pw\ud800", "room")
    assert key == crypto.derive_key("pw\ufffd", "room")
    (decrypted,) = yjs.call(
        op="decrypt_json",
        password="pw\ud800",
        room="room",
        envelopes=[b64(crypto.encrypt_json("x", key))],
    )["values"]
    assert decode_any(unb64(decrypted)) == "x"
