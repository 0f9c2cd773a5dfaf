"""The y-webrtc data-channel wire format (y-protocols sync + awareness, y-webrtc types 3 and 4).

Pure functions on bytes: :func:`decode_message` turns one data-channel message into a typed
message object, the ``encode_*`` functions build messages byte-identical to what Yjs,
y-protocols and y-webrtc send. Every length and varint is bounds-checked; anything malformed,
truncated, oversized or unknown raises :class:`collab.errors.ProtocolError` with a ``code``.

Wire summary (outer type = lib0 varUint, then the body):

=====  ===================  ==============================================================
type   name                 body
=====  ===================  ==============================================================
0      sync                 varUint(sync type 0/1/2) • varUint8Array(state vector | update)
1      awareness            varUint8Array(awareness update)
3      query-awareness      (empty)
4      bc-peer-id           uint8(add) • varString(peer id)   (BroadcastChannel only)
=====  ===================  ==============================================================

Example:
    >>> from collab.protocol import decode_message, encode_sync_step1, SyncStep1
    >>> decode_message(encode_sync_step1(b"\\x00"))
    SyncStep1(state_vector=b'\\x00')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from collab.errors import ProtocolError
from collab.lib0 import Decoder, Encoder
from collab.yupdate import read_state_vector

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EMPTY_UPDATE",
    "AwarenessEntry",
    "AwarenessMessage",
    "BcPeerId",
    "Message",
    "MessageType",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "SyncType",
    "SyncUpdate",
    "decode_awareness_update",
    "decode_message",
    "decode_state_vector",
    "encode_awareness",
    "encode_awareness_messages",
    "encode_awareness_update",
    "encode_bc_peer_id",
    "encode_message",
    "encode_query_awareness",
    "encode_state_vector",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
]

DEFAULT_MAX_MESSAGE_SIZE: Final = 262_144
"""Default cap on an incoming message: Chromium's and aiortc's SCTP ``max-message-size``."""

MAX_AWARENESS_STATE_BYTES: Final = 65_536
"""Default cap on one client's awareness JSON state (see :class:`collab.awareness.Awareness`:
larger states are dropped, not fatal — a browser may merely be relaying them)."""

EMPTY_UPDATE: Final = b"\x00\x00"
"""A Yjs V1 update with no structs and an empty delete set."""


class MessageType(IntEnum):
    """Outer message types on a y-webrtc data channel."""

    SYNC = 0
    AWARENESS = 1
    QUERY_AWARENESS = 3
    BC_PEER_ID = 4


class SyncType(IntEnum):
    """y-protocols sync sub-types."""

    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """``[0, 0, sv]``: "here is my state vector, send me what I lack"."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """``[0, 1, update]``: the answer to a step 1 (all structs the asker lacks)."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """``[0, 2, update]``: an incremental document update."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness state. ``state is None`` means the client is gone.

    ``size`` is the state's JSON length in UTF-8 bytes as received (``-1``: not measured;
    :meth:`json_size` computes it).
    """

    client_id: int
    clock: int
    state: Any
    size: int = field(default=-1, compare=False, repr=False)

    def json_size(self) -> int:
        """The state's JSON length in UTF-8 bytes (as received, or as we would encode it).

        Example:
            >>> AwarenessEntry(1, 1, {"a": "é"}).json_size()
            10
        """
        if self.size >= 0:
            return self.size
        return len(_state_json(self.state).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    """``[1, update]``: awareness states of one or more clients."""

    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """``[3]``: "send me every awareness state you know"."""


@dataclass(frozen=True, slots=True)
class BcPeerId:
    """``[4, add, peerId]``: y-webrtc BroadcastChannel bookkeeping (never sent over WebRTC)."""

    add: bool
    peer_id: str


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness | BcPeerId
"""Any decoded data-channel message."""


# --------------------------------------------------------------------------- state vectors


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Decode a Yjs state vector (``varUint(n)`` then n × ``client, clock``).

    Raises:
        ProtocolError: malformed, truncated, or with trailing bytes.

    Example:
        >>> decode_state_vector(bytes([1, 7, 3]))
        {7: 3}
    """
    decoder = Decoder(data)
    sv = read_state_vector(decoder)
    decoder.expect_done()
    return sv


