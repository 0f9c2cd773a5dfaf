"""Split one large Yjs V1 update into several smaller, individually valid V1 updates.

y-webrtc has no chunking: a data-channel message larger than the remote's SCTP
``max-message-size`` (262144 in Chromium and aiortc, 65536 by default) is dropped silently. So
a big sync step 2 or a huge single update is sent as several ``[0, 2, update]`` messages, each
a valid V1 update that stock Yjs (and pycrdt/yrs) accepts on its own.

How it splits:

* at struct boundaries: each chunk holds, per client, one contiguous run of structs (struct
  bytes are reused verbatim, via ``memoryview`` slices, never re-encoded);
* a struct that alone does not fit is cut into several items the way Yjs itself writes an item
  at an offset (``Item.write(encoder, offset)``): piece *k* gets id ``(client, clock+off)``,
  origin ``(client, clock+off-1)``, the original right origin and no parent info. Strings are
  cut at UTF-8 character boundaries and measured in UTF-16 code units (a surrogate pair is
  one 4-byte UTF-8 character, so it is never split); Deleted/GC/Skip are cut by length;
  ContentAny/ContentJSON by element. Binary, Embed, Format, Type and Doc contents cannot be
  cut: one such struct larger than the budget raises ``ProtocolError("too-large")``;
* structs are emitted in **causal order** (a struct comes after the structs its origin, right
  origin and parent refer to, when those are in the same update), so a receiver applying the
  chunks in order never has to park pending structs; out-of-order delivery still converges
  because Yjs and yrs keep pending structs until their dependencies arrive;
* the delete set goes with the last chunk(s), split by client and range if needed.

Receivers: stock Yjs accepts the chunks in any order (it parks pending structs and deletions,
but retries the whole pending set on every update, so out-of-order delivery of hundreds of
chunks is slow). yrs/pycrdt 0.14.13 applies them correctly **in order**; a delete set arriving
before the structs it covers can be lost there. y-webrtc data channels are ordered and
reliable, so send the chunks in the returned order on one channel.

Example:
    >>> import pycrdt
    >>> doc = pycrdt.Doc()
    >>> doc["t"] = text = pycrdt.Text()
    >>> text += "x" * 5000
    >>> chunks = split_update(doc.get_update(), 1024)
    >>> all(len(c) <= 1024 for c in chunks), len(chunks) > 4
    (True, True)
    >>> copy = pycrdt.Doc(); copy["t"] = t2 = pycrdt.Text()
    >>> for c in chunks: copy.apply_update(c)
    >>> str(t2) == str(text)
    True
"""

from __future__ import annotations

import gc
from typing import Final, Protocol

from collab.errors import ProtocolError
from collab.lib0 import Decoder, write_var_uint
from collab.lib0 import var_uint_size as ulen
from collab.protocol import encode_sync_step2, encode_update
from collab.yupdate import (
    BIT_ORIGIN,
    BIT_PARENT_SUB,
    BIT_RIGHT_ORIGIN,
    REF_ANY,
    REF_DELETED,
    REF_GC,
    REF_JSON,
    REF_SKIP,
    REF_STRING,
    ParsedUpdate,
    Struct,
    decode_update,
    encode_delete_set,
    utf16_length,
)

__all__ = [
    "SYNC_FRAME_OVERHEAD",
    "UpdateSource",
    "split_update",
    "split_update_messages",
    "step2_messages",
]

SYNC_FRAME_OVERHEAD: Final = 2
"""Bytes of ``[0, syncType]`` before the varUint length prefix of a sync message."""

# A unit is one struct (or piece of one) ready to emit:
# (clock, length, encoded size, cross-client dependency IDs, is_skip, start, end, segment)
# where an original struct is data[start:end] (segment None) and a re-encoded piece carries
# its own bytes in segment.
_Unit = tuple[int, int, int, tuple[tuple[int, int], ...], bool, int, int, "bytes | None"]
_ULEN_STEPS: Final = frozenset(1 << (7 * k) for k in range(1, 8))
"""Counts at which a varUint grows by one byte (128, 16384, ...)."""


