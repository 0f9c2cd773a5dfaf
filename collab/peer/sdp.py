"""Strict checks of a remote peer's SDP and ICE candidates, before aiortc sees them.

aiortc parses remote descriptions and candidates with ``assert``, blind indexing and bare
``int()`` calls (``aiortc/sdp.py``), so malformed input raises ``AssertionError``,
``KeyError``, ``ValueError``, ``IndexError``, ``AttributeError``, ``TypeError`` or even
``StopIteration``; some shapes parse but break ``setRemoteDescription``/``createAnswer`` or
a background task later. This module accepts only the data-channel sessions that y-webrtc
browsers (Chromium, Firefox, Safari) and aiortc itself produce, and raises
:class:`collab.errors.ProtocolError` for everything else:

* :func:`check_description` — a whole offer/answer (code ``bad-sdp``);
* :func:`parse_candidate` — simple-peer's trickled ``signal.candidate`` object → an aiortc
  ``RTCIceCandidate`` (code ``bad-candidate``);
* :func:`check_candidate` — one candidate attribute value (what :func:`check_description`
  applies to every ``a=candidate:`` line).

The contract (tested by a fuzzer in ``tests/peer/test_sdp.py``): whatever these functions
accept, aiortc 1.16 processes — ``setRemoteDescription``, ``createAnswer``,
``setLocalDescription``, ``addIceCandidate`` — without an exception. Every limit is peer
input, so each is bounded, with its reason next to it. Error messages never echo peer bytes
beyond an attribute name that already passed the name check.

Example:
    >>> from collab.peer.sdp import check_candidate
    >>> check_candidate("1 1 udp 2122260223 10.0.0.1 5000 typ host generation 0")
    '1 1 udp 2122260223 10.0.0.1 5000 typ host generation 0'
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Final

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from collab.errors import ProtocolError

__all__ = [
    "MAX_CANDIDATES",
    "MAX_CANDIDATE_LENGTH",
    "MAX_LINES",
    "MAX_LINE_LENGTH",
    "MAX_SDP_BYTES",
    "check_candidate",
    "check_description",
    "parse_candidate",
]

# ---------------------------------------------------------------------------- limits
MAX_SDP_BYTES: Final = 65_536
"""Default bound of a whole description. A browser's data-channel offer is ~0.5 KB (trickle:
no candidates); a fully gathered one on a busy host stays under ~15 KB."""
MAX_LINES: Final = 160
"""Lines per description: ~18 fixed lines plus at most :data:`MAX_CANDIDATES` candidates,
with room for attributes we do not know yet."""
MAX_LINE_LENGTH: Final = 512
"""Longest line, in characters. The longest real lines are a sha-512 fingerprint (213) and a
Chromium candidate with an mDNS name and all extensions (~200)."""
MAX_CANDIDATES: Final = 64
"""``a=candidate`` lines in one description. Each remote candidate becomes a candidate pair per
local candidate that aioice keeps checking; browsers trickle (0 in the SDP) and a gathered
description of a multi-homed host has a few dozen."""
MAX_CANDIDATE_LENGTH: Final = 512
"""A trickled ``candidate`` string, in characters (same reason as :data:`MAX_LINE_LENGTH`)."""
_MAX_CANDIDATE_TOKENS: Final = 32
"""8 mandatory fields + 12 extension pairs; Chromium sends at most 7 pairs."""
_MAX_FINGERPRINTS: Final = 8
"""``a=fingerprint`` lines (session + media): aiortc sends 3, browsers 1."""
_PREFIX_SLACK: Final = 32
"""Room for an ``a=candidate:`` prefix and surrounding whitespace in a trickled string."""
_MAX_MID_INDEX: Final = 1024
"""Largest accepted ``sdpMLineIndex`` (exclusive); we only ever negotiate index 0."""
_MIN_MESSAGE_SIZE: Final = 16_384
"""Smallest non-zero ``a=max-message-size``: every data-channel stack handles 16 KiB (RFC 8831
§6.6); a peer advertising a few bytes would make the sync room split a document into
millions of messages."""
_MAX_MESSAGE_SIZE: Final = 2**32 - 1
"""Largest ``a=max-message-size`` (Firefox advertises 1073741823)."""

# ---------------------------------------------------------------------------- grammar
_SDP_CHARS = re.compile(r"[\x20-\x7e\r\n]*")
"""Printable ASCII plus line breaks. aiortc splits with ``str.splitlines()``, which also
breaks at \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028 and \\u2029, and ``str.split()`` splits at
every Unicode space: refusing everything else keeps our view of lines and tokens identical
to aiortc's."""
_LINE = re.compile(r"([a-z])=(.*)")
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]"
"""RFC 4566 ``token-char``."""
_MID = re.compile(_TOKEN + r"{1,32}")
"""RFC 5888 ``identification-tag`` (a token); browsers use "0", legacy Chrome "data"."""
_ATTR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}")
_ICE_CHARS = r"[A-Za-z0-9+/]"
_UFRAG = re.compile(_ICE_CHARS + r"{4,256}")
"""RFC 8839 ``ice-ufrag-att``: 4*256 ice-char (aioice checks the same for its own)."""
_PWD = re.compile(_ICE_CHARS + r"{22,256}")
"""RFC 8839 ``ice-pwd-att``: 22*256 ice-char."""
_FOUNDATION = re.compile(_ICE_CHARS + r"{1,32}")
"""RFC 8839 ``foundation``: 1*32 ice-char (aiortc's own are 32 hex digits)."""
_MDNS_HOST = re.compile(r"[a-zA-Z0-9-]{1,63}\.local")
"""aioice's ``MDNS_HOSTNAME_RE``: the names it resolves by mDNS (Chromium: ``<uuid>.local``)."""
_DIGITS = re.compile(r"[0-9]{1,10}")
_BYTES = re.compile(r"[\x21-\x7e]{1,64}")
"""An ICE extension attribute name or value (RFC 8839 ``byte-string``, printable here)."""
_ORIGIN = re.compile(r"[\x21-\x7e]{1,128} [0-9]{1,20} [0-9]{1,20} IN IP[46] [A-Za-z0-9.:\-]{1,255}")
"""``o=<username> <sess-id> <sess-version> IN IP4|IP6 <address>`` (Firefox's user name is
``mozilla...THIS_IS_SDPARTA-<version>``)."""
_TIMING = re.compile(r"[0-9]{1,20} [0-9]{1,20}")
_BANDWIDTH = re.compile(r"[A-Za-z0-9\-]{1,16}:[0-9]{1,10}")
_IP_LITERAL = re.compile(r"[0-9A-Fa-f:.]{2,45}")
"""What may be an IPv4/IPv6 literal: no zone (``%eth0``), prefix or TTL (``/127``)."""
_ICE_OPTIONS = re.compile(r"[A-Za-z0-9+/._\-]{1,32}( [A-Za-z0-9+/._\-]{1,32}){0,7}")
_MSID_SEMANTIC = re.compile(r" ?[A-Za-z0-9_\-]{1,32}( [\x21-\x7e]{1,64}){0,16}")
"""Chromium sends ``a=msid-semantic: WMS`` (note the space), Firefox and aiortc ``WMS *``."""
_SCTPMAP = re.compile(r"([0-9]{1,5}) webrtc-datachannel( [0-9]{1,5})?")
_MEDIA = re.compile(
    r"m=application ([0-9]{1,5}) (?:UDP/DTLS/SCTP webrtc-datachannel|DTLS/SCTP ([0-9]{1,5}))"
)
"""The only media section we accept: RFC 8841 data channels, or the legacy ``DTLS/SCTP
<port>`` form (+ ``a=sctpmap``) that aiortc still answers."""