def encode_state_vector(sv: dict[int, int]) -> bytes:
    """Encode a state vector (entries in the given order).

    Example:
        >>> encode_state_vector({7: 3}).hex()
        '010703'
    """
    encoder = Encoder()
    encoder.write_var_uint(len(sv))
    for client, clock in sv.items():
        encoder.write_var_uint(client)
        encoder.write_var_uint(clock)
    return encoder.to_bytes()


# --------------------------------------------------------------------------- awareness


def _state_json(state: Any) -> str:
    # JSON.stringify equivalent for JSON-compatible values (compact, non-ASCII kept).
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_awareness_update(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    """Encode an awareness update body (y-protocols ``encodeAwarenessUpdate``).

    Example:
        >>> encode_awareness_update([AwarenessEntry(7, 3, {})]).hex()
        '010703027b7d'
    """
    encoder = Encoder()
    encoder.write_var_uint(len(entries))
    for entry in entries:
        encoder.write_var_uint(entry.client_id)
        encoder.write_var_uint(entry.clock)
        encoder.write_var_string(_state_json(entry.state))
    return encoder.to_bytes()


def decode_awareness_update(data: bytes) -> tuple[AwarenessEntry, ...]:
    """Decode an awareness update body; each state is parsed JSON (``None`` for ``null``).

    Raises:
        ProtocolError: malformed input or invalid JSON.
    """
    decoder = Decoder(data)
    n = decoder.read_count("awareness update entries", 3)
    entries = []
    for _ in range(n):
        client_id = decoder.read_var_uint()
        clock = decoder.read_var_uint()
        raw = decoder.read_var_uint8_array()
        try:
            state = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ProtocolError("bad-json", f"awareness state: {e}") from None
        entries.append(AwarenessEntry(client_id, clock, state, len(raw)))
    decoder.expect_done()
    return tuple(entries)


# --------------------------------------------------------------------------- messages


def encode_sync_step1(state_vector: bytes) -> bytes:
    """``[0, 0, varUint8Array(sv)]`` — what every y-webrtc peer sends first on a connection."""
    return _encode_sync(SyncType.STEP1, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    """``[0, 1, varUint8Array(update)]`` — the answer to a step 1."""
    return _encode_sync(SyncType.STEP2, update)


def encode_update(update: bytes) -> bytes:
    """``[0, 2, varUint8Array(update)]`` — one incremental update."""
    return _encode_sync(SyncType.UPDATE, update)


def _encode_sync(sync_type: SyncType, payload: bytes) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(MessageType.SYNC)
    encoder.write_var_uint(sync_type)
    encoder.write_var_uint8_array(payload)
    return encoder.to_bytes()


def encode_awareness(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    """``[1, varUint8Array(awareness update)]``."""
    encoder = Encoder()
    encoder.write_var_uint(MessageType.AWARENESS)
    encoder.write_var_uint8_array(encode_awareness_update(entries))
    return encoder.to_bytes()


def encode_awareness_messages(
    entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...], max_bytes: int
) -> tuple[list[bytes], int]:
    """``[1, …]`` messages carrying ``entries``, each at most ``max_bytes`` (an awareness
    update may carry any subset of clients, so a large set goes out in several messages).

    Returns the messages and how many entries were too large to fit in any message alone
    (they are left out).

    Example:
        >>> msgs, skipped = encode_awareness_messages(
        ...     [AwarenessEntry(c, 1, {"n": "x" * 40}) for c in range(4)], 200)
        >>> len(msgs), skipped, all(len(m) <= 200 for m in msgs)
        (2, 0, True)
    """
    messages: list[bytes] = []
    batch: list[AwarenessEntry] = []
    size = _AWARENESS_OVERHEAD
    skipped = 0
    for entry in entries:
        cost = _entry_cost(entry)
        if cost + _AWARENESS_OVERHEAD > max_bytes:
            skipped += 1
            continue
        if batch and size + cost > max_bytes:
            messages.append(encode_awareness(batch))
            batch, size = [], _AWARENESS_OVERHEAD
        batch.append(entry)
        size += cost
    if batch:
        messages.append(encode_awareness(batch))
    return messages, skipped


_AWARENESS_OVERHEAD: Final = 1 + 5 + 5
"""Outer type, the update's length prefix and the entry count (varUints, generously)."""


def _entry_cost(entry: AwarenessEntry) -> int:
    # client id + clock (≤ 8 bytes each as varUints) + JSON length prefix + JSON
    size = entry.json_size() if entry.state is not None else 4
    return 8 + 8 + 5 + size


def encode_query_awareness() -> bytes:
    """``[3]``."""
    return bytes([MessageType.QUERY_AWARENESS])


def encode_bc_peer_id(add: bool, peer_id: str) -> bytes:
    """``[4, add, varString(peerId)]`` (BroadcastChannel only; provided for tests)."""
    encoder = Encoder()
    encoder.write_var_uint(MessageType.BC_PEER_ID)
    encoder.write_uint8(1 if add else 0)
    encoder.write_var_string(peer_id)
    return encoder.to_bytes()


def encode_message(message: Message) -> bytes:
    """Encode any :data:`Message`.

    Example:
        >>> encode_message(QueryAwareness())
        b'\\x03'
    """
    if isinstance(message, SyncStep1):
        return encode_sync_step1(message.state_vector)
    if isinstance(message, SyncStep2):
        return encode_sync_step2(message.update)
    if isinstance(message, SyncUpdate):
        return encode_update(message.update)
    if isinstance(message, AwarenessMessage):
        return encode_awareness(message.entries)
    if isinstance(message, QueryAwareness):
        return encode_query_awareness()
    return encode_bc_peer_id(message.add, message.peer_id)


def decode_message(data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Message:
    """Decode one data-channel message.

    Sync payloads are checked for framing only (the update itself is validated when it is
    applied); a step 1's state vector and awareness updates are fully decoded.

    Args:
        data: the whole message as received.
        max_size: reject messages larger than this many bytes (``too-large``).

    Raises:
        ProtocolError: codes ``empty``, ``too-large``, ``truncated``, ``overflow``,
            ``unknown-type``, ``trailing-bytes``, ``bad-utf8``, ``bad-json``.
    """
    if not data:
        raise ProtocolError("empty", "empty message")
    if len(data) > max_size:
        raise ProtocolError("too-large", f"{len(data)} bytes > limit {max_size}")
    decoder = Decoder(bytes(data))
    kind = decoder.read_var_uint()
    message: Message
    if kind == MessageType.SYNC:
        sync_type = decoder.read_var_uint()
        payload = decoder.read_var_uint8_array()
        if sync_type == SyncType.STEP1:
            decode_state_vector(payload)
            message = SyncStep1(payload)
        elif sync_type == SyncType.STEP2:
            message = SyncStep2(payload)
        elif sync_type == SyncType.UPDATE:
            message = SyncUpdate(payload)
        else:
            raise ProtocolError("unknown-type", f"sync type {sync_type}")
    elif kind == MessageType.AWARENESS:
        message = AwarenessMessage(decode_awareness_update(decoder.read_var_uint8_array()))
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == MessageType.BC_PEER_ID:
        add = decoder.read_uint8()
        if add > 1:
            raise ProtocolError("bad-value", f"bc-peer-id flag {add}")
        message = BcPeerId(add == 1, decoder.read_var_string())
    else:
        raise ProtocolError("unknown-type", f"message type {kind}")
    decoder.expect_done()
    return message