def split_update(update: bytes, max_bytes: int) -> list[bytes]:
    """Split ``update`` into valid V1 updates, each at most ``max_bytes`` long.

    Applying all returned updates (in order, or in any order) to a Yjs/pycrdt document has the
    same effect as applying ``update``. An update that already fits is returned unchanged as
    the only element (without being decoded).

    Args:
        update: a Yjs V1 update (e.g. ``Doc.get_update(state_vector)``).
        max_bytes: the largest allowed chunk, in bytes (≥ 1).

    Returns:
        The chunks, dependencies first.

    Raises:
        ProtocolError: ``too-large`` if one unsplittable struct (Binary, Embed, Format, Type,
            Doc content, or a single value of an Any/JSON array, or one character) does not
            fit in ``max_bytes``; decoding codes (``truncated``, ``bad-update``...) if
            ``update`` is malformed.
        ValueError: if ``max_bytes < 1``.

    Example:
        >>> split_update(b"\\x00\\x00", 100)
        [b'\\x00\\x00']
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be ≥ 1, got {max_bytes}")
    if len(update) <= max_bytes:
        return [bytes(update)]
    # Decoding allocates one small acyclic tuple per struct (a million for a big document);
    # the cyclic GC would rescan them over and over, so pause it for this synchronous call.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        parsed = decode_update(update)
        return _Splitter(parsed, max_bytes).run()
    finally:
        if gc_was_enabled:
            gc.enable()


def split_update_messages(
    update: bytes, max_message_size: int, *, as_step2: bool = False
) -> list[bytes]:
    """Split ``update`` and frame every chunk as a y-protocols sync message.

    Each returned message is ``[0, 2, varUint8Array(chunk)]`` and at most
    ``max_message_size`` bytes. With ``as_step2=True`` (answering a SyncStep1) the **last**
    message is framed as a SyncStep2 ``[0, 1, ...]`` and the others as updates, so a y-webrtc
    peer only marks the connection ``synced`` once everything has arrived.

    Example:
        >>> split_update_messages(b"\\x00\\x00", 65536, as_step2=True)
        [b'\\x00\\x01\\x02\\x00\\x00']

    Raises:
        ProtocolError: as :func:`split_update`.
        ValueError: if ``max_message_size`` leaves no room for a payload.
    """
    budget = max_message_size - SYNC_FRAME_OVERHEAD - ulen(max_message_size)
    if budget < 1:
        raise ValueError(f"max_message_size {max_message_size} is too small")
    chunks = split_update(update, budget)
    messages = [encode_update(chunk) for chunk in chunks]
    if as_step2:
        messages[-1] = encode_sync_step2(chunks[-1])
    return messages


class UpdateSource(Protocol):
    """Anything that can diff itself against a state vector (e.g. ``pycrdt.Doc``)."""

    def get_update(self, state: bytes | None = None) -> bytes:
        """The V1 update holding everything not covered by ``state``."""
        ...


def step2_messages(doc: UpdateSource, state_vector: bytes, max_message_size: int) -> list[bytes]:
    """Answer a remote SyncStep1: ``doc.get_update(state_vector)``, split and framed.

    All messages but the last are ``[0, 2, ...]`` updates and the last is the ``[0, 1, ...]``
    SyncStep2, each at most ``max_message_size`` bytes (see :func:`split_update_messages`).

    Example:
        >>> import pycrdt
        >>> doc = pycrdt.Doc(); doc["t"] = text = pycrdt.Text(); text += "y" * 3000
        >>> messages = step2_messages(doc, b"\\x00", 1024)
        >>> len(messages) > 2 and messages[-1][:2] == b"\\x00\\x01"
        True

    Raises:
        ProtocolError: as :func:`split_update`.
    """
    return split_update_messages(doc.get_update(state_vector), max_message_size, as_step2=True)


class _Chunk:
    """A chunk being filled: per-client runs plus an exact size upper bound."""

    __slots__ = ("ds", "ds_size", "runs", "size")

    def __init__(self) -> None:
        # client -> [start_clock, list of units]
        self.runs: dict[int, tuple[int, list[_Unit]]] = {}
        self.size = 1  # varUint(numClients = 0); the delete set is counted in ds_size
        self.ds: list[tuple[int, list[tuple[int, int]]]] = []
        self.ds_size = 1  # varUint(0): an empty delete set

    @property
    def total(self) -> int:
        return self.size + self.ds_size

    def empty(self) -> bool:
        return not self.runs and not self.ds

    def encode(self, view: memoryview) -> bytes:
        parts: list[bytes | memoryview] = []
        sections = 0
        for client, (_start, units) in self.runs.items():
            lo = 0
            hi = len(units)
            while lo < hi and units[lo][4]:  # leading Skips carry nothing
                lo += 1
            while hi > lo and units[hi - 1][4]:  # trailing Skips too
                hi -= 1
            if lo == hi:
                continue
            sections += 1
            parts.append(write_var_uint(hi - lo))
            parts.append(write_var_uint(client))
            parts.append(write_var_uint(units[lo][0]))
            # consecutive original structs are contiguous in the update: copy them as one slice
            range_start = range_end = -1
            for unit in units[lo:hi]:
                segment = unit[7]
                if segment is None:
                    if unit[5] == range_end:
                        range_end = unit[6]
                        continue
                    if range_end >= 0:
                        parts.append(view[range_start:range_end])
                    range_start, range_end = unit[5], unit[6]
                else:
                    if range_end >= 0:
                        parts.append(view[range_start:range_end])
                        range_start = range_end = -1
                    parts.append(segment)
            if range_end >= 0:
                parts.append(view[range_start:range_end])
        parts.insert(0, write_var_uint(sections))
        parts.append(encode_delete_set(self.ds))
        return b"".join(parts)


class _Splitter:
    def __init__(self, parsed: ParsedUpdate, max_bytes: int) -> None:
        self.parsed = parsed
        self.data = parsed.data
        self.view = memoryview(parsed.data)
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.cur = _Chunk()

    # ------------------------------------------------------------------ driver

    def run(self) -> list[bytes]:
        per_client = [(c.client, self._units(c.client, c.structs)) for c in self.parsed.clients]
        self._emit_causally(per_client)
        self._pack_delete_set()
        if not self.cur.empty() or not self.chunks:
            self.chunks.append(self.cur.encode(self.view))
        return self.chunks

    def _flush(self) -> None:
        self.chunks.append(self.cur.encode(self.view))
        self.cur = _Chunk()

    def _put(self, client: int, unit: _Unit) -> None:
        cur = self.cur
        run = cur.runs.get(client)
        if run is not None:  # fast path: extend this client's run in the current chunk
            cost = unit[2] + (1 if len(run[1]) + 1 in _ULEN_STEPS else 0)
            if cur.size + cur.ds_size + cost <= self.max_bytes:
                run[1].append(unit)
                cur.size += cost
                return
        for attempt in range(2):
            cur = self.cur
            run = cur.runs.get(client)
            if run is None:
                n = len(cur.runs)
                cost = ulen(n + 1) - ulen(n) + 1 + ulen(client) + ulen(unit[0]) + unit[2]
            else:
                count = len(run[1])
                cost = ulen(count + 1) - ulen(count) + unit[2]
            if cur.size + cur.ds_size + cost <= self.max_bytes:
                if run is None:
                    cur.runs[client] = (unit[0], [unit])
                else:
                    run[1].append(unit)
                cur.size += cost
                return
            if attempt == 0 and not cur.empty():
                self._flush()
                continue
            break
        raise ProtocolError(
            "too-large",
            f"struct ({client}, {unit[0]}) needs {cost + 2} bytes > max_bytes {self.max_bytes}",
        )

    def _emit_causally(self, per_client: list[tuple[int, list[_Unit]]]) -> None:
        """Emit units so that each comes after the in-update structs it depends on."""
        frontier = {c.client: c.start_clock for c in self.parsed.clients}
        end = {c.client: c.end_clock for c in self.parsed.clients}
        idx = [0] * len(per_client)
        remaining = sum(len(units) for _, units in per_client)
        put = self._put
        while remaining:
            progressed = False
            for ci, (client, units) in enumerate(per_client):
                i = idx[ci]
                n = len(units)
                while i < n:
                    unit = units[i]
                    blocked = False
                    for dc, dk in unit[3]:
                        f = frontier.get(dc)
                        # blocked only by an in-update struct not emitted yet
                        if f is not None and f <= dk < end[dc]:
                            blocked = True
                            break
                    if blocked:
                        break
                    put(client, unit)
                    i += 1
                if i != idx[ci]:
                    last = units[i - 1]
                    frontier[client] = last[0] + last[1]
                    progressed = True
                    remaining -= i - idx[ci]
                    idx[ci] = i
            if remaining and not progressed:
                # A dependency cycle (not produced by Yjs): emit one unit anyway; the
                # receiver's pending-struct machinery sorts it out.
                for ci, (client, units) in enumerate(per_client):
                    if idx[ci] < len(units):
                        unit = units[idx[ci]]
                        self._put(client, unit)
                        frontier[client] = unit[0] + unit[1]
                        idx[ci] += 1
                        remaining -= 1
                        break

    def _pack_delete_set(self) -> None:
        max_bytes = self.max_bytes
        for client, ranges in self.parsed.delete_set:
            if not ranges:
                continue
            open_ranges: list[tuple[int, int]] | None = None
            for clock, length in ranges:
                cur = self.cur
                while True:
                    rcost = ulen(clock) + ulen(length)
                    if open_ranges is None:
                        n = len(cur.ds)
                        cost = ulen(n + 1) - ulen(n) + ulen(client) + 1 + rcost
                    else:
                        k = len(open_ranges)
                        cost = ulen(k + 1) - ulen(k) + rcost
                    if cur.total + cost <= max_bytes:
                        break
                    if cur.empty():
                        raise ProtocolError(
                            "too-large", f"one delete range needs {cost + 2} bytes > {max_bytes}"
                        )
                    self._flush()
                    cur = self.cur
                    open_ranges = None
                if open_ranges is None:
                    open_ranges = []
                    cur.ds.append((client, open_ranges))
                open_ranges.append((clock, length))
                cur.ds_size += cost

    # ------------------------------------------------------------------ units

    def _units(self, client: int, structs: list[Struct]) -> list[_Unit]:
        units: list[_Unit] = []
        append = units.append
        # overhead of a fresh chunk holding just one struct:
        # numClients(1) + numStructs(1) + client + clock + empty delete set(1)
        limit_base = self.max_bytes - 3 - ulen(client)
        quick_limit = limit_base - 8  # a clock takes at most 8 bytes
        for s in structs:
            clock, length, ref, _info, start, _cs, end, origin, right, parent = s
            size = end - start
            if size > quick_limit and size > limit_base - ulen(clock + length):
                units.extend(self._split_struct(client, s, limit_base - ulen(clock + length)))
                continue
            if (
                (origin is None or origin[0] == client)
                and (right is None or right[0] == client)
                and (parent is None or parent[0] == client)
            ):
                deps: tuple[tuple[int, int], ...] = ()
            else:
                deps = tuple(d for d in (origin, right, parent) if d is not None and d[0] != client)
            append((clock, length, size, deps, ref == REF_SKIP, start, end, None))
        return units

    def _piece_header(self, client: int, s: Struct, offset: int) -> bytes:
        if offset == 0:
            return self.data[s.start : s.content_start]
        info = (s.info & (0x1F | BIT_PARENT_SUB)) | BIT_ORIGIN
        header = [write_var_uint(client), write_var_uint(s.clock + offset - 1)]
        if s.right_origin is not None:
            info |= BIT_RIGHT_ORIGIN
            header += [write_var_uint(s.right_origin[0]), write_var_uint(s.right_origin[1])]
        return bytes([info]) + b"".join(header)

    def _piece_deps(self, client: int, s: Struct, offset: int) -> tuple[tuple[int, int], ...]:
        """Cross-client dependencies (same-client ones are always emitted earlier)."""
        candidates = (s.origin, s.right_origin, s.parent_id) if offset == 0 else (s.right_origin,)
        return tuple(d for d in candidates if d is not None and d[0] != client)

    def _too_large(self, client: int, s: Struct, limit: int, what: str) -> ProtocolError:
        return ProtocolError(
            "too-large",
            f"struct ({client}, {s.clock}) with content ref {s.ref} is {s.end - s.start} bytes "
            f"and {what} cannot fit in max_bytes={self.max_bytes} (struct budget {limit})",
        )

    def _split_struct(self, client: int, s: Struct, limit: int) -> list[_Unit]:
        if s.ref == REF_STRING:
            return self._split_string(client, s, limit)
        if s.ref in (REF_ANY, REF_JSON):
            return self._split_list(client, s, limit)
        if s.ref in (REF_DELETED, REF_GC, REF_SKIP):
            # Only possible when the header itself (e.g. a huge parentSub) is too large.
            raise self._too_large(client, s, limit, "its header")
        raise self._too_large(client, s, limit, "this content type")

    def _split_string(self, client: int, s: Struct, limit: int) -> list[_Unit]:
        data = self.data
        start, end = Decoder(data, s.content_start).skip_var_uint8_array()
        units: list[_Unit] = []
        offset = 0
        b = start
        len_budget = ulen(limit)
        while b < end:
            header = self._piece_header(client, s, offset)
            room = limit - len(header) - len_budget
            e = min(end, b + room) if room > 0 else b
            while b < e < end and (data[e] & 0xC0) == 0x80:  # never cut a UTF-8 sequence
                e -= 1
            if e <= b:
                raise self._too_large(client, s, limit, "one character with its header")
            piece = data[b:e]
            try:
                length = utf16_length(piece.decode("utf-8"))
            except UnicodeDecodeError as err:  # pragma: no cover - validated by decode_update
                raise ProtocolError("bad-utf8", str(err)) from None
            segment = header + write_var_uint(len(piece)) + piece
            deps = self._piece_deps(client, s, offset)
            units.append((s.clock + offset, length, len(segment), deps, False, -1, -1, segment))
            offset += length
            b = e
        if offset != s.length:  # pragma: no cover - decode_update measured the same string
            raise ProtocolError("bad-update", "string length mismatch while splitting")
        return units

    def _split_list(self, client: int, s: Struct, limit: int) -> list[_Unit]:
        data = self.data
        r = Decoder(data, s.content_start)
        count = r.read_var_uint()
        bounds = []
        for _ in range(count):
            lo = r.pos
            if s.ref == REF_ANY:
                r.read_any()
            else:
                r.read_var_string()
            bounds.append((lo, r.pos))
        units: list[_Unit] = []
        i = 0
        while i < count:
            header = self._piece_header(client, s, i)
            room = limit - len(header)
            j = i
            used = 0
            while j < count:
                size = bounds[j][1] - bounds[j][0]
                if used + size + ulen(j + 1 - i) > room:
                    break
                used += size
                j += 1
            if j == i:
                raise self._too_large(client, s, limit, f"value #{i} with its header")
            segment = header + write_var_uint(j - i) + data[bounds[i][0] : bounds[j - 1][1]]
            deps = self._piece_deps(client, s, i)
            units.append((s.clock + i, j - i, len(segment), deps, False, -1, -1, segment))
            i = j
        return units