_FINGERPRINT_SIZES: Final = {
    "sha-1": 20,
    "sha-224": 28,
    "sha-256": 32,
    "sha-384": 48,
    "sha-512": 64,
    "md5": 16,
    "md2": 16,
}
"""RFC 8122 hash functions and their digest sizes in bytes."""
_AIORTC_FINGERPRINTS: Final = frozenset({"sha-256", "sha-384", "sha-512"})
"""``aiortc.rtcdtlstransport.X509_DIGEST_ALGORITHMS``: at least one must be present, else the
DTLS handshake can only fail (``RTCDtlsTransport._validate_peer_identity``)."""
_SETUP: Final = {
    "offer": frozenset({"actpass", "active", "passive"}),
    "answer": frozenset({"active", "passive"}),
}
"""``a=setup`` values per description type. aiortc maps them with ``DTLS_SETUP_ROLE[value]``
(``holdconn`` or anything else: ``KeyError``) and refuses ``actpass`` in an answer."""
_CANDIDATE_TYPES: Final = frozenset({"host", "srflx", "prflx", "relay"})
_TCP_TYPES: Final = frozenset({"active", "passive", "so"})
_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_RTP_ONLY: Final = frozenset(
    {"rtpmap", "fmtp", "rtcp-fb", "ssrc", "ssrc-group", "extmap", "rtcp", "msid"}
)
"""RTP attributes aiortc parses in any media section (``int()``, ``split`` unpacking,
``next()`` without default): never valid in a data-channel section."""
_MEDIA_ONLY: Final = frozenset(
    {"candidate", "end-of-candidates", "mid", "sctp-port", "max-message-size", "sctpmap"}
)
_SESSION_LINES: Final = frozenset("iuepcbtrza")
"""RFC 4566 session-level types after ``v``/``o``/``s`` (``k=`` is obsolete: refused)."""
_MEDIA_LINES: Final = frozenset("icba")
_UNIQUE_LINES: Final = frozenset("iucbtz")
_MAX_OTHER_LINE: Final = 255
"""``i=``/``u=``/``e=``/``p=``/``r=``/``z=`` values: aiortc ignores them; keep them short."""


