"""Seeded generators of hostile inputs for ``test_fuzz.py``: mutated SDP offers, random
candidate objects and signal payloads, mutated y-protocols messages.

Everything is drawn from one ``random.Random`` so a seed reproduces the same inputs (the
base SDP comes from a fresh aiortc offer each run; mutations pick lines by index, so the
structure of every case is the same for a seed). Document content only ever targets the
root ``junk``: the victim checks compare the ``codemirror`` text exactly.
"""

from __future__ import annotations

import random
from typing import Any

from tests.support.yjs_bytes import (
    StringItem,
    awareness_message,
    string_update,
    update_message,
    var_uint,
)

SDP_TOKENS = [
    "",
    "0",
    "-1",
    "99999999999999999999",
    "bogus",
    "actpass",
    "active",
    "passive",
    "holdconn",
    "UDP/DTLS/SCTP",
    "webrtc-datachannel",
    "IN",
    "IP6",
    "IP4",
    "::",
    "0.0.0.0",
    "a=",
    "x" * 300,
    "é🙂",
    "sha-256",
    "ZZ:ZZ",
    "\t",
]
SDP_LINES = [
    "a=candidate:1 1 udp",
    "a=candidate:1 1 udp 5 10.77.0.1 5000 typ host",
    "a=candidate:garbage",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "a=setup:bogus",
    "c=IN IP4",
    "c=",
    "a=mid:",
    "a=mid:1",
    "a=sctp-port:",
    "a=max-message-size:0",
    "a=max-message-size:-5",
    "a=group:BUNDLE 0 1 2",
    "a=fingerprint:sha-1 00",
    "a=ice-ufrag:",
    "a=ice-options:trickle",
    "a=end-of-candidates",
    "m=",
]


def mutate_sdp(rng: random.Random, sdp: str) -> str:
    """1-3 mutations of an SDP: line drops/dups/swaps/truncations, token swaps, inserted
    hostile lines, or the whole text cut short."""
    lines = sdp.rstrip("\r\n").split("\r\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        i = rng.randrange(len(lines))
        if op == 0 and len(lines) > 1:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif op == 3:  # swap one token (of an attribute's value, or of the whole line)
            line = lines[i]
            head, sep, rest = line.partition(":") if line.startswith("a=") else ("", "", line)
            tokens = rest.split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(SDP_TOKENS)
            lines[i] = head + sep + " ".join(tokens)
        elif op == 4:
            lines.insert(i, rng.choice(SDP_LINES))
        elif op == 5:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            text = "\r\n".join(lines)
            return text[: rng.randrange(len(text))]
    return "\r\n".join(lines) + "\r\n"


BASE_CANDIDATE = "candidate:1 1 udp 2130706431 10.77.0.1 5000 typ host generation 0"
ODD_VALUES: list[Any] = [None, 0, -1, 1.5, "0", "", "x" * 100, 10**20, True, [], {}, "1"]


def random_candidate(rng: random.Random) -> Any:
    """A trickled ``candidate`` object: a mutated valid one, or a random JSON value."""
    if rng.random() < 0.15:
        return rng.choice([*ODD_VALUES, BASE_CANDIDATE])
    tokens = BASE_CANDIDATE.split(" ")
    for _ in range(rng.randint(0, 3)):
        k = rng.randrange(len(tokens))
        if rng.random() < 0.3 and len(tokens) > 1:
            del tokens[k]
        else:
            tokens[k] = rng.choice([*SDP_TOKENS, "relay", "srflx", "tcp", "raddr", "999999"])
    candidate: dict[str, Any] = {"candidate": " ".join(tokens)}
    if rng.random() < 0.8:
        candidate["sdpMid"] = rng.choice(["0", "0", "1", *ODD_VALUES])
    if rng.random() < 0.8:
        candidate["sdpMLineIndex"] = rng.choice([0, 0, 1, *ODD_VALUES])
    return candidate


def random_signal(rng: random.Random, sdp: str) -> Any:
    """A malformed ``signal`` object (the envelope is valid, the signal is not)."""
    return rng.choice(
        [
            None,
            "offer",
            [sdp],
            {},
            {"type": "offer"},
            {"type": "offer", "sdp": 12},
            {"type": "offer", "sdp": None},
            {"type": "offer", "sdp": "v=0\r\n" * 20_000},
            {"type": "answer", "sdp": sdp},
            {"type": "renegotiate", "renegotiate": True},
            {"type": "transceiverRequest", "transceiverRequest": {"kind": "audio"}},
            {"type": "candidate"},
            {"type": "pranswer", "sdp": sdp},
            {"type": "rollback"},
            {"type": ["offer"], "sdp": sdp},
        ]
    )


# --------------------------------------------------------------------------- y-protocols


def base_messages(rng: random.Random) -> list[bytes]:
    """Valid messages of every kind (document content only in root ``junk``)."""
    client = rng.getrandbits(31) + 1
    integrable = string_update([StringItem(client, 0, "fuzz" * rng.randint(1, 50))])
    orphan = string_update([StringItem(client + 1, 9, "orphan", origin=(client + 1, 8))])
    sv = var_uint(1) + var_uint(client) + var_uint(3)
    return [
        b"\x00\x00\x01\x00",  # sync step 1, empty state vector
        b"\x00\x00" + var_uint(len(sv)) + sv,  # sync step 1 claiming a client
        b"\x00\x01" + var_uint(len(integrable)) + integrable,  # sync step 2
        update_message(integrable),
        update_message(orphan),
        awareness_message(client, rng.randint(1, 5), {"user": {"name": "fuzz"}}),
        awareness_message(client, 0, None),
        b"\x03",  # query awareness
        b"\x04\x01" + var_uint(4) + b"peer",  # BroadcastChannel-only message
        b"",
    ]


HUGE_VARINTS = [
    var_uint(2**31),
    var_uint(2**53),
    var_uint(2**64),
    b"\xff" * 10 + b"\x01",  # overlong varint
    b"\x80" * 5,  # unterminated varint
]


def mutate_message(rng: random.Random, message: bytes) -> bytes:
    """Corrupt a valid message: flipped/inserted/dropped bytes, truncation, huge claimed
    lengths or overlong varints, appended garbage."""
    data = bytearray(message)
    op = rng.randrange(7)
    if op == 0 and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:
        cut = rng.randrange(len(data) + 1)
        data = data[:cut]
    elif op == 2:
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 16))
    elif op == 3 and len(data) > 2:
        # replace the varint at a header position with a huge or broken one
        at = rng.choice([1, 2]) if len(data) > 3 else 1
        data[at : at + 1] = rng.choice(HUGE_VARINTS)
    elif op == 4:
        data += rng.randbytes(rng.randint(1, 64))
    elif op == 5 and data:
        del data[rng.randrange(len(data))]
    else:
        data = bytearray(data[:1]) + rng.choice(HUGE_VARINTS) + data[1:]
    return bytes(data)


def random_message(rng: random.Random) -> bytes:
    """One data-channel message: a mutated valid one, a valid one, or random bytes (rarely
    large)."""
    roll = rng.random()
    if roll < 0.6:
        return mutate_message(rng, rng.choice(base_messages(rng)))
    if roll < 0.75:
        return rng.choice(base_messages(rng))
    if roll < 0.97:
        return rng.randbytes(rng.randint(1, 2_000))
    return rng.randbytes(rng.randint(100_000, 250_000))
