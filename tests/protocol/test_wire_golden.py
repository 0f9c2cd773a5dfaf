"""Golden bytes produced by REAL yjs / y-protocols / lib0 / y-webrtc (tests/js/golden.mjs).

Our encoders must produce identical bytes, our decoders must read them back, every strict prefix
of a golden message must be refused with ProtocolError, and re-running golden.mjs must reproduce
the committed tests/data/golden.json (so the goldens provably come from the npm packages).
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import pytest

from collab import crypto
from collab.errors import ProtocolError
from collab.lib0 import UNDEFINED, Decoder, Encoder, decode_any, encode_any, write_var_uint
from collab.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    BcPeerId,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_awareness_update,
    decode_message,
    decode_state_vector,
    encode_awareness_update,
    encode_message,
    encode_state_vector,
)
from collab.yupdate import decode_update, update_state_vector
from tests.support.paths import NODE, ROOT

GOLDEN_PATH = ROOT / "tests" / "data" / "golden.json"
GOLDEN: dict[str, Any] = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
MAX_SAFE = 2**53 - 1


def from_desc(desc: Any) -> Any:
    """Rebuild the Python value for a golden.mjs value description."""
    if desc is None or isinstance(desc, bool):
        return desc
    if "undefined" in desc:
        return UNDEFINED
    if "str" in desc:
        return desc["str"]
    if "num" in desc:
        text = desc["num"]
        if text == "-0":
            return -0.0
        value = float(text)
        if desc["integer"] and abs(value) <= MAX_SAFE:
            return int(value)
        return value
    if "bigint" in desc:
        return int(desc["bigint"])
    if "bytes" in desc:
        return bytes.fromhex(desc["bytes"])
    if "array" in desc:
        return [from_desc(x) for x in desc["array"]]
    return {k: from_desc(v) for k, v in desc["object"]}


def same(a: Any, b: Any) -> bool:
    """Deep equality that treats NaN == NaN and compares -0.0 by sign."""
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        if isinstance(a, float) and math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_goldens_are_reproduced_by_real_yjs() -> None:
    fresh = subprocess.run(
        [NODE, str(ROOT / "tests" / "js" / "golden.mjs")],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode("utf-8")
    assert fresh == GOLDEN_PATH.read_text(encoding="utf-8")
    assert GOLDEN["versions"]["yjs"] == "13.6.33"


# ------------------------------------------------------------------ lib0 primitives


@pytest.mark.parametrize("case", GOLDEN["var_uint"], ids=lambda c: str(c["value"]))
def test_var_uint(case: dict[str, Any]) -> None:
    assert write_var_uint(case["value"]).hex() == case["hex"]
    decoder = Decoder(bytes.fromhex(case["hex"]))
    assert decoder.read_var_uint() == case["value"]
    decoder.expect_done()


@pytest.mark.parametrize("case", GOLDEN["var_int"], ids=lambda c: str(c["value"]))
def test_var_int(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    value = case["value"]
    if value == "-0":  # JS writes -0 with the sign bit; Python ints have no -0
        assert data == b"\x40"
        value = 0
    else:
        encoder = Encoder()
        encoder.write_var_int(value)
        assert encoder.to_bytes() == data
    decoder = Decoder(data)
    assert decoder.read_var_int() == value
    decoder.expect_done()


@pytest.mark.parametrize("case", GOLDEN["any"], ids=lambda c: c["name"])
def test_write_any_read_any(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    value = from_desc(case["value"])
    assert data[0] == case["tag"]
    decoded = decode_any(data)
    is_bigint = isinstance(case["value"], dict) and "bigint" in case["value"]
    if is_bigint:
        assert decoded == value and data[0] == 122
    else:
        assert same(decoded, value)
    if is_bigint and abs(value) <= MAX_SAFE:
        # a Python int in the safe range is a JS number, never a BigInt: no way to
        # ask for tag 122 there, and JS readAny gives a BigInt we decode to the same int.
        return
    assert encode_any(value).hex() == case["hex"]


def test_float_tags_follow_js_not_the_design_note() -> None:
    """lib0 writes 2**40 as float32 (tag 124): the design doc's "123" claim is wrong."""
    by_name = {c["name"]: c for c in GOLDEN["any"]}
    assert by_name["int 2^40"]["tag"] == 124
    assert by_name["int 2^31"]["tag"] == 124
    assert by_name["int 2^53-1"]["tag"] == 123
    assert by_name["float Infinity"]["tag"] == 124
    assert by_name["float NaN"]["tag"] == 123
    assert by_name["float token"]["tag"] == 123


# ------------------------------------------------------------------ data-channel messages


def _expected_message(case: dict[str, Any]) -> Any:
    """The message golden.mjs built its bytes from, out of the values it recorded next to them
    (state vectors, updates and awareness clocks as Yjs made them)."""
    fields = case["fields"]
    kind = case["kind"]
    if kind == "sync_step1":
        return SyncStep1(bytes.fromhex(fields["state_vector"]))
    if kind == "sync_step2":
        return SyncStep2(bytes.fromhex(fields["update"]))
    if kind == "sync_update":
        return SyncUpdate(bytes.fromhex(fields["update"]))
    if kind == "awareness":
        return AwarenessMessage(
            tuple(
                AwarenessEntry(e["client_id"], e["clock"], json.loads(e["state_json"]))
                for e in fields["entries"]
            )
        )
    if kind == "query_awareness":
        return QueryAwareness()
    assert kind == "bc_peer_id"
    return BcPeerId(fields["add"], fields["peer_id"])