def _fail(reason: str) -> ProtocolError:
    return ProtocolError("bad-sdp", reason)


# ---------------------------------------------------------------------------- candidates
def _ip_problem(text: str) -> str | None:
    """Why ``text`` is not a usable IPv4/IPv6 unicast literal, or None."""
    if not _IP_LITERAL.fullmatch(text):
        return "not an IP address"
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return "not an IP address"
    if addr.is_unspecified or addr.is_multicast or text == "255.255.255.255":
        return "not a unicast address"
    return None


def _candidate_problem(value: str) -> str | None:
    """Why ``value`` (a candidate attribute without ``candidate:``) is refused, or None."""
    if len(value) > MAX_CANDIDATE_LENGTH:
        return "too long"
    if not _SDP_CHARS.fullmatch(value) or "\r" in value or "\n" in value:
        return "bad characters"
    tokens = value.split(" ")
    if len(tokens) > _MAX_CANDIDATE_TOKENS:
        return "too many fields"
    if len(tokens) < 8 or len(tokens) % 2:
        return "wrong number of fields"
    if "" in tokens:
        return "empty field"
    foundation, component, transport, priority, address, port, typ, kind = tokens[:8]
    if not _FOUNDATION.fullmatch(foundation):
        return "bad foundation"
    if not (_DIGITS.fullmatch(component) and 1 <= int(component) <= 256):
        return "bad component"
    transport = transport.lower()
    if transport not in ("udp", "tcp"):
        return "bad transport"
    if not (_DIGITS.fullmatch(priority) and 1 <= int(priority) < 2**32):
        return "bad priority"
    if not _MDNS_HOST.fullmatch(address) and _ip_problem(address) is not None:
        return "bad address"
    if not (_DIGITS.fullmatch(port) and 1 <= int(port) <= 65535):
        return "bad port"
    if typ != "typ" or kind not in _CANDIDATE_TYPES:
        return "bad type"
    extensions: dict[str, str] = {}
    for i in range(8, len(tokens), 2):
        name, ext = tokens[i], tokens[i + 1]
        if not (_BYTES.fullmatch(name) and _BYTES.fullmatch(ext)):
            return "bad extension"
        if name in extensions:
            return "repeated extension"
        extensions[name] = ext
    raddr, rport, tcptype = (extensions.get(k) for k in ("raddr", "rport", "tcptype"))
    if (raddr is None) != (rport is None):
        return "raddr without rport"
    # (browsers hide the base address as "raddr 0.0.0.0 rport 0")
    if raddr is not None and not (
        raddr in ("0.0.0.0", "::") or _MDNS_HOST.fullmatch(raddr) or _ip_problem(raddr) is None
    ):
        return "bad raddr"
    if rport is not None and not (_DIGITS.fullmatch(rport) and int(rport) <= 65535):
        return "bad rport"
    if (tcptype is not None) != (transport == "tcp") or (
        tcptype is not None and tcptype not in _TCP_TYPES
    ):
        return "bad tcptype"  # RFC 6544: every TCP candidate has one, UDP ones none
    for name in ("generation", "network-id", "network-cost"):
        number = extensions.get(name)
        if number is not None and not _DIGITS.fullmatch(number):
            return f"bad {name}"  # aioice's Candidate.from_sdp int()s "generation"
    ufrag = extensions.get("ufrag")
    if ufrag is not None and not re.fullmatch(_ICE_CHARS + "{1,256}", ufrag):
        return "bad ufrag"
    return None


