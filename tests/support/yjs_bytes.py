"""Hand-made Yjs V1 updates and y-protocols messages for the attacks (lib0 encoding by hand,
so an attack can say exactly which client ids, clocks and sizes it uses).

A struct written here is always one ``ContentString`` item (``info`` ref 4). Without an
origin it names its root type (``parent info 1`` + the root's name); with an origin it
continues after that id. ``tests/hostile/test_toolkit.py`` checks every shape against pycrdt.
"""

from __future__ import annotations

from dataclasses import dataclass

from collab.protocol import encode_awareness, encode_update

__all__ = [
    "StringItem",
    "awareness_message",
    "string_update",
    "update_message",
    "var_string",
    "var_uint",
]

CONTENT_STRING = 4
HAS_ORIGIN = 0x80


def var_uint(n: int) -> bytes:
    """lib0 ``writeVarUint`` (7 bits per byte, little end first), without lib0's upper bound:
    an attacker's encoder must write what ``collab.lib0.write_var_uint`` refuses (2^53 and
    more, overlong forms), so this one is deliberately not the product's codec."""
    if n < 0:
        raise ValueError("var_uint of a negative number")
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def var_string(s: str) -> bytes:
    """lib0 ``writeVarString``: varUint(UTF-8 length) • UTF-8."""
    raw = s.encode()
    return var_uint(len(raw)) + raw


@dataclass(frozen=True)
class StringItem:
    """One inserted string: ``text`` by ``client`` at ``clock``.

    ``origin`` is the id it is inserted after (``None``: at the start of root ``root``).
    ``text`` must be ASCII (Yjs counts clocks in UTF-16 units, Yrs in its own units).
    """

    client: int
    clock: int
    text: str
    root: str = "junk"
    origin: tuple[int, int] | None = None

    def encode(self) -> bytes:
        if not self.text.isascii():
            raise ValueError("StringItem text must be ASCII")
        if self.origin is None:
            head = bytes([CONTENT_STRING]) + var_uint(1) + var_string(self.root)
        else:
            head = (
                bytes([CONTENT_STRING | HAS_ORIGIN])
                + var_uint(self.origin[0])
                + var_uint(self.origin[1])
            )
        return head + var_string(self.text)


def string_update(items: list[StringItem]) -> bytes:
    """A V1 update with one struct per item (distinct clients) and an empty delete set."""
    clients = [item.client for item in items]
    if len(set(clients)) != len(clients):
        raise ValueError("one item per client")
    out = bytearray(var_uint(len(items)))
    for item in items:
        out += var_uint(1) + var_uint(item.client) + var_uint(item.clock) + item.encode()
    out += var_uint(0)  # delete set: no clients
    return bytes(out)


def update_message(update: bytes) -> bytes:
    """``[0, 2, varUint8Array(update)]``."""
    return encode_update(update)


def awareness_message(client: int, clock: int, state: object) -> bytes:
    """``[1, varUint8Array(awareness update)]`` with one entry."""
    from collab.protocol import AwarenessEntry

    return encode_awareness([AwarenessEntry(client, clock, state)])
