"""Strict lib0 encoding/decoding: varUint, varInt, varString, varUint8Array, writeAny/readAny.

Byte-compatible with the npm package ``lib0`` (``encoding.js`` / ``decoding.js``) that Yjs,
y-protocols and y-webrtc use. Unlike pycrdt's ``Decoder`` (which silently truncates), every
read here is bounds-checked and raises :class:`collab.errors.ProtocolError` on malformed,
truncated or oversized input.

Example:
    >>> from collab.lib0 import encode_any, decode_any
    >>> decode_any(encode_any({"type": "announce", "from": "p1"}))
    {'type': 'announce', 'from': 'p1'}
"""

from __future__ import annotations

import math
import struct
from typing import Any, Final

from collab.errors import ProtocolError

__all__ = [
    "MAX_SAFE_INTEGER",
    "UNDEFINED",
    "Decoder",
    "Encoder",
    "Undefined",
    "decode_any",
    "encode_any",
    "read_var_uint_at",
    "utf8_encode",
    "var_uint_size",
    "write_var_uint",
]

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``: lib0 refuses varUints above it."""

BITS31: Final = 2**31 - 1
_MAX_VAR_UINT_BYTES: Final = 8  # 8 × 7 = 56 bits ≥ 53
MAX_ANY_DEPTH: Final = 64
"""Nesting limit for ``readAny`` (arrays/objects), to bound recursion on untrusted input."""


class Undefined:
    """JavaScript ``undefined`` (lib0 ``writeAny`` tag 127). Use the singleton :data:`UNDEFINED`."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = Undefined()


def write_var_uint(num: int) -> bytes:
    """Encode a non-negative integer ≤ 2^53-1 as a lib0 varUint.

    Example:
        >>> write_var_uint(300).hex()
        'ac02'
    """
    if num < 0 or num > MAX_SAFE_INTEGER:
        raise ValueError(f"varUint must be in [0, 2^53-1], got {num}")
    out = bytearray()
    while num > 0x7F:
        out.append(0x80 | (num & 0x7F))
        num >>= 7
    out.append(num)
    return bytes(out)


def var_uint_size(num: int) -> int:
    """Bytes ``num`` takes as a varUint (what :func:`write_var_uint` would return).

    Example:
        >>> var_uint_size(127), var_uint_size(128), len(write_var_uint(2**53 - 1))
        (1, 2, 8)
    """
    return (num.bit_length() + 6) // 7 or 1


def read_var_uint_at(data: bytes, pos: int) -> tuple[int, int]:
    """Read the varUint at ``data[pos]``; return ``(value, position after it)``.

    The one varUint reader: :meth:`Decoder.read_var_uint` and the Yjs update scanner's hot
    loop (``collab.yupdate``) both use it.

    Raises:
        ProtocolError: ``truncated`` past the end, ``overflow`` above 2^53-1 or over 8 bytes.

    Example:
        >>> read_var_uint_at(bytes([0x05, 0xAC, 0x02]), 1)
        (300, 3)
    """
    try:
        b = data[pos]
        pos += 1
        if b < 0x80:
            return b, pos
        num = b & 0x7F
        shift = 7
        while True:
            b = data[pos]
            pos += 1
            num |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift >= 7 * _MAX_VAR_UINT_BYTES:
                raise ProtocolError("overflow", "varUint longer than 8 bytes")
    except IndexError:
        raise ProtocolError("truncated", "input ends inside a varUint") from None
    if num > MAX_SAFE_INTEGER:
        raise ProtocolError("overflow", "varUint above 2^53-1")
    return num, pos