def check_candidate(value: str) -> str:
    """Check one ICE candidate attribute value (RFC 8839 ``candidate-attribute`` without its
    ``candidate:`` prefix) and return it unchanged.

    Accepted: foundation 1-32 ice-chars, component 1-256, transport ``udp``/``tcp`` (any case,
    Firefox sends ``UDP``), priority 1..2^32-1, an IPv4/IPv6 unicast literal or an mDNS
    ``<name>.local`` host, port 1-65535, ``typ host|srflx|prflx|relay``, then name/value pairs:
    ``raddr``+``rport`` together (``0.0.0.0``/``0`` allowed, as browsers hide the base),
    ``tcptype active|passive|so`` exactly on TCP candidates, numeric ``generation``,
    ``network-id``, ``network-cost``, an ice-char ``ufrag``, other names as printable tokens;
    single spaces, at most :data:`MAX_CANDIDATE_LENGTH` characters.

    Args:
        value: e.g. ``"1 1 udp 2122260223 10.0.0.1 5000 typ host"``.

    Returns:
        ``value``, which ``aiortc.sdp.candidate_from_sdp`` and aioice's
        ``Candidate.from_sdp`` then parse without raising.

    Raises:
        ProtocolError: ``bad-candidate`` with a short reason.

    Example:
        >>> check_candidate("x 1 udp 1 10.0.0.1 0 typ host")
        Traceback (most recent call last):
        ...
        collab.errors.ProtocolError: bad-candidate: bad port
    """
    if not isinstance(value, str):
        raise ProtocolError("bad-candidate", "not a string")
    problem = _candidate_problem(value)
    if problem is not None:
        raise ProtocolError("bad-candidate", problem)
    return value