@pytest.mark.parametrize("case", GOLDEN["messages"], ids=lambda c: c["name"])
def test_message_bytes_match_yjs(case: dict[str, Any]) -> None:
    """The message y-protocols / y-webrtc wrote from these fields, byte for byte."""
    data = bytes.fromhex(case["hex"])
    expected = _expected_message(case)
    assert encode_message(expected) == data
    assert decode_message(data) == expected


SYNC_STEP1 = [c for c in GOLDEN["messages"] if c["kind"] == "sync_step1"]
AWARENESS = [c for c in GOLDEN["messages"] if c["kind"] == "awareness"]


@pytest.mark.parametrize("case", SYNC_STEP1, ids=lambda c: c["name"])
def test_state_vector_matches_yjs(case: dict[str, Any]) -> None:
    """Y.encodeStateVector's bytes, and the clocks Y.decodeStateVector reads from them."""
    data = bytes.fromhex(case["fields"]["state_vector"])
    clocks = {client: clock for client, clock in case["fields"]["clocks"]}
    assert decode_state_vector(data) == clocks
    assert encode_state_vector(clocks) == data


@pytest.mark.parametrize("case", AWARENESS, ids=lambda c: c["name"])
def test_awareness_update_matches_y_protocols(case: dict[str, Any]) -> None:
    """awarenessProtocol.encodeAwarenessUpdate's bytes for these clients, clocks and states."""
    data = bytes.fromhex(case["fields"]["update"])
    entries = _expected_message(case).entries
    assert encode_awareness_update(entries) == data
    assert decode_awareness_update(data) == entries


@pytest.mark.parametrize("case", GOLDEN["messages"], ids=lambda c: c["name"])
def test_every_truncation_of_a_message_is_refused(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode_message(data[:cut])


def test_message_size_limit() -> None:
    data = bytes.fromhex(next(c for c in GOLDEN["messages"] if c["name"] == "step2 diff")["hex"])
    assert decode_message(data, max_size=len(data))
    with pytest.raises(ProtocolError) as info:
        decode_message(data, max_size=len(data) - 1)
    assert info.value.code == "too-large"


def test_step1_state_vector_with_the_largest_client_id() -> None:
    two = next(c for c in SYNC_STEP1 if c["name"] == "step1 two clients")
    assert set(decode_state_vector(bytes.fromhex(two["fields"]["state_vector"]))) == {42, MAX_SAFE}


@pytest.mark.parametrize("case", GOLDEN["any"], ids=lambda c: c["name"])
def test_every_truncation_of_write_any_is_refused(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode_any(data[:cut])


# ------------------------------------------------------------------ V1 updates


@pytest.mark.parametrize("case", GOLDEN["updates"], ids=lambda c: c["name"])
def test_update_structs_match_yjs_decode_update(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    parsed = decode_update(data)
    ours = [
        [section.client, s.clock, s.length, s.ref]
        for section in parsed.clients
        for s in section.structs
    ]
    # Y.decodeUpdate lists clients in its own order; compare per client
    assert sorted(ours) == sorted(case["structs"])
    assert sorted([c, [list(r) for r in ranges]] for c, ranges in parsed.delete_set) == sorted(
        case["ds"]
    )
    expected_sv: dict[int, int] = {}
    for client, clock, length, ref in case["structs"]:
        if ref != 10:
            expected_sv[client] = max(expected_sv.get(client, 0), clock + length)
    assert update_state_vector(data) == expected_sv
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode_update(data[:cut])


# ------------------------------------------------------------------ signaling encryption


@pytest.mark.parametrize("case", GOLDEN["crypto"], ids=lambda c: repr(c["password"]))
def test_crypto_matches_y_webrtc(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    key = crypto.derive_key(case["password"], case["room"])
    assert key.hex() == case["key_hex"]
    value = from_desc(case["value"])
    envelope = bytes.fromhex(case["envelope_hex"])
    assert same(crypto.decrypt_json(envelope, key), value)
    assert same(crypto.open_payload(case["base64"], key), value)
    assert encode_any(value).hex() == case["plain_hex"]
    # with y-webrtc's IV our envelope is byte-identical (fault injection: fixed randomness)
    iv = bytes.fromhex(case["iv_hex"])
    monkeypatch.setattr(crypto.os, "urandom", lambda n: iv[:n])
    assert crypto.encrypt_json(value, key) == envelope
    assert crypto.seal_payload(value, key) == case["base64"]


def test_crypto_refuses_wrong_key_and_truncations() -> None:
    case = GOLDEN["crypto"][0]
    envelope = bytes.fromhex(case["envelope_hex"])
    wrong = crypto.derive_key(case["password"] + "x", case["room"])
    with pytest.raises(ProtocolError) as info:
        crypto.decrypt(envelope, wrong)
    assert info.value.code == "bad-key"
    key = bytes.fromhex(case["key_hex"])
    for cut in range(len(envelope)):
        with pytest.raises(ProtocolError):
            crypto.decrypt(envelope[:cut], key)