def utf8_encode(text: str) -> bytes:
    """UTF-8 bytes of ``text`` exactly as JavaScript's ``TextEncoder`` produces them.

    A surrogate pair (two code points, e.g. from JSON ``"\\ud83d\\ude00"``) becomes one
    4-byte character and a lone surrogate becomes U+FFFD (``ef bf bd``).

    Example:
        >>> utf8_encode("a\\ud800").hex()
        '61efbfbd'
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        utf16 = text.encode("utf-16-le", "surrogatepass")
        return utf16.decode("utf-16-le", "replace").encode("utf-8")


class Encoder:
    """An append-only lib0 encoder.

    Example:
        >>> e = Encoder(); e.write_var_string("héllo"); e.to_bytes().hex()
        '0668c3a96c6c6f'
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def to_bytes(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)

    def write_uint8(self, value: int) -> None:
        """Write one byte."""
        self._buf.append(value & 0xFF)

    def write_bytes(self, data: bytes) -> None:
        """Write raw bytes (no length prefix)."""
        self._buf += data

    def write_var_uint(self, num: int) -> None:
        """Write a varUint (7 bits per byte, LSB first)."""
        self._buf += write_var_uint(num)

    def write_var_int(self, num: int) -> None:
        """Write a lib0 varInt (first byte: continue bit, sign bit, 6 value bits)."""
        negative = num < 0
        if negative:
            num = -num
        if num > MAX_SAFE_INTEGER:
            raise ValueError(f"varInt magnitude must be ≤ 2^53-1, got {num}")
        self._buf.append((0x80 if num > 0x3F else 0) | (0x40 if negative else 0) | (num & 0x3F))
        num >>= 6
        while num > 0:
            self._buf.append((0x80 if num > 0x7F else 0) | (num & 0x7F))
            num >>= 7

    def write_var_uint8_array(self, data: bytes) -> None:
        """Write a length-prefixed byte array."""
        self.write_var_uint(len(data))
        self._buf += data

    def write_var_string(self, text: str) -> None:
        """Write a varString: varUint(UTF-8 byte length) then the UTF-8 bytes.

        Lone surrogates are replaced by U+FFFD, as JavaScript's ``TextEncoder`` does.
        """
        self.write_var_uint8_array(utf8_encode(text))

    def write_float32(self, value: float) -> None:
        """Write a big-endian IEEE-754 float32."""
        self._buf += struct.pack(">f", value)

    def write_float64(self, value: float) -> None:
        """Write a big-endian IEEE-754 float64."""
        self._buf += struct.pack(">d", value)

    def write_big_int64(self, value: int) -> None:
        """Write a big-endian signed 64-bit integer."""
        self._buf += struct.pack(">q", value)

    def write_any(self, value: Any) -> None:
        """Write a value the way lib0 ``writeAny`` writes the equivalent JavaScript value.

        Mapping: ``str``→119, ``bool``→120/121, ``None``→126, :data:`UNDEFINED`→127,
        ``bytes``→116, ``list``/``tuple``→117, ``dict`` (string keys)→118. Numbers follow
        JavaScript: an integral value with \\|n\\| ≤ 2^31-1 → 125 (varInt); otherwise 124 if
        exactly representable as float32, else 123 (float64). A Python ``int`` that is not a
        safe JavaScript integer (\\|n\\| > 2^53-1) becomes a BigInt (122).

        Raises:
            ValueError: for unsupported types or integers outside int64.
        """
        self._write_any(value, 0)

    def _write_any(self, value: Any, depth: int) -> None:
        if depth > MAX_ANY_DEPTH:
            raise ValueError(f"value nested deeper than {MAX_ANY_DEPTH}")
        if isinstance(value, str):
            self.write_uint8(119)
            self.write_var_string(value)
        elif isinstance(value, bool):
            self.write_uint8(120 if value else 121)
        elif isinstance(value, int):
            if abs(value) <= BITS31:
                self.write_uint8(125)
                self.write_var_int(value)
            elif abs(value) <= MAX_SAFE_INTEGER:
                self._write_number(float(value))
            elif -(2**63) <= value < 2**63:
                self.write_uint8(122)
                self.write_big_int64(value)
            else:
                raise ValueError(f"integer {value} does not fit lib0 BigInt64")
        elif isinstance(value, float):
            self._write_number(value)
        elif value is None:
            self.write_uint8(126)
        elif value is UNDEFINED:
            self.write_uint8(127)
        elif isinstance(value, bytes | bytearray | memoryview):
            self.write_uint8(116)
            self.write_var_uint8_array(bytes(value))
        elif isinstance(value, list | tuple):
            self.write_uint8(117)
            self.write_var_uint(len(value))
            for item in value:
                self._write_any(item, depth + 1)
        elif isinstance(value, dict):
            self.write_uint8(118)
            self.write_var_uint(len(value))
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"object keys must be str, got {type(key).__name__}")
                self.write_var_string(key)
                self._write_any(item, depth + 1)
        else:
            raise ValueError(f"writeAny cannot encode {type(value).__name__}")

    def _write_number(self, value: float) -> None:
        if math.isfinite(value) and value.is_integer() and abs(value) <= BITS31:
            self.write_uint8(125)
            if value == 0 and math.copysign(1.0, value) < 0:
                self.write_uint8(0x40)  # JavaScript -0
            else:
                self.write_var_int(int(value))
        elif _is_float32(value):
            self.write_uint8(124)
            self.write_float32(value)
        else:
            self.write_uint8(123)
            self.write_float64(value)


def _is_float32(value: float) -> bool:
    try:
        back: float = struct.unpack(">f", struct.pack(">f", value))[0]
    except OverflowError:
        return False
    return back == value  # NaN != NaN, as in JavaScript