def parse_candidate(value: Any) -> RTCIceCandidate | None:
    """Parse simple-peer's ``signal.candidate`` object into an aiortc candidate.

    The object is ``{candidate: 'candidate:…', sdpMid, sdpMLineIndex}``. A ``candidate:`` or
    ``a=candidate:`` prefix and surrounding ASCII whitespace are stripped; the value must then
    pass :func:`check_candidate`. ``sdpMid`` is None or a token of up to 32 characters,
    ``sdpMLineIndex`` None or an int in 0..1023; when both are missing the candidate goes to
    mid ``"0"``/index 0 (our only media section). Other keys are ignored.

    Args:
        value: the decoded JSON value of ``signal.candidate``.

    Returns:
        The candidate, or None for end-of-candidates (an empty ``candidate`` string, which
        Firefox trickles).

    Raises:
        ProtocolError: ``bad-candidate`` for anything malformed.

    Example:
        >>> c = parse_candidate({"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 "
        ...                      "typ host generation 0", "sdpMid": "0", "sdpMLineIndex": 0})
        >>> (c.ip, c.port, c.sdpMid)
        ('10.0.0.1', 5000, '0')
        >>> parse_candidate({"candidate": "", "sdpMid": "0"}) is None
        True
    """
    if not isinstance(value, dict):
        raise ProtocolError("bad-candidate", "candidate is not an object")
    line = value.get("candidate")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    if not isinstance(line, str) or len(line) > MAX_CANDIDATE_LENGTH + _PREFIX_SLACK:
        raise ProtocolError("bad-candidate", "candidate string missing or too long")
    if mid is not None and not (isinstance(mid, str) and _MID.fullmatch(mid)):
        raise ProtocolError("bad-candidate", "bad sdpMid")
    if index is not None and not (
        isinstance(index, int) and not isinstance(index, bool) and 0 <= index < _MAX_MID_INDEX
    ):
        raise ProtocolError("bad-candidate", "bad sdpMLineIndex")
    line = line.strip(" \t\r\n")
    if line.startswith("a="):
        line = line[2:]
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    if not line:
        return None
    candidate = candidate_from_sdp(check_candidate(line))
    if mid is None and index is None:
        mid, index = "0", 0
    candidate.sdpMid = mid
    candidate.sdpMLineIndex = index
    return candidate


# ---------------------------------------------------------------------------- descriptions
@dataclass(slots=True)
class _Level:
    """What one level (session or the media section) says about ICE and DTLS."""

    where: str
    ufrag: str | None = None
    pwd: str | None = None
    setup: str | None = None
    fingerprints: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def once(self, name: str) -> None:
        if name in self.seen:
            raise _fail(f"repeated a={name} ({self.where})")
        self.seen.add(name)


def _check_connection(value: str, where: str) -> None:
    """``c=IN IP4|IP6 <address>``: aiortc asserts ``^IN (IP4|IP6) ([^ ]+)$`` and prints the
    address back through ``ipaddress.ip_address`` (``pc.remoteDescription``)."""
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise _fail(f"bad c= ({where})")
    if not _IP_LITERAL.fullmatch(parts[2]):
        raise _fail(f"bad c= address ({where})")
    try:
        addr = ipaddress.ip_address(parts[2])
    except ValueError:
        raise _fail(f"bad c= address ({where})") from None
    if f"IP{addr.version}" != parts[1]:
        raise _fail(f"c= address family mismatch ({where})")


def _check_common_attribute(level: _Level, name: str, value: str | None) -> bool:
    """ICE/DTLS attributes allowed at both levels; True if ``name`` was one of them."""
    if name == "fingerprint":
        if value is None or value.count(" ") != 1:
            raise _fail(f"bad a=fingerprint ({level.where})")
        algorithm, digest = value.split(" ")
        algorithm = algorithm.lower()  # aiortc compares lower-cased
        size = _FINGERPRINT_SIZES.get(algorithm)
        if size is None:
            raise _fail(f"unknown fingerprint algorithm ({level.where})")
        if not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*", digest) or (
            len(digest) != 3 * size - 1
        ):
            raise _fail(f"bad fingerprint value ({level.where})")
        level.fingerprints.append(algorithm)
    elif name == "setup":
        level.once(name)
        if value not in ("actpass", "active", "passive"):
            raise _fail(f"bad a=setup ({level.where})")
        level.setup = value
    elif name == "ice-ufrag":
        level.once(name)
        if value is None or not _UFRAG.fullmatch(value):
            raise _fail(f"bad a=ice-ufrag ({level.where})")
        level.ufrag = value
    elif name == "ice-pwd":
        level.once(name)
        if value is None or not _PWD.fullmatch(value):
            raise _fail(f"bad a=ice-pwd ({level.where})")
        level.pwd = value
    elif name == "ice-options":
        level.once(name)
        if value is None or not _ICE_OPTIONS.fullmatch(value):
            raise _fail(f"bad a=ice-options ({level.where})")
    else:
        return False
    return True


