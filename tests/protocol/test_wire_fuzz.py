"""Hostile input: random, truncated and mutated bytes may only ever raise ProtocolError.

Never IndexError / struct.error / RecursionError / UnicodeDecodeError / MemoryError /
AssertionError, and oversize input is refused before any work (``max_size``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab import crypto
from collab.errors import ProtocolError
from collab.lib0 import decode_any
from collab.protocol import decode_awareness_update, decode_message, decode_state_vector
from collab.update_split import split_update
from collab.yupdate import decode_update
from tests.support.paths import ROOT

GOLDEN = json.loads((ROOT / "tests" / "data" / "golden.json").read_text(encoding="utf-8"))
KEY = crypto.derive_key("secret", "room")

SEEDS: list[bytes] = (
    [bytes.fromhex(c["hex"]) for c in GOLDEN["messages"]]
    + [bytes.fromhex(c["hex"]) for c in GOLDEN["any"]]
    + [bytes.fromhex(c["hex"]) for c in GOLDEN["updates"]]
    + [bytes.fromhex(c["envelope_hex"]) for c in GOLDEN["crypto"]]
)


def _awareness_body(data: bytes) -> Any:
    return decode_awareness_update(data)


def _split_small(data: bytes) -> Any:
    return split_update(data, 16)


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "decode_message": decode_message,
    "decode_any": decode_any,
    "decrypt": lambda data: crypto.decrypt(data, KEY),
    "decrypt_json": lambda data: crypto.decrypt_json(data, KEY),
    "decode_state_vector": decode_state_vector,
    "decode_awareness_update": _awareness_body,
    "decode_update": decode_update,
    "split_update": _split_small,
}


def _only_protocol_error(decoder: Callable[[bytes], Any], data: bytes) -> None:
    try:
        decoder(data)
    except ProtocolError as e:
        assert e.code  # every refusal carries a machine-readable code


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A golden message with a few bytes flipped, inserted, deleted or cut."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "big"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos]
        elif op == "cut":
            del data[pos:]
        elif op == "big":  # a huge varUint where a length or count is expected
            data[pos:pos] = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
    return bytes(data)


@pytest.mark.parametrize("name", list(DECODERS))
@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_random_bytes(name: str, data: bytes) -> None:
    _only_protocol_error(DECODERS[name], data)


@pytest.mark.parametrize("name", list(DECODERS))
@settings(max_examples=300)
@given(data=mutated())
def test_mutated_goldens(name: str, data: bytes) -> None:
    _only_protocol_error(DECODERS[name], data)


@pytest.mark.parametrize("name", list(DECODERS))
def test_every_truncation_of_every_seed(name: str) -> None:
    decoder = DECODERS[name]
    for seed in SEEDS:
        for cut in range(len(seed)):
            _only_protocol_error(decoder, seed[:cut])


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    for tag in (0x75, 0x76):  # array of array..., object of object...
        body = (bytes([0x75, 0x01]) if tag == 0x75 else bytes([0x76, 0x01, 0x00])) * 100_000
        with pytest.raises(ProtocolError) as info:
            decode_any(body + b"\x7e")
        assert info.value.code == "too-deep"


def test_deeply_nested_awareness_json_is_refused() -> None:
    state = b"[" * 100_000
    body = bytes([1, 5, 1]) + _var_uint(len(state)) + state
    with pytest.raises(ProtocolError):
        decode_awareness_update(body)


def test_huge_claimed_lengths_fail_fast() -> None:
    huge = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])  # 2^53-1
    for data in (
        b"\x74" + huge,  # Uint8Array of 2^53-1 bytes
        b"\x75" + huge,  # array of 2^53-1 items
        b"\x76" + huge,  # object of 2^53-1 keys
        b"\x77" + huge,  # string of 2^53-1 bytes
    ):
        with pytest.raises(ProtocolError):
            decode_any(data)
    for data in (huge, b"\x01" + huge + b"\x05\x00"):
        with pytest.raises(ProtocolError):
            decode_update(data)
        with pytest.raises(ProtocolError):
            decode_state_vector(data)
    with pytest.raises(ProtocolError) as info:
        decode_any(b"\x7d" + b"\xff" * 9)  # varInt longer than 8 bytes
    assert info.value.code == "overflow"


def test_oversize_message_is_refused_before_parsing() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_message(b"\x00\x02" + b"\xff" * 300_000)
    assert info.value.code == "too-large"
    with pytest.raises(ProtocolError) as info:
        decode_message(b"\x03\x00", max_size=1)
    assert info.value.code == "too-large"
    with pytest.raises(ProtocolError) as info:
        decode_message(b"")
    assert info.value.code == "empty"


def test_unknown_types_are_refused() -> None:
    for data in (b"\x02", b"\x05", b"\x00\x03\x00", b"\x7f\x00"):
        with pytest.raises(ProtocolError) as info:
            decode_message(data)
        assert info.value.code == "unknown-type"
    # an update struct with an unknown content ref (11..31)
    with pytest.raises(ProtocolError) as info:
        decode_update(bytes([1, 1, 5, 0, 0x8B, 1, 0, 0]))
    assert info.value.code == "unknown-type"


def _var_uint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)