class Decoder:
    """A strict lib0 decoder over one message.

    Every method raises :class:`ProtocolError` instead of reading past the end.

    Example:
        >>> d = Decoder(bytes([0xAC, 0x02])); d.read_var_uint(), d.done
        (300, True)
    """

    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self.pos = pos

    @property
    def data(self) -> bytes:
        """The whole input (positions index into it)."""
        return self._data

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self._data) - self.pos

    @property
    def done(self) -> bool:
        """True once every byte has been read."""
        return self.pos >= len(self._data)

    def expect_done(self) -> None:
        """Raise ``ProtocolError('trailing-bytes')`` unless every byte was consumed."""
        if not self.done:
            raise ProtocolError("trailing-bytes", f"{self.remaining} unread bytes")

    def read_uint8(self) -> int:
        """Read one byte."""
        if self.pos >= len(self._data):
            raise ProtocolError("truncated", "expected a byte")
        value = self._data[self.pos]
        self.pos += 1
        return value

    def read_bytes(self, n: int) -> bytes:
        """Read exactly ``n`` bytes."""
        if n < 0 or n > self.remaining:
            raise ProtocolError("truncated", f"wanted {n} bytes, {self.remaining} left")
        out = self._data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_var_uint(self) -> int:
        """Read a varUint ≤ 2^53-1 (lib0's limit)."""
        num, self.pos = read_var_uint_at(self._data, self.pos)
        return num

    def read_count(self, what: str, min_bytes: int = 1) -> int:
        """Read a varUint count of things that take at least ``min_bytes`` each, refusing a
        count the rest of the input cannot hold (so a loop over it is bounded by the input).

        Example:
            >>> Decoder(bytes([2, 0, 0])).read_count("items")
            2
        """
        n = self.read_var_uint()
        if n * min_bytes > len(self._data) - self.pos:
            raise ProtocolError("truncated", f"{what}: {n} claimed, {self.remaining} bytes left")
        return n

    def read_var_int(self) -> int:
        """Read a lib0 varInt (magnitude ≤ 2^53-1)."""
        byte = self.read_uint8()
        num = byte & 0x3F
        negative = bool(byte & 0x40)
        shift = 6
        count = 1
        while byte & 0x80:
            if count >= _MAX_VAR_UINT_BYTES:
                raise ProtocolError("overflow", "varInt longer than 8 bytes")
            byte = self.read_uint8()
            num |= (byte & 0x7F) << shift
            shift += 7
            count += 1
        if num > MAX_SAFE_INTEGER:
            raise ProtocolError("overflow", "varInt above 2^53-1")
        return -num if negative else num

    def read_var_uint8_array(self) -> bytes:
        """Read a length-prefixed byte array."""
        return self.read_bytes(self.read_var_uint())

    def skip_var_uint8_array(self) -> tuple[int, int]:
        """Skip a length-prefixed byte array; return its payload's ``(start, end)`` offsets."""
        n = self.read_var_uint()
        start = self.pos
        if n > len(self._data) - start:
            raise ProtocolError("truncated", f"byte array of {n} bytes, {self.remaining} left")
        self.pos = start + n
        return start, self.pos

    def read_var_string(self) -> str:
        """Read a varString (strict UTF-8)."""
        raw = self.read_var_uint8_array()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("bad-utf8", str(e)) from None

    def read_float32(self) -> float:
        """Read a big-endian float32."""
        value: float = struct.unpack(">f", self.read_bytes(4))[0]
        return value

    def read_float64(self) -> float:
        """Read a big-endian float64."""
        value: float = struct.unpack(">d", self.read_bytes(8))[0]
        return value

    def read_big_int64(self) -> int:
        """Read a big-endian signed int64."""
        value: int = struct.unpack(">q", self.read_bytes(8))[0]
        return value

    def read_any(self) -> Any:
        """Read a value written by lib0 ``writeAny`` (all tags 116–127).

        Returns ``str``, ``int`` (tags 125, 122), ``float`` (124, 123, and ``-0.0`` for
        JavaScript's ``-0`` written as tag 125), ``bool``, ``None``, :data:`UNDEFINED`,
        ``bytes``, ``list`` or ``dict``.
        """
        return self._read_any(0)

    def _read_any(self, depth: int) -> Any:
        if depth > MAX_ANY_DEPTH:
            raise ProtocolError("too-deep", f"readAny nested deeper than {MAX_ANY_DEPTH}")
        tag = self.read_uint8()
        if tag == 119:
            return self.read_var_string()
        if tag == 125:
            if self.remaining and self._data[self.pos] == 0x40:  # JavaScript -0
                self.pos += 1
                return -0.0
            return self.read_var_int()
        if tag == 123:
            return self.read_float64()
        if tag == 124:
            return self.read_float32()
        if tag == 118:
            n = self.read_count("object keys")
            obj: dict[str, Any] = {}
            for _ in range(n):
                key = self.read_var_string()
                obj[key] = self._read_any(depth + 1)
            return obj
        if tag == 117:
            n = self.read_count("array items")
            return [self._read_any(depth + 1) for _ in range(n)]
        if tag == 120:
            return True
        if tag == 121:
            return False
        if tag == 126:
            return None
        if tag == 127:
            return UNDEFINED
        if tag == 116:
            return self.read_var_uint8_array()
        if tag == 122:
            return self.read_big_int64()
        raise ProtocolError("unknown-type", f"readAny tag {tag}")


def encode_any(value: Any) -> bytes:
    """Encode one value with lib0 ``writeAny``.

    Example:
        >>> encode_any(None)
        b'~'
    """
    encoder = Encoder()
    encoder.write_any(value)
    return encoder.to_bytes()


def decode_any(data: bytes) -> Any:
    """Decode one ``writeAny`` value that must span all of ``data``.

    Raises:
        ProtocolError: malformed, truncated, or with trailing bytes.
    """
    decoder = Decoder(data)
    value = decoder.read_any()
    decoder.expect_done()
    return value