def _check_other_attribute(name: str, where: str) -> None:
    """An attribute aiortc ignores at this level: its name must be a plain token (its value
    is already printable ASCII, bounded by the line length)."""
    if not _ATTR_NAME.fullmatch(name):
        raise _fail(f"bad attribute name ({where})")


def _split_attribute(value: str) -> tuple[str, str | None]:
    """Like aiortc's ``parse_attr``: name up to the first ``:``, value after it (or None)."""
    name, colon, rest = value.partition(":")
    return (name, rest) if colon else (name, None)


def _lines(sdp: Any, max_bytes: int) -> list[str]:
    if not isinstance(sdp, str):
        raise _fail("sdp is not a string")
    if len(sdp) > max_bytes:
        raise _fail(f"sdp longer than {max_bytes} bytes")
    if not _SDP_CHARS.fullmatch(sdp):
        raise _fail("sdp has characters outside printable ASCII")
    text = sdp.replace("\r\n", "\n")
    if "\r" in text:
        raise _fail("bare CR in sdp")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise _fail(f"more than {MAX_LINES} lines")
    return lines


def check_description(
    sdp: Any, kind: str, *, max_bytes: int = MAX_SDP_BYTES, offer_mid: str | None = None
) -> str:
    """Check a remote offer or answer as y-webrtc (simple-peer) sends it; return it with CRLF
    line endings.

    Accepted: ``v=0``, ``o=``, ``s=`` first, one ``t=``, then exactly one media section, the
    data channel (``m=application <port> UDP/DTLS/SCTP webrtc-datachannel`` with
    ``a=sctp-port``, or the legacy ``DTLS/SCTP <port>``), with a ``c=IN IP4|IP6 <literal>``
    at either level, ``a=mid``, ICE credentials (RFC 8839 syntax and lengths), an
    ``a=setup`` (``actpass|active|passive``; an answer ``active|passive``) and at least one
    sha-256/384/512 ``a=fingerprint`` (session or media level, as aiortc merges them), an
    optional ``a=group:BUNDLE <mid>``, ``a=max-message-size`` of 0 or 16 KiB..4 GiB, and
    valid ``a=candidate`` lines (:func:`check_candidate`). RTP attributes, audio/video and
    further sections, control characters, non-ASCII and anything over the limits are refused.
    Attributes aiortc ignores (``a=extmap-allow-mixed``, ``a=msid-semantic``...) pass when
    well-formed.

    Args:
        sdp: the ``sdp`` field of the signal (any JSON value).
        kind: ``"offer"`` or ``"answer"``.
        max_bytes: refuse longer descriptions.
        offer_mid: for an answer, the ``a=mid`` of our offer's data section ("0" for an aiortc
            offer); aiortc refuses an answer whose sections differ from the offer's
            (``ValueError``), so pass it to turn that into ``bad-sdp`` too.

    Returns:
        The description, lines joined with CRLF and a final CRLF.

    Raises:
        ProtocolError: ``bad-sdp`` with a short reason.
        ValueError: if ``kind`` is neither ``"offer"`` nor ``"answer"`` (a caller bug).

    Example:
        >>> offer = "\\r\\n".join([
        ...     "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
        ...     "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
        ...     "a=ice-ufrag:KSPe", "a=ice-pwd:qKbRGU8mJrnzWzAwk/0NosW2",
        ...     "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass",
        ...     "a=mid:0", "a=sctp-port:5000", "a=max-message-size:262144", ""])
        >>> check_description(offer, "offer") == offer
        True
        >>> check_description(offer.replace("actpass", "bogus"), "offer")
        Traceback (most recent call last):
        ...
        collab.errors.ProtocolError: bad-sdp: bad a=setup (media)
    """
    if kind not in _SETUP:
        raise ValueError(f"kind must be 'offer' or 'answer', not {kind!r}")
    lines = _lines(sdp, max_bytes)
    parsed: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_LENGTH:
            raise _fail(f"line {number} longer than {MAX_LINE_LENGTH}")
        match = _LINE.fullmatch(line)
        if match is None:
            raise _fail(f"line {number} is not <type>=<value>")
        parsed.append((match.group(1), match.group(2)))

    # ---- session: v=, o=, s= first (RFC 4566 order), then up to the first m=
    if len(parsed) < 3 or parsed[0] != ("v", "0"):
        raise _fail("does not start with v=0")
    if parsed[1][0] != "o" or not _ORIGIN.fullmatch(parsed[1][1]):
        raise _fail("bad o= line")
    if parsed[2][0] != "s" or not parsed[2][1] or len(parsed[2][1]) > _MAX_OTHER_LINE:
        raise _fail("bad s= line")
    media_at = [i for i, (t, _) in enumerate(parsed) if t == "m"]
    if not media_at:
        raise _fail("no media section")
    if len(media_at) > 1:
        raise _fail("more than one media section")
    session, media = parsed[3 : media_at[0]], parsed[media_at[0] :]

    top = _Level("session")
    counts: dict[str, int] = {}
    bundle: list[str] | None = None
    has_connection = False
    for letter, value in session:
        counts[letter] = counts.get(letter, 0) + 1
        if letter not in _SESSION_LINES:
            raise _fail(f"{letter}= line not allowed in the session")
        if letter in _UNIQUE_LINES and counts[letter] > 1:
            raise _fail(f"repeated {letter}= line")
        if letter == "t":
            if not _TIMING.fullmatch(value):
                raise _fail("bad t= line")
        elif letter == "c":
            _check_connection(value, "session")
            has_connection = True
        elif letter == "b":
            if not _BANDWIDTH.fullmatch(value):
                raise _fail("bad b= line")
        elif letter == "a":
            name, attr = _split_attribute(value)
            if _check_common_attribute(top, name, attr):
                continue
            if name == "group":
                # aiortc moves every BUNDLE member but the first onto the first one's
                # transport; a group naming other mids detaches the SCTP transport
                # (setTransport(None)) and createAnswer crashes.
                if attr is None or attr.split(" ")[0] != "BUNDLE":
                    raise _fail("bad a=group (only BUNDLE)")
                if bundle is not None:
                    raise _fail("repeated a=group:BUNDLE")
                bundle = attr.split(" ")[1:]
            elif name == "msid-semantic":
                if attr is None or not _MSID_SEMANTIC.fullmatch(attr):
                    raise _fail("bad a=msid-semantic")
            elif name == "ice-lite":
                if attr is not None:
                    raise _fail("bad a=ice-lite")
            elif name in _MEDIA_ONLY or name in _RTP_ONLY:
                raise _fail(f"a={name} at session level")
            else:
                _check_other_attribute(name, "session")
        elif len(value) > _MAX_OTHER_LINE:
            raise _fail(f"{letter}= line too long")
    if counts.get("t") != 1:
        raise _fail("needs exactly one t= line")

    # ---- the media section
    match = _MEDIA.fullmatch(f"m={media[0][1]}")
    if match is None:
        if not media[0][1].startswith("application "):
            raise _fail("not a data-channel media section")
        raise _fail("bad m= line")
    legacy_port = match.group(2)
    if not 1 <= int(match.group(1)) <= 65535:
        raise _fail("bad m= port")
    low = _Level("media")
    mid: str | None = None
    sctp_port: int | None = None
    sctpmap: str | None = None
    candidates = 0
    counts = {}
    for letter, value in media[1:]:
        counts[letter] = counts.get(letter, 0) + 1
        if letter not in _MEDIA_LINES:
            raise _fail(f"{letter}= line not allowed in the media section")
        if letter in _UNIQUE_LINES and counts[letter] > 1:
            raise _fail(f"repeated {letter}= line in the media section")
        if letter == "c":
            _check_connection(value, "media")
            has_connection = True
        elif letter == "b":
            if not _BANDWIDTH.fullmatch(value):
                raise _fail("bad b= line")
        elif letter == "i":
            if len(value) > _MAX_OTHER_LINE:
                raise _fail("i= line too long")
        else:
            name, attr = _split_attribute(value)
            if _check_common_attribute(low, name, attr):
                continue
            if name == "candidate":
                candidates += 1
                if candidates > MAX_CANDIDATES:
                    raise _fail(f"more than {MAX_CANDIDATES} candidates")
                problem = "missing" if attr is None else _candidate_problem(attr)
                if problem is not None:
                    raise _fail(f"a=candidate: {problem}")
            elif name == "mid":
                low.once(name)
                if attr is None or not _MID.fullmatch(attr):
                    raise _fail("bad a=mid")
                mid = attr
            elif name == "sctp-port":
                low.once(name)
                if attr is None or not (_DIGITS.fullmatch(attr) and 1 <= int(attr) <= 65535):
                    raise _fail("bad a=sctp-port")
                sctp_port = int(attr)
            elif name == "max-message-size":
                low.once(name)
                if attr is None or not _DIGITS.fullmatch(attr):
                    raise _fail("bad a=max-message-size")
                size = int(attr)
                if size != 0 and not _MIN_MESSAGE_SIZE <= size <= _MAX_MESSAGE_SIZE:
                    raise _fail("a=max-message-size out of range")
            elif name == "sctpmap":
                low.once(name)
                found = None if attr is None else _SCTPMAP.fullmatch(attr)
                if found is None:
                    raise _fail("bad a=sctpmap")
                sctpmap = found.group(1)
            elif name in _DIRECTIONS or name in ("end-of-candidates", "rtcp-mux"):
                low.once("direction" if name in _DIRECTIONS else name)
                if attr is not None:
                    raise _fail(f"bad a={name}")
            elif name in _RTP_ONLY:
                raise _fail(f"a={name} in a data-channel section")
            else:
                _check_other_attribute(name, "media")

    # ---- what the section needs, merged across levels as aiortc does
    if not has_connection:
        raise _fail("no c= line")
    if mid is None:
        raise _fail("no a=mid")
    if bundle is not None and bundle != [mid]:
        raise _fail("a=group:BUNDLE does not name exactly the data section")
    if kind == "answer" and offer_mid is not None and mid != offer_mid:
        raise _fail("answer mid differs from the offer's")
    if legacy_port is None:
        if sctp_port is None:
            raise _fail("no a=sctp-port")
    elif not 1 <= int(legacy_port) <= 65535 or (sctpmap is not None and sctpmap != legacy_port):
        raise _fail("bad legacy SCTP port")
    if (low.ufrag or top.ufrag) is None or (low.pwd or top.pwd) is None:
        raise _fail("missing a=ice-ufrag or a=ice-pwd")
    setup = low.setup or top.setup
    if setup is None:
        raise _fail("missing a=setup")
    if setup not in _SETUP[kind]:
        raise _fail(f"a=setup:{setup} in an {kind}")
    fingerprints = top.fingerprints + low.fingerprints
    if len(fingerprints) > _MAX_FINGERPRINTS:
        raise _fail("too many a=fingerprint lines")
    if not _AIORTC_FINGERPRINTS.intersection(fingerprints):
        raise _fail("no sha-256/384/512 a=fingerprint")
    return "\r\n".join(lines) + "\r\n"
