"""collab.peer.sdp: real corpora are accepted, known bad input is refused, and a fuzzer holds the
contract "ProtocolError, or aiortc processes it without any exception".

Corpora (tests/data/sdp/): Chromium's real simple-peer offers/answers/trickled candidates
(``chromium-*``, captured by ``capture_chromium.py``), hand-written Firefox/Safari/legacy shapes
(``handwritten-*``), and aiortc 1.16's own offers/answers, made in-process here.

Run inside the namespace (aiortc gathers real host candidates there)::

    PYTHONPATH=$PWD scripts/netns-run .venv/bin/python -m pytest tests/peer/test_sdp.py -q

A longer fuzz: add ``--hypothesis-profile=long`` (5,000 examples per fuzzer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import doctest
import json
import os
import random
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aioice.ice
import pytest
from aioice import Candidate
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import collab.peer.sdp
from collab.errors import ProtocolError
from collab.peer.sdp import (
    MAX_CANDIDATES,
    MAX_LINES,
    check_candidate,
    check_description,
    parse_candidate,
)

T = TypeVar("T")
DATA = Path(__file__).resolve().parents[1] / "data" / "sdp"
LABEL = "0123456789abcdef0123456789abcdef01234567"  # simple-peer: 20 random bytes as hex
IN_NETNS = os.environ.get("COLLAB_NETNS") == "1"


class _FakeMdns:
    """Stands in for aioice's shared mDNS socket (UDP 5353): resolves names at once, so
    ``.local`` candidates exercise aioice's resolved path without multicast or timeouts."""

    async def resolve(self, hostname: str, timeout: float | None = 1.0) -> str | None:
        return "127.0.0.1" if hostname[0] in "0123456789abcdef" else None


async def _get_mdns(subscriber: object) -> _FakeMdns:
    return _FakeMdns()


async def _unref_mdns(subscriber: object) -> None:
    return None


def _loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the module (aiortc is asyncio-only; the fuzzers run every example on
    it), with instant mDNS and, outside the namespace, ICE on 127.0.0.1 only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioice.ice, "get_or_create_mdns_protocol", _get_mdns)
        patch.setattr(aioice.ice, "unref_mdns_protocol", _unref_mdns)
        if not IN_NETNS:
            patch.setattr(aioice.ice, "get_host_addresses", _loopback)
        loop = asyncio.new_event_loop()
        try:
            yield loop
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


# ---------------------------------------------------------------------------- aiortc harness
def _new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@contextlib.asynccontextmanager
async def _no_background_errors() -> AsyncIterator[None]:
    """Fail if a task aiortc started in the background (``__connect``, ICE checks, DTLS, SCTP)
    died with an exception, or a callback raised: the contract covers those too, not only the
    awaited calls. Every task created meanwhile is kept, awaited after ``close()`` and asked
    for its exception."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    errors: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        tasks.append(task)
        return task

    loop.set_task_factory(factory)
    loop.set_exception_handler(
        lambda _loop, context: errors.append(str(context.get("exception") or context))
    )
    try:
        yield
        while pending := [t for t in tasks if not t.done()]:
            done, _ = await asyncio.wait(pending, timeout=10)
            if not done:
                errors.append(f"{len(pending)} tasks still running after close()")
                break
    finally:
        loop.set_task_factory(None)
        loop.set_exception_handler(None)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            errors.append(f"{task.get_coro()}: {task.exception()!r}")
    assert not errors, errors


async def apply_offer(sdp: str) -> None:
    """What RemotePeer does with a remote offer: answer it."""
    async with _no_background_errors():
        pc = _new_pc()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            assert pc.remoteDescription.sdp and pc.localDescription.sdp  # both print back
        finally:
            await pc.close()


async def apply_answer(sdp: str) -> None:
    """What RemotePeer does with an answer to its own (aiortc) offer."""
    async with _no_background_errors():
        pc = _new_pc()
        try:
            pc.createDataChannel(LABEL)
            await pc.setLocalDescription(await pc.createOffer())
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            assert pc.remoteDescription.sdp
        finally:
            await pc.close()


async def apply_candidate(offer: str, candidate: RTCIceCandidate | None) -> None:
    """Add a trickled candidate to a connection that answered ``offer``."""
    async with _no_background_errors():
        pc = _new_pc()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await pc.addIceCandidate(candidate)
        finally:
            await pc.close()


# ---------------------------------------------------------------------------- corpora
@dataclass(frozen=True)
class Sdp:
    name: str
    kind: str
    text: str


def _files() -> list[Sdp]:
    return [
        Sdp(p.name, "answer" if "answer" in p.name else "offer", p.read_bytes().decode())
        for p in sorted(DATA.glob("*.sdp"))
    ]


FILES = _files()
CHROMIUM_OFFER = (DATA / "chromium-plain-offer.sdp").read_bytes().decode()


def _candidate_objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(DATA.glob("chromium-*-candidates.json")):
        captured = json.loads(path.read_text())
        for key in ("initiator", "responder", "aiortcResponder"):
            out += captured[key]
    out += json.loads((DATA / "handwritten-candidates.json").read_text())["valid"]
    return out


CANDIDATES = _candidate_objects()


@pytest.fixture(scope="module")
def aiortc_corpus(loop: asyncio.AbstractEventLoop) -> list[Sdp]:
    """aiortc 1.16's own descriptions: offer, its answer to that offer, to Chromium's offer and to
    the legacy ``DTLS/SCTP`` form."""
    return loop.run_until_complete(_aiortc_corpus())


async def _aiortc_corpus() -> list[Sdp]:
    out: list[Sdp] = []
    offerer, answerer = _new_pc(), _new_pc()
    try:
        offerer.createDataChannel(LABEL)
        await offerer.setLocalDescription(await offerer.createOffer())
        out.append(Sdp("aiortc-offer", "offer", offerer.localDescription.sdp))
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        out.append(Sdp("aiortc-answer", "answer", answerer.localDescription.sdp))
    finally:
        await offerer.close()
        await answerer.close()
    for name in ("chromium-plain-offer.sdp", "handwritten-chrome-legacy-offer.sdp"):
        pc = _new_pc()
        try:
            offer = (DATA / name).read_bytes().decode()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            out.append(Sdp(f"aiortc-answer-to-{name}", "answer", pc.localDescription.sdp))
        finally:
            await pc.close()
    return out


def _apply(kind: str) -> Callable[[str], Any]:
    return apply_offer if kind == "offer" else apply_answer


def test_corpus_files_are_there() -> None:
    names = {s.name for s in FILES}
    for who in ("chromium-plain", "chromium-mdns"):
        for what in ("offer", "answer", "answer-to-aiortc", "offer-gathered"):
            assert f"{who}-{what}.sdp" in names
    assert any(n.startswith("handwritten-firefox") for n in names)
    assert any(n.startswith("handwritten-safari") for n in names)
    assert any(".local " in c["candidate"] for c in CANDIDATES)  # Chromium's mDNS names


@pytest.mark.parametrize("sdp", FILES, ids=lambda s: s.name)
def test_real_descriptions_are_accepted_and_aiortc_processes_them(
    sdp: Sdp, loop: asyncio.AbstractEventLoop
) -> None:
    checked = check_description(sdp.text, sdp.kind, offer_mid="0")
    assert checked.replace("\r\n", "\n") == sdp.text.replace("\r\n", "\n")
    loop.run_until_complete(_apply(sdp.kind)(checked))


def test_aiortc_descriptions_are_accepted(
    aiortc_corpus: list[Sdp], loop: asyncio.AbstractEventLoop
) -> None:
    for sdp in aiortc_corpus:
        offer_mid = "data" if "legacy" in sdp.name else "0"
        checked = check_description(sdp.text, sdp.kind, offer_mid=offer_mid)
        assert checked == sdp.text, sdp.name  # aiortc already writes CRLF
        if offer_mid == "0":
            loop.run_until_complete(_apply(sdp.kind)(checked))


@pytest.mark.parametrize("value", CANDIDATES, ids=lambda c: c["candidate"][:40] or "end")
def test_real_candidates_are_accepted_and_aiortc_adds_them(
    value: dict[str, Any], loop: asyncio.AbstractEventLoop
) -> None:
    candidate = parse_candidate(value)
    assert (candidate is None) == (value["candidate"] == "")
    if candidate is not None:
        line = value["candidate"].removeprefix("a=").removeprefix("candidate:")
        assert check_candidate(line) == line
        Candidate.from_sdp(line)
        assert (candidate.sdpMid, candidate.sdpMLineIndex) in (("0", 0), ("data", None), (None, 0))
    loop.run_until_complete(apply_candidate(CHROMIUM_OFFER, candidate))


def test_in_sdp_candidates_of_aiortc_are_accepted(aiortc_corpus: list[Sdp]) -> None:
    lines = [
        line.removeprefix("a=candidate:")
        for sdp in aiortc_corpus
        for line in sdp.text.splitlines()
        if line.startswith("a=candidate:")
    ]
    assert lines
    for line in lines:
        assert check_candidate(line) == line


def test_module_doctests() -> None:
    assert doctest.testmod(collab.peer.sdp).failed == 0


def test_line_endings_are_normalised() -> None:
    lf = CHROMIUM_OFFER.replace("\r\n", "\n")
    assert check_description(lf, "offer") == CHROMIUM_OFFER
    assert check_description(CHROMIUM_OFFER.rstrip("\r\n"), "offer") == CHROMIUM_OFFER


def test_kind_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        check_description(CHROMIUM_OFFER, "pranswer")


# ---------------------------------------------------------------------------- known bad input
def _replace(old: str, new: str, base: str = CHROMIUM_OFFER) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def _insert_after(anchor: str, line: str, base: str = CHROMIUM_OFFER) -> str:
    return _replace(anchor + "\r\n", anchor + "\r\n" + line + "\r\n", base)


def _drop(prefix: str, base: str = CHROMIUM_OFFER) -> str:
    lines = base.split("\r\n")
    kept = [line for line in lines if not line.startswith(prefix)]
    assert len(kept) < len(lines), prefix
    return "\r\n".join(kept)


AUDIO = "\r\n".join(
    [
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "",
    ]
)
GOOD_CANDIDATE = "a=candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host"


def _line(prefix: str, base: str = CHROMIUM_OFFER) -> str:
    return next(line for line in base.split("\r\n") if line.startswith(prefix))


FULL_FP = _line("a=fingerprint:")
FP = FULL_FP[:-9]  # 3 bytes short
UFRAG = _line("a=ice-ufrag:")
PWD = _line("a=ice-pwd:")
ORIGIN = _line("o=")
ANSWER = (DATA / "chromium-plain-answer-to-aiortc.sdp").read_bytes().decode()

BAD_OFFERS: dict[str, Any] = {
    # aiortc: KeyError in SessionDescription.parse (DTLS_SETUP_ROLE[value])
    "setup bogus": _replace("a=setup:actpass", "a=setup:bogus"),
    "setup holdconn": _replace("a=setup:actpass", "a=setup:holdconn"),
    "setup without value": _replace("a=setup:actpass", "a=setup"),
    "setup missing": _drop("a=setup:"),
    # aiortc: AssertionError (media regex / ipaddress_from_sdp)
    "truncated m=": _replace("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=application 9"),
    "m= without port": _replace("m=application 9 ", "m=application  "),
    "m= port range": _replace("m=application 9 ", "m=application 9/2 "),
    "m= port 0": _replace("m=application 9 ", "m=application 0 "),
    "truncated c=": _replace("c=IN IP4 0.0.0.0", "c=IN IP4"),
    "c= hostname": _replace("c=IN IP4 0.0.0.0", "c=IN IP4 example.org"),
    "c= multicast TTL": _replace("c=IN IP4 0.0.0.0", "c=IN IP4 224.2.1.1/127"),
    "c= family mismatch": _replace("c=IN IP4 0.0.0.0", "c=IN IP6 0.0.0.0"),
    "c= zone id": _replace("c=IN IP4 0.0.0.0", "c=IN IP6 fe80::1%eth0"),
    "c= missing": _drop("c="),
    "extra audio section": CHROMIUM_OFFER + AUDIO,
    "audio first": _replace("v=0\r\n", "v=0\r\n").replace("m=application", AUDIO + "m=application"),
    "video only": _replace(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=video 9 UDP/TLS/RTP/SAVPF 96"
    ),
    "two data sections": CHROMIUM_OFFER + CHROMIUM_OFFER[CHROMIUM_OFFER.index("m=") :],
    "no media": CHROMIUM_OFFER[: CHROMIUM_OFFER.index("m=")],
    "TCP/DTLS/SCTP": _replace("UDP/DTLS/SCTP", "TCP/DTLS/SCTP"),
    "bad format": _replace("webrtc-datachannel", "webrtc-datachannel x"),
    # aiortc: AssertionError in candidate_from_sdp, ValueError from int()
    "candidate too short": _insert_after("a=mid:0", "a=candidate:1 1 udp 2122260223 10.0.0.1"),
    "candidate bad port": _insert_after("a=mid:0", GOOD_CANDIDATE.replace("5000", "x")),
    "candidate bad rport": _insert_after("a=mid:0", GOOD_CANDIDATE + " raddr 1.2.3.4 rport x"),
    "candidate without value": _insert_after("a=mid:0", "a=candidate"),
    "too many candidates": _insert_after(
        "a=mid:0",
        "\r\n".join(
            GOOD_CANDIDATE.replace("5000", str(5000 + i)) for i in range(MAX_CANDIDATES + 1)
        ),
    ),
    # aiortc: ValueError in __validate_description, AssertionError in RTCDtlsTransport.start
    "fingerprint missing": _drop("a=fingerprint:"),
    "fingerprint without value": _replace(FULL_FP, "a=fingerprint"),
    "fingerprint one token": _replace(FULL_FP, "a=fingerprint:sha-256"),
    "fingerprint three tokens": _replace(FULL_FP, FULL_FP + " x"),
    "fingerprint short": _replace(FULL_FP, FP),
    "fingerprint not hex": _replace(FULL_FP, FULL_FP[:-2] + "ZZ"),
    "fingerprint unknown algorithm": _replace("sha-256", "sha-3"),
    "fingerprint only sha-1": _replace(FULL_FP, "a=fingerprint:sha-1 " + ":".join(["AB"] * 20)),
    "ufrag missing": _drop("a=ice-ufrag:"),
    "pwd missing": _drop("a=ice-pwd:"),
    "ufrag empty": _replace(UFRAG, "a=ice-ufrag:"),
    "ufrag too short": _replace(UFRAG, "a=ice-ufrag:KSP"),
    "ufrag bad chars": _replace(UFRAG, "a=ice-ufrag:KS:e"),
    "pwd too short": _replace(PWD, "a=ice-pwd:qKbRGU8m"),
    "two ufrags": _insert_after(UFRAG, "a=ice-ufrag:abcd"),
    # aiortc: group handling detaches the SCTP transport, createAnswer AttributeError
    "bundle other mid": _replace("a=group:BUNDLE 0", "a=group:BUNDLE 1 0"),
    "bundle twice": _replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 0"),
    "group without value": _replace("a=group:BUNDLE 0", "a=group"),
    "msid-semantic without value": _replace("a=msid-semantic: WMS", "a=msid-semantic"),
    # media-level attributes aiortc parses blindly
    "mid missing": _drop("a=mid:"),
    "mid without value": _replace("a=mid:0", "a=mid"),
    "mid with space": _replace("a=mid:0", "a=mid:0 1"),
    "two mids": _insert_after("a=mid:0", "a=mid:1"),
    "sctp-port missing": _drop("a=sctp-port:"),
    "sctp-port not a number": _replace("a=sctp-port:5000", "a=sctp-port:x"),
    "sctp-port too big": _replace("a=sctp-port:5000", "a=sctp-port:70000"),
    "max-message-size not a number": _replace("max-message-size:262144", "max-message-size:-1"),
    "max-message-size tiny": _replace("max-message-size:262144", "max-message-size:1"),
    "max-message-size without value": _replace("a=max-message-size:262144", "a=max-message-size"),
    "rtpmap in data section": _insert_after("a=mid:0", "a=rtpmap:x"),
    "fmtp in data section": _insert_after("a=mid:0", "a=fmtp:96 apt=1"),
    "rtcp-fb in data section": _insert_after("a=mid:0", "a=rtcp-fb:96"),
    "ssrc in data section": _insert_after("a=mid:0", "a=ssrc:1"),
    "extmap in data section": _insert_after("a=mid:0", "a=extmap:1"),
    "rtcp in data section": _insert_after("a=mid:0", "a=rtcp:x"),
    "sctpmap bad": _insert_after("a=mid:0", "a=sctpmap:x webrtc-datachannel"),
    "end-of-candidates with value": _insert_after("a=mid:0", "a=end-of-candidates:1"),
    "attribute name with space": _insert_after("a=mid:0", "a=foo bar:1"),
    "empty attribute": _insert_after("a=mid:0", "a="),
    # session structure
    "v=1": _replace("v=0", "v=1"),
    "v= not first": _replace("v=0\r\no=", "o=").replace("s=-", "v=0\r\ns=-"),
    "v=0 with spaces": _replace("v=0", "v= 0"),
    "o= missing": _drop("o="),
    "o= truncated": _replace(ORIGIN, "o=- 1 2 IN"),
    "s= missing": _drop("s="),
    "t= missing": _drop("t="),
    "t= twice": _insert_after("t=0 0", "t=0 0"),
    "t= bad": _replace("t=0 0", "t=now"),
    "k= line": _insert_after("t=0 0", "k=clear:secret"),
    "unknown line type": _insert_after("t=0 0", "x=1"),
    "uppercase line type": _insert_after("t=0 0", "A=foo"),
    "line without =": _insert_after("t=0 0", "hello"),
    "empty line": _insert_after("t=0 0", ""),
    "candidate at session level": _insert_after("t=0 0", GOOD_CANDIDATE),
    # bytes and sizes
    "huge line": _insert_after("a=mid:0", "a=x-junk:" + "a" * 600),
    "too many lines": _insert_after("a=mid:0", "\r\n".join(["a=x-junk"] * MAX_LINES)),
    "too large": CHROMIUM_OFFER + "a=x-junk\r\n" * 8000,
    "NUL byte": _replace("a=mid:0", "a=mid:0\x00"),
    "tab": _replace("a=mid:0", "a=mid:\t0"),
    "bare CR": _replace("a=mid:0\r\n", "a=mid:0\r"),
    "unicode line separator": _replace("a=mid:0", "a=mid:0\u2028a=setup:bogus"),
    "NEL": _replace("a=mid:0", "a=mid:0\x85"),
    "vertical tab": _replace("a=mid:0", "a=mid:0\x0ba=setup:bogus"),
    "non-ASCII session name": _replace("s=-", "s=Zoë"),
    "fullwidth digits": _replace("a=sctp-port:5000", "a=sctp-port:５０００"),
    "trailing space": _replace("a=mid:0", "a=mid:0 "),
    "empty": "",
    "bytes": CHROMIUM_OFFER.encode(),
    "None": None,
    "number": 5,
    "object": {"sdp": CHROMIUM_OFFER},
}

BAD_ANSWERS: dict[str, Any] = {
    "actpass in an answer": _replace("a=setup:active", "a=setup:actpass", ANSWER),
    "other mid than our offer": _replace("a=mid:0", "a=mid:1", ANSWER).replace(
        "BUNDLE 0", "BUNDLE 1"
    ),
    "setup missing": _drop("a=setup:", ANSWER),
}


@pytest.mark.parametrize("sdp", list(BAD_OFFERS.values()), ids=list(BAD_OFFERS))
def test_bad_offers_are_refused(sdp: Any) -> None:
    with pytest.raises(ProtocolError) as e:
        check_description(sdp, "offer")
    assert e.value.code == "bad-sdp"
    assert len(str(e.value)) < 120  # short, and never the peer's bytes


@pytest.mark.parametrize("sdp", list(BAD_ANSWERS.values()), ids=list(BAD_ANSWERS))
def test_bad_answers_are_refused(sdp: Any) -> None:
    with pytest.raises(ProtocolError) as e:
        check_description(sdp, "answer", offer_mid="0")
    assert e.value.code == "bad-sdp"


def test_max_bytes_is_honoured() -> None:
    with pytest.raises(ProtocolError, match="longer than 100"):
        check_description(CHROMIUM_OFFER, "offer", max_bytes=100)


AIORTC_PARSE_CRASHES = [
    "setup bogus",
    "setup without value",
    "truncated m=",
    "truncated c=",
    "candidate too short",
    "candidate bad port",
    "candidate without value",
    "fingerprint without value",
    "fingerprint three tokens",
    "group without value",
    "sctp-port not a number",
    "rtpmap in data section",
    "fmtp in data section",
    "rtcp in data section",
]


@pytest.mark.parametrize("name", AIORTC_PARSE_CRASHES)
def test_why_aiortc_needs_this(name: str) -> None:
    """aiortc's own parser crashes (not a clean error) on these: the reason for this module."""
    with pytest.raises(Exception) as e:  # any exception but ours is the point
        SessionDescription.parse(BAD_OFFERS[name])
    assert not isinstance(e.value, ProtocolError)


@pytest.mark.parametrize(
    "name", ["setup missing", "ufrag missing", "bundle other mid", "c= hostname", "audio first"]
)
def test_why_aiortc_needs_this_beyond_the_parser(
    name: str, loop: asyncio.AbstractEventLoop
) -> None:
    """Shapes aiortc parses but then fails on: in setRemoteDescription, createAnswer, printing
    the description back, or (``bundle other mid``) even in ``close()``."""

    async def run() -> None:
        pc = _new_pc()
        try:
            with pytest.raises(Exception):  # noqa: B017
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=BAD_OFFERS[name], type="offer")
                )
                await pc.setLocalDescription(await pc.createAnswer())
                assert pc.remoteDescription.sdp
        finally:
            with contextlib.suppress(AttributeError):  # close() itself trips on "bundle"
                await pc.close()

    loop.run_until_complete(run())


BAD_CANDIDATES: list[Any] = [
    "candidate:1 1 udp 1 1.2.3.4 5 typ host",
    {"candidate": 5},
    {"candidate": None},
    {"sdpMid": "0"},
    {"candidate": "candidate:1 1 udp"},
    {"candidate": "candidate:1 1 udp x 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 70000 typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 0 typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 ² typ host"},  # isdigit() but not int()
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 ５０ typ host"},
    {"candidate": "candidate:1 1 sctp 1 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 type host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ local"},
    {"candidate": "candidate:1 0 udp 1 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 257 udp 1 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 1 udp 0 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 1 udp 4294967296 1.2.3.4 5 typ host"},
    {"candidate": "candidate:" + "f" * 33 + " 1 udp 1 1.2.3.4 5 typ host"},
    {"candidate": "candidate:f:1 1 udp 1 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 example.org 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 X.LOCAL 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 0.0.0.0 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 :: 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 224.0.0.251 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 255.255.255.255 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 fe80::1%eth0 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.256 5 typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host raddr"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4 rport x"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4 rport 65536"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr x rport 1"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host tcptype active"},
    {"candidate": "candidate:1 1 tcp 1 1.2.3.4 5 typ host"},
    {"candidate": "candidate:1 1 tcp 1 1.2.3.4 5 typ host tcptype sideways"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host generation x"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host network-cost -1"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host ufrag a:b"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host generation 0 generation 1"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host  generation 0"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5\ttyp host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5\u2003typ host"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host\x00"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host\r\na=setup:bogus"},
    {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host" + " x y" * 13},
    {"candidate": "x" * 5000},
    {"candidate": GOOD_CANDIDATE, "sdpMLineIndex": -1},
    {"candidate": GOOD_CANDIDATE, "sdpMLineIndex": 1024},
    {"candidate": GOOD_CANDIDATE, "sdpMLineIndex": True},
    {"candidate": GOOD_CANDIDATE, "sdpMLineIndex": 0.0},
    {"candidate": GOOD_CANDIDATE, "sdpMid": 3},
    {"candidate": GOOD_CANDIDATE, "sdpMid": ""},
    {"candidate": GOOD_CANDIDATE, "sdpMid": "0 1"},
    {"candidate": GOOD_CANDIDATE, "sdpMid": "x" * 33},
]


@pytest.mark.parametrize("value", BAD_CANDIDATES)
def test_bad_candidates_are_refused(value: Any) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_candidate(value)
    assert e.value.code == "bad-candidate"


def test_check_candidate_needs_a_string() -> None:
    with pytest.raises(ProtocolError):
        check_candidate(b"1 1 udp 1 1.2.3.4 5 typ host")  # type: ignore[arg-type]


def test_candidate_defaults_and_prefixes() -> None:
    c = parse_candidate({"candidate": " a=" + GOOD_CANDIDATE.removeprefix("a=") + "\r\n"})
    assert c is not None
    assert (c.sdpMid, c.sdpMLineIndex, c.ip, c.port) == ("0", 0, "10.0.0.1", 5000)
    c = parse_candidate({"candidate": GOOD_CANDIDATE, "sdpMLineIndex": 0})
    assert c is not None and (c.sdpMid, c.sdpMLineIndex) == (None, 0)
    assert parse_candidate({"candidate": "candidate:"}) is None


# ---------------------------------------------------------------------------- fuzzers
TOKENS = [
    "",
    "0",
    "1",
    "-1",
    "9",
    "65535",
    "65536",
    "4294967296",
    "99999999999999999999",
    "²",
    "actpass",
    "active",
    "passive",
    "holdconn",
    "IN",
    "IP4",
    "IP6",
    "0.0.0.0",
    "::",
    "10.77.0.1",
    "1.2.3.256",
    "fe80::1%1",
    "x.local",
    "a.b.local",
    "UDP/DTLS/SCTP",
    "DTLS/SCTP",
    "RTP/AVP",
    "application",
    "audio",
    "video",
    "webrtc-datachannel",
    "sha-1",
    "sha-256",
    "SHA-512",
    "BUNDLE",
    "typ",
    "host",
    "srflx",
    "prflx",
    "relay",
    "raddr",
    "rport",
    "tcptype",
    "generation",
    "udp",
    "tcp",
    "candidate",
    "a=",
    ":",
    " ",
    "AB:CD",
]
LINES = [
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "m=video 0 UDP/TLS/RTP/SAVPF 96 97",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=application 9 DTLS/SCTP 5000",
    "c=IN IP4 10.77.0.1",
    "c=IN IP6 ::1",
    "a=setup:bogus",
    "a=setup:passive",
    "a=setup:active",
    "a=mid:1",
    "a=mid:data",
    "a=group:BUNDLE 1 0",
    "a=group:BUNDLE",
    "a=group:LS 0",
    "a=sctp-port:0",
    "a=sctp-port:5001",
    "a=sctpmap:5000 webrtc-datachannel 1024",
    "a=max-message-size:1",
    "a=max-message-size:0",
    "a=end-of-candidates",
    "a=ice-lite",
    "a=ice-options:trickle ice2",
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuvwxyz",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
    "a=fingerprint:sha-1 " + ":".join(["AB"] * 20),
    "a=fingerprint:md5 " + ":".join(["AB"] * 16),
    "a=candidate:1 1 udp 2122260223 10.77.0.1 5000 typ host",
    "a=candidate:2 1 tcp 1518280447 10.77.0.1 9 typ host tcptype active",
    "a=candidate:3 1 udp 1677729535 10.77.0.9 6000 typ srflx raddr 0.0.0.0 rport 0",
    "a=candidate:4 2 udp 2122260222 10.77.0.1 5001 typ host",
    "a=candidate:5 1 udp 2122260223 ::1 5002 typ host",
    "a=candidate:6 1 udp 2122260223 f00d.local 5003 typ host",
    "a=candidate:7 1 udp 2122260223 10.77.0.1 5004 typ prflx raddr 10.77.0.2 rport 5",
    "a=rtcp-mux",
    "a=sendrecv",
    "a=inactive",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10",
    "a=rtcp-fb:* nack",
    "a=ssrc:1 cname:x",
    "a=extmap:1 urn:x",
    "a=msid:a b",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=msid-semantic:WMS *",
    "a=extmap-allow-mixed",
    "b=AS:30",
    "i=info",
    "t=0 0",
    "v=0",
    "o=- 1 1 IN IP4 0.0.0.0",
    "s=-",
]

_text = st.text(max_size=12)
_unicode = st.text(
    st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Nd", "No", "Lo"]),
    min_size=1,
    max_size=4,
)


class Picks:
    """Uniform choices for the mutation fuzzers. Plain Hypothesis draws favour first options and
    small integers (most of all after a big draw), which starved most fields: measured, a
    one-in-fifteen choice came up once in 300 examples. The ``Random`` is seeded by Hypothesis,
    so a failure still replays (it just shrinks less)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]


PICKS = st.randoms(use_true_random=True).map(Picks)


@st.composite
def _mutated_lines(draw: st.DrawFn, lines: list[str]) -> list[str]:
    """1-4 random damages: lines (or tokens) dropped, duplicated, swapped, moved, a token
    replaced, a line inserted, a character flipped, Unicode injected, a line cut short."""
    pick = draw(PICKS)
    lines = list(lines)
    ops = ["drop", "dup", "swap", "move", "token", "line", "flip", "unicode", "cut"]
    for _ in range(pick([1, 1, 1, 2, 2, 3, 4])):
        op = pick(ops)
        if not lines:
            lines = [""]
        i = pick(range(len(lines)))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(pick(range(len(lines) + 1)), lines[i])
        elif op == "swap":
            j = pick(range(len(lines)))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "move":
            lines.insert(pick(range(len(lines))), lines.pop(i))
        elif op == "token":
            parts = lines[i].replace(":", " : ").split(" ")
            k = pick(range(len(parts)))
            parts[k] = pick(TOKENS) if pick([True, False]) else draw(_text)
            lines[i] = " ".join(parts).replace(" : ", ":")
        elif op == "line":
            lines.insert(i, pick(LINES) if pick([True, False]) else draw(_text))
        elif op == "flip" and lines[i]:
            k = pick(range(len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.characters()) + lines[i][k + 1 :]
        elif op == "unicode":
            k = pick(range(len(lines[i]) + 1))
            lines[i] = lines[i][:k] + draw(_unicode) + lines[i][k:]
        elif op == "cut":
            lines[i] = lines[i][: pick(range(len(lines[i]) + 1))]
    return lines


@st.composite
def mutated_sdp(draw: st.DrawFn, seeds: list[Sdp]) -> tuple[str, str]:
    seed = draw(st.sampled_from(seeds))
    lines = seed.text.replace("\r\n", "\n").split("\n")[:-1]
    text = draw(st.sampled_from(["\r\n", "\n"])).join(draw(_mutated_lines(lines))) + "\r\n"
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return seed.kind, text


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _budget(examples: int = 300) -> settings:
    """``examples`` per fuzzer (the whole file stays under ~30 s); with
    ``--hypothesis-profile=long`` (5,000) every budget grows by the same factor."""
    scale = max(1.0, settings.default.max_examples / FUZZ.max_examples)
    return settings(FUZZ, max_examples=int(examples * scale))


@_budget()
@given(data=st.data())
def test_fuzz_descriptions_contract(
    data: st.DataObject, aiortc_corpus: list[Sdp], loop: asyncio.AbstractEventLoop
) -> None:
    """Mutated real descriptions: either ProtocolError, or aiortc processes them (offer:
    setRemoteDescription + createAnswer + setLocalDescription; answer: on top of our offer)
    with no exception, not even in a background task."""
    kind, text = data.draw(mutated_sdp([*FILES, *aiortc_corpus]))
    try:
        check_description(text, kind, offer_mid="0")
    except ProtocolError:
        event("refused")
        return
    event(f"accepted {kind}")
    loop.run_until_complete(_apply(kind)(text))


def _candidate_seeds(aiortc_corpus: list[Sdp]) -> list[dict[str, Any]]:
    seeds = [c for c in CANDIDATES if c["candidate"]]
    for sdp in aiortc_corpus:
        for line in sdp.text.splitlines():
            if line.startswith("a=candidate:"):
                seeds.append({"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0})
    return seeds


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)


@st.composite
def mutated_candidate(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> Any:
    seed = dict(draw(st.sampled_from(seeds)))
    tokens = seed["candidate"].split(" ")
    seed["candidate"] = " ".join(draw(_mutated_lines(tokens)))
    if draw(st.integers(0, 4)) == 0:
        seed[draw(st.sampled_from(["sdpMid", "sdpMLineIndex", "candidate"]))] = draw(JSON)
    if draw(st.integers(0, 9)) == 0:
        seed["candidate"] = draw(st.sampled_from(["", "a=", "  "])) + str(seed["candidate"])
    return seed


@_budget()
@given(data=st.data())
def test_fuzz_candidates_contract(
    data: st.DataObject, aiortc_corpus: list[Sdp], loop: asyncio.AbstractEventLoop
) -> None:
    """Mutated real candidates: either ProtocolError, or aioice's Candidate.from_sdp, aiortc's
    candidate_from_sdp and addIceCandidate (on a connection that answered Chromium's offer)
    all succeed."""
    value = data.draw(mutated_candidate(_candidate_seeds(aiortc_corpus)))
    try:
        candidate = parse_candidate(value)
    except ProtocolError:
        event("refused")
        return
    event("accepted" if candidate is not None else "end-of-candidates")
    if candidate is not None:
        line = value["candidate"].strip(" \t\r\n").removeprefix("a=").removeprefix("candidate:")
        Candidate.from_sdp(line)
        candidate_from_sdp(line)
    loop.run_until_complete(apply_candidate(CHROMIUM_OFFER, candidate))


# ---- grammar fuzzers: everything the documented grammar allows must be accepted AND safe
ICE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
TOKEN_CHARS = "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~"
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-"
PRINTABLE = "".join(map(chr, range(0x21, 0x7F)))
KNOWN_ATTRIBUTES = set(
    [
        "candidate",
        "end-of-candidates",
        "extmap",
        "fingerprint",
        "ice-options",
        "ice-pwd",
        "ice-ufrag",
        "max-message-size",
        "mid",
        "msid",
        "rtcp",
        "rtcp-mux",
        "setup",
        "sendrecv",
        "sendonly",
        "recvonly",
        "inactive",
        "rtpmap",
        "sctpmap",
        "sctp-port",
        "ssrc-group",
        "ssrc",
        "fmtp",
        "rtcp-fb",
        "ice-lite",
        "group",
        "msid-semantic",
    ]
)
"""What aiortc's parser looks at (at either level): generated unknown attributes avoid these."""
KNOWN = KNOWN_ATTRIBUTES | {"extmap-allow-mixed", "x-junk"}
"""Attributes whose values have a grammar of their own (not free text)."""
KNOWN_EXTENSIONS = {
    "raddr",
    "rport",
    "tcptype",
    "generation",
    "ufrag",
    "network-id",
    "network-cost",
}


def _unicast(ip: Any) -> str:
    """The address, or a documentation address instead of what no candidate may carry."""
    if ip.is_unspecified or ip.is_multicast or str(ip) == "255.255.255.255":
        return "192.0.2.1" if ip.version == 4 else "2001:db8::1"
    return str(ip)


ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(_unicast),
    st.ip_addresses(v=6).map(_unicast),
    st.uuids().map(lambda u: f"{u}.local"),
    st.text(NAME_CHARS[:62] + "-", min_size=1, max_size=63).map(lambda n: f"{n}.local"),
)


@st.composite
def grammar_candidate(draw: st.DrawFn) -> str:
    """A candidate attribute value from check_candidate's documented grammar."""
    transport = draw(st.sampled_from(["udp", "UDP", "tcp", "TCP", "Udp"]))
    fields = [
        draw(st.text(ICE_CHARS, min_size=1, max_size=32)),
        str(draw(st.integers(1, 256))),
        transport,
        str(draw(st.integers(1, 2**32 - 1))),
        draw(ADDRESSES),
        str(draw(st.integers(1, 65535))),
        "typ",
        draw(st.sampled_from(["host", "srflx", "prflx", "relay"])),
    ]
    pairs: list[tuple[str, str]] = []
    if draw(st.booleans()):
        raddr = draw(ADDRESSES | st.sampled_from(["0.0.0.0", "::"]))
        pairs += [("raddr", raddr), ("rport", str(draw(st.integers(0, 65535))))]
    if transport.lower() == "tcp":
        pairs.append(("tcptype", draw(st.sampled_from(["active", "passive", "so"]))))
    for name in ("generation", "network-id", "network-cost"):
        if draw(st.booleans()):
            pairs.append((name, str(draw(st.integers(0, 9_999_999_999)))))
    if draw(st.booleans()):
        pairs.append(("ufrag", draw(st.text(ICE_CHARS, min_size=1, max_size=40))))
    names = draw(
        st.lists(
            st.text(PRINTABLE, min_size=1, max_size=12).filter(lambda n: n not in KNOWN_EXTENSIONS),
            max_size=3,
            unique=True,
        )
    )
    pairs += [(n, draw(st.text(PRINTABLE, min_size=1, max_size=12))) for n in names]
    pairs = draw(st.permutations(pairs))
    return " ".join(fields + [x for pair in pairs for x in pair])


def _fingerprint(draw: st.DrawFn, algorithm: str, size: int) -> str:
    digest = ":".join(f"{b:02X}" for b in draw(st.binary(min_size=size, max_size=size)))
    return f"a=fingerprint:{algorithm} {draw(st.sampled_from([digest, digest.lower()]))}"


@st.composite
def grammar_sdp(draw: st.DrawFn) -> tuple[str, str]:
    """A data-channel offer or answer from check_description's documented grammar."""
    kind = draw(st.sampled_from(["offer", "answer"]))
    mid = "0" if kind == "answer" else draw(st.text(TOKEN_CHARS, min_size=1, max_size=32))
    legacy = draw(st.integers(0, 9)) == 0
    v4 = st.ip_addresses(v=4).map(lambda a: f"IN IP4 {a}")
    v6 = st.ip_addresses(v=6).map(lambda a: f"IN IP6 {a}")
    origin_user = st.sampled_from(["-", "mozilla...THIS_IS_SDPARTA-128.0"]) | st.text(
        PRINTABLE, min_size=1, max_size=20
    )
    session = [
        "v=0",
        f"o={draw(origin_user)} {draw(st.integers(0, 2**64))} {draw(st.integers(0, 9))} "
        + draw(st.sampled_from(["IN IP4 127.0.0.1", "IN IP4 0.0.0.0", "IN IP6 ::1"])),
        "s=" + draw(st.sampled_from(["-", " "]) | st.text(PRINTABLE + " ", min_size=1)),
    ]
    head: list[str] = []  # lines after s= and before t=
    tail: list[str] = []  # session attributes
    body: list[str] = []  # media attributes
    connection = f"c={draw(v4 | v6)}"
    (head if draw(st.booleans()) else body).append(connection)
    if head and draw(st.booleans()):
        body.append(f"c={draw(v4 | v6)}")
    # ICE and DTLS at either level (media overrides session, fingerprints add up)
    for level in draw(st.sampled_from([[body], [tail], [tail, body]])):
        level.append(f"a=ice-ufrag:{draw(st.text(ICE_CHARS, min_size=4, max_size=256))}")
    for level in draw(st.sampled_from([[body], [tail], [tail, body]])):
        level.append(f"a=ice-pwd:{draw(st.text(ICE_CHARS, min_size=22, max_size=256))}")
    setups = ["active", "passive"] + (["actpass"] if kind == "offer" else [])
    levels = draw(st.sampled_from([[body], [tail], [tail, body]]))
    for level in levels:
        level.append(f"a=setup:{draw(st.sampled_from(setups))}")
    strong = draw(st.sampled_from([("sha-256", 32), ("SHA-256", 32), ("sha-384", 48)]))
    draw(st.sampled_from([body, tail])).append(_fingerprint(draw, *strong))
    for algorithm, size in draw(
        st.lists(st.sampled_from([("sha-1", 20), ("sha-512", 64), ("md5", 16)]), max_size=2)
    ):
        draw(st.sampled_from([body, tail])).append(_fingerprint(draw, algorithm, size))
    if draw(st.booleans()):
        tail.append(f"a=group:BUNDLE {mid}")
    tail += draw(
        st.lists(
            st.sampled_from(
                [
                    "a=msid-semantic: WMS",
                    "a=msid-semantic:WMS *",
                    "a=extmap-allow-mixed",
                    "a=ice-lite",
                    "a=ice-options:trickle",
                ]
            ),
            unique=True,
        )
    )
    if legacy:
        sctp = draw(st.integers(1, 65535))
        media_line = f"m=application {draw(st.integers(1, 65535))} DTLS/SCTP {sctp}"
        if draw(st.booleans()):
            body.append(f"a=sctpmap:{sctp} webrtc-datachannel {draw(st.integers(0, 65535))}")
    else:
        media_line = f"m=application {draw(st.integers(1, 65535))} UDP/DTLS/SCTP webrtc-datachannel"
        body.append(f"a=sctp-port:{draw(st.integers(1, 65535))}")
    body.append(f"a=mid:{mid}")
    if draw(st.booleans()):
        size = draw(st.just(0) | st.integers(16_384, 2**32 - 1))
        body.append(f"a=max-message-size:{size}")
    body += [f"a=candidate:{c}" for c in draw(st.lists(grammar_candidate(), max_size=4))]
    flags = [
        "a=end-of-candidates",
        "a=rtcp-mux",
        draw(st.sampled_from(["a=sendrecv", "a=inactive"])),
    ]
    body += draw(st.lists(st.sampled_from(flags), unique=True))
    body.append("a=ice-options:trickle") if draw(st.booleans()) else None
    other = st.text(NAME_CHARS, min_size=1, max_size=20).filter(
        lambda n: n[0] not in "_.+-" and n not in KNOWN_ATTRIBUTES
    )
    for level in (tail, body):
        for name in draw(st.lists(other, max_size=2, unique=True)):
            value = draw(st.none() | st.text(PRINTABLE + " ", max_size=30))
            level.append(f"a={name}" if value is None else f"a={name}:{value}")
    lines = [
        *session,
        *draw(st.permutations(head)),
        "t=0 0",
        *draw(st.permutations(tail)),
        media_line,
        *draw(st.permutations(body)),
    ]
    end = draw(st.sampled_from(["\r\n", "\n"]))
    return kind, end.join(lines) + draw(st.sampled_from([end, ""]))


@_budget(150)
@given(generated=grammar_sdp())
def test_fuzz_grammar_descriptions(
    generated: tuple[str, str], loop: asyncio.AbstractEventLoop
) -> None:
    """Every description the documented grammar allows is accepted, and aiortc processes it."""
    kind, text = generated
    checked = check_description(text, kind, offer_mid="0")
    assert checked.replace("\r\n", "\n") == text.replace("\r\n", "\n").rstrip("\n") + "\n"
    loop.run_until_complete(_apply(kind)(checked))


@_budget()
@given(
    line=grammar_candidate(),
    prefix=st.sampled_from(["candidate:", "a=candidate:"]),
    mid=st.none() | st.text(TOKEN_CHARS, min_size=1, max_size=32),
    index=st.none() | st.integers(0, 1023),
)
def test_fuzz_grammar_candidates(
    line: str, prefix: str, mid: str | None, index: int | None, loop: asyncio.AbstractEventLoop
) -> None:
    """Every candidate the documented grammar allows is accepted by parse_candidate, parsed by
    aioice and aiortc, and added by addIceCandidate."""
    candidate = parse_candidate({"candidate": prefix + line, "sdpMid": mid, "sdpMLineIndex": index})
    assert candidate is not None
    Candidate.from_sdp(line)
    assert candidate_from_sdp(line) == dataclasses.replace(
        candidate, sdpMid=None, sdpMLineIndex=None
    )
    loop.run_until_complete(apply_candidate(CHROMIUM_OFFER, candidate))


# ---- near-miss fuzzers: valid descriptions with one targeted deviation, so every check of the
# validator sits next to inputs that cross it (random damage alone rarely hits one field)
_HEX32 = ":".join(["AB"] * 32)
VALUE_POOLS: dict[str, list[str | None]] = {
    "setup": ["actpass", "active", "passive", "holdconn", "bogus", "", "ACTIVE", None],
    "mid": ["0", "1", "data", "", "0 1", "a:b", "x" * 33, "é", None],
    "ice-ufrag": ["abcd", "ABC+/xyz", "abc", "", "ab:cd", "ab cd", "a" * 257, None],
    "ice-pwd": ["a" * 22, "b/+" * 10, "a" * 21, "", "a" * 257, "a" * 21 + "=", None],
    "fingerprint": [
        f"sha-256 {_HEX32}",
        f"SHA-512 {':'.join(['cd'] * 64)}",
        f"sha-1 {':'.join(['AB'] * 20)}",
        f"sha-256 {_HEX32[:-3]}",
        f"sha-256 {_HEX32}:AB",
        f"sha-3 {_HEX32}",
        f"sha-256  {_HEX32}",
        f"sha-256 {_HEX32} x",
        f"sha-256 {_HEX32.replace(':', '')}",
        "sha-256",
        "",
        None,
    ],
    "sctp-port": ["5000", "1", "65535", "0", "65536", "x", "", "-1", "05000", None],
    "max-message-size": ["0", "16384", "262144", "1", "16383", "4294967296", "x", "", None],
    "msid-semantic": [" WMS", "WMS *", "WMS", "", None],
    "ice-options": ["trickle", "trickle ice2", "", "a  b", None],
    "sctpmap": ["5000 webrtc-datachannel 1024", "x webrtc-datachannel", "5000", "", None],
    "end-of-candidates": [None, "", "1"],
    "ice-lite": [None, "1"],
    "sendrecv": [None, "x"],
    "rtcp-mux": [None, "1"],
    "extmap-allow-mixed": [None, "x"],
    "rtpmap": ["111 opus/48000/2", "111", "x opus/48000", "111 opus", None],
    "fmtp": ["111 minptime=10", "96 apt=1", "x", "111", None],
    "rtcp-fb": ["* nack", "96", None],
    "ssrc": ["1 cname:x", "1", "x cname:y", None],
    "ssrc-group": ["FID 1 2", "FID x", None],
    "extmap": ["1 urn:x", "x", "1/sendrecv urn:x", "x/y/z urn:x", None],
    "rtcp": ["9 IN IP4 0.0.0.0", "x", "9 IN IP4", None],
    "msid": ["a b", None],
}
"""Values per attribute name, valid and not; ``group`` is derived from the section's mid."""
LINE_POOLS: dict[str, list[str]] = {
    "c": [
        "IN IP4 0.0.0.0",
        "IN IP6 ::",
        "IN IP4 x",
        "IN IP4",
        "IN IP6 0.0.0.0",
        "IN IP4 1.2.3.4/127",
    ],
    "m": [
        "application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "application 9 DTLS/SCTP 5000",
        "application 9 DTLS/SCTP x",
        "application 9 UDP/DTLS/SCTP",
        "application 9",
        "application 0 UDP/DTLS/SCTP webrtc-datachannel",
        "application x UDP/DTLS/SCTP webrtc-datachannel",
        "audio 9 UDP/TLS/RTP/SAVPF 111",
        "video 9 UDP/TLS/RTP/SAVPF 96",
    ],
    "o": ["- 1 2 IN IP4 127.0.0.1", "- 1 2 IN IP4", "- x 2 IN IP4 127.0.0.1", ""],
    "t": ["0 0", "0", "x y", ""],
    "v": ["0", "1", " 0", ""],
    "s": ["-", " ", ""],
    "b": ["AS:30", "AS:x", "AS"],
}
BAD_CANDIDATE_LINES = [v.get("candidate") for v in BAD_CANDIDATES if isinstance(v, dict)]
CANDIDATE_POOL = [
    c.removeprefix("a=").removeprefix("candidate:")
    for c in BAD_CANDIDATE_LINES + [v["candidate"] for v in CANDIDATES]
    if isinstance(c, str) and c
]
NASTY = ["\x00", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u00a0", "\u3000", "é", "\r", " "]


SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]
"""What str.splitlines() (aiortc) breaks lines at, besides \n."""


def _key(line: str) -> str:
    letter, _, value = line.partition("=")
    return f"a={value.partition(':')[0]}" if letter == "a" else letter


def _pool(key: str, old: str, mid: str) -> list[str | None]:
    if key == "a=group":
        return [
            f"BUNDLE {mid}",
            "BUNDLE",
            f"BUNDLE x {mid}",
            f"BUNDLE {mid} {mid}",
            f"LS {mid}",
            "",
        ]
    if key.startswith("a="):
        return VALUE_POOLS.get(key[2:], [old, None])
    return list(LINE_POOLS.get(key, [old]))


NEAR_MISS_OPS = ["value"] * 6 + ["drop", "drop", "dup", "move", "add", "add", "char"]
NEAR_MISS_OPS += ["smuggle"] * 2
SMUGGLED = [
    "a=setup:bogus",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "a=fmtp:96 x",
    "a=candidate",
    "c=IN IP4 x",
    "a=group",
]
"""Lines that crash aiortc wherever they land: what a peer would hide behind a separator."""


def near_miss(text: str, pick: Picks, ops: Sequence[str] = NEAR_MISS_OPS) -> str:
    """``text`` with exactly one targeted deviation (which may or may not be valid): a field of a
    uniformly chosen attribute/line type set from its pool, one line of a type dropped,
    duplicated or moved, an attribute added, a nasty character, or a line smuggled in behind a
    separator that only aiortc's ``splitlines()`` honours."""
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    mid = next((x[6:] for x in lines if x.startswith("a=mid:")), "0")
    op = pick(ops)
    key = pick(sorted({_key(x) for x in lines}))
    i = pick([n for n, x in enumerate(lines) if _key(x) == key])
    if op == "value" and key == "a=candidate":
        lines[i] = "a=candidate:" + pick(CANDIDATE_POOL)
    elif op == "value" and key.startswith("a="):
        old = lines[i].partition(":")[2]
        new = pick(_pool(key, old, mid) * 4 + TOKENS[::4])
        lines[i] = key if new is None else f"{key}:{new}"
    elif op == "value":
        lines[i] = f"{key}=" + pick(_pool(key, lines[i][2:], mid))
    elif op == "drop":
        del lines[i]
    elif op == "dup":
        lines.insert(pick(range(len(lines) + 1)), lines[i])
    elif op == "move":
        lines.insert(pick(range(1, len(lines))), lines.pop(i))
    elif op in ("add", "smuggle"):
        name = pick([*sorted(VALUE_POOLS), "group", "candidate"])
        value = pick(CANDIDATE_POOL) if name == "candidate" else pick(_pool(f"a={name}", "", mid))
        line = f"a={name}" if value is None else f"a={name}:{value}"
        line = pick([line, pick(LINES), pick(SMUGGLED) if op == "smuggle" else line])
        if op == "add":
            lines.insert(pick(range(1, len(lines) + 1)), line)
        else:
            # behind free text (s=, i=, unknown attributes) a known field's regex cannot help
            free = [n for n, x in enumerate(lines) if x[0] in "si" or _key(x)[2:] not in KNOWN]
            i = pick(free) if free and pick([True, False]) else i
            lines[i] += pick(SEPARATORS) + line
    else:
        k = pick(range(len(lines[i]) + 1))
        lines[i] = lines[i][:k] + pick(NASTY) + lines[i][k:]
    return "\r\n".join(lines) + "\r\n"


@_budget()
@given(data=st.data())
def test_fuzz_near_miss_descriptions(
    data: st.DataObject, aiortc_corpus: list[Sdp], loop: asyncio.AbstractEventLoop
) -> None:
    """Valid descriptions (generated, captured, aiortc's) with one targeted deviation: either
    ProtocolError, or aiortc processes them with no exception."""
    pick = data.draw(PICKS)
    if data.draw(st.booleans()):
        kind, text = data.draw(grammar_sdp())
    else:
        seed = data.draw(st.sampled_from([*FILES, *aiortc_corpus]))
        kind, text = seed.kind, seed.text
    text = near_miss(text, pick)
    try:
        check_description(text, kind, offer_mid="0")
    except ProtocolError:
        event("refused")
        return
    event(f"accepted {kind}")
    loop.run_until_complete(_apply(kind)(text))


FIELD_POOLS: dict[str, list[str]] = {
    "foundation": ["1", "a" * 32, "a" * 33, "a:b", "é", "+/"],
    "component": ["1", "256", "0", "257", "x", "²", "-1", "01"],
    "transport": ["udp", "UDP", "tcp", "TCP", "sctp", "tls"],
    "priority": ["1", "4294967295", "0", "4294967296", "x", "-1", "1e3"],
    "address": [
        *("10.77.0.1", "::1", "2001:db8::1", "::ffff:10.77.0.1", "f00d-1.local", "X.LOCAL"),
        *("0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "1.2.3.256", "fe80::1%1"),
        *("example.org", "a" * 64 + ".local", "10.77.0.1/24", "[::1]"),
    ],
    "port": ["1", "65535", "9", "0", "65536", "x", "²", "５"],
    "typ": ["typ", "type", "TYP"],
    "type": ["host", "srflx", "prflx", "relay", "local", "HOST"],
}
FIELDS = list(FIELD_POOLS)
EXTENSION_POOLS: dict[str, list[str]] = {
    "raddr": ["0.0.0.0", "::", "10.77.0.2", "f00d.local", "x", "224.0.0.1"],
    "rport": ["0", "65535", "65536", "x", "²"],
    "tcptype": ["active", "passive", "so", "x"],
    "generation": ["0", "9999999999", "x", "²", "-1"],
    "network-id": ["1", "x"],
    "network-cost": ["999", "x"],
    "ufrag": ["abcd", "a:b", "é"],
    "x-foo": ["bar"],
}


@st.composite
def near_miss_candidate(draw: st.DrawFn) -> dict[str, Any]:
    """A grammar candidate with one targeted deviation, in a simple-peer candidate object: a
    field or an extension value from its pool, an extension added, a token dropped, duplicated
    or swapped, a nasty character, or a line smuggled behind a separator."""
    pick = draw(PICKS)
    tokens = draw(grammar_candidate()).split(" ")
    ops = [*FIELDS, *["extension"] * 4, "pair", "pair", "drop", "dup", "swap", "char", "x"]
    op = pick([*ops, "sdpMid", "sdpMLineIndex"])
    obj = {"sdpMid": pick([None, "0", "1", "data"]), "sdpMLineIndex": pick([None, 0, 1, 1023])}
    i = pick(range(len(tokens)))
    if op in FIELD_POOLS:
        tokens[FIELDS.index(op)] = pick(FIELD_POOLS[op])
    elif op in ("extension", "pair"):
        name = pick(sorted(EXTENSION_POOLS))
        value = pick(EXTENSION_POOLS[name])
        names = tokens[8::2]
        if op == "extension" and name in names:
            tokens[8 + 2 * names.index(name) + 1] = value
        elif name == "raddr" and "rport" not in names:
            tokens += [name, value, "rport", "9"]
        elif name == "rport" and "raddr" not in names:
            tokens += ["raddr", "10.77.0.2", name, value]
        else:
            tokens += [name, value]
    elif op == "drop":
        del tokens[i]
    elif op == "dup":
        tokens.insert(pick(range(len(tokens) + 1)), tokens[i])
    elif op == "swap":
        j = pick(range(len(tokens)))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif op == "char":
        k = pick(range(len(tokens[i]) + 1))
        tokens[i] = tokens[i][:k] + pick(NASTY) + tokens[i][k:]
    elif op == "x":
        tokens[i] += pick([*SEPARATORS, "\n"]) + "a=setup:bogus"
    elif op == "sdpMid":
        obj[op] = pick(["", "0 1", "x" * 33, 0, 1.5, ["0"]])
    else:
        obj[op] = pick([1024, -1, True, "0", 0.0, None])
    obj["candidate"] = pick(["candidate:", "a=candidate:", ""]) + " ".join(tokens)
    return obj


@_budget(600)
@given(value=near_miss_candidate())
def test_fuzz_near_miss_candidates(value: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
    """Grammar candidates with one targeted deviation: either ProtocolError, or aioice, aiortc
    and addIceCandidate all take them."""
    try:
        candidate = parse_candidate(value)
    except ProtocolError:
        event("refused")
        return
    event("accepted")
    assert candidate is not None
    line = value["candidate"].removeprefix("a=").removeprefix("candidate:")
    Candidate.from_sdp(line)
    candidate_from_sdp(line)
    loop.run_until_complete(apply_candidate(CHROMIUM_OFFER, candidate))


async def _connect_pair(mutate: Callable[[str, str], str], *, check: bool = True) -> str:
    """Two aiortc peers connecting for real, with ``mutate(kind, sdp)`` applied to the offer
    and the answer on the way (and checked): what happens after setRemoteDescription (ICE, DTLS
    with the remote fingerprints and role, SCTP with the remote port and max-message-size) must
    not raise either. Returns how far it got."""
    async with _no_background_errors():
        offerer, answerer = _new_pc(), _new_pc()
        opened = asyncio.Event()
        try:
            channel = offerer.createDataChannel(LABEL)
            channel.on("open", opened.set)
            await offerer.setLocalDescription(await offerer.createOffer())
            offer = mutate("offer", offerer.localDescription.sdp)
            if check:
                offer = check_description(offer, "offer")
            await answerer.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await answerer.setLocalDescription(await answerer.createAnswer())
            answer = mutate("answer", answerer.localDescription.sdp)
            if check:
                answer = check_description(answer, "answer", offer_mid="0")
            await offerer.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(opened.wait(), 1.5)
            return "open" if opened.is_set() else offerer.connectionState
        finally:
            await offerer.close()
            await answerer.close()


E2E_OPS = ["value"] * 3 + ["drop"] * 3 + ["dup", "move", "add"]
"""After setRemoteDescription, aiortc needs what a section *lacks* (sctp-port, fingerprints)
only once ICE and DTLS connect: weigh dropping lines higher here."""


@_budget(60)
@given(data=st.data(), which=st.sampled_from(["offer", "answer"]))
def test_fuzz_near_miss_end_to_end(
    data: st.DataObject, which: str, loop: asyncio.AbstractEventLoop
) -> None:
    """A real aiortc pair whose offer or answer gets one targeted deviation on the way: either
    ProtocolError, or the pair runs (and mostly opens its channel) without any exception."""

    pick = data.draw(PICKS)

    def mutate(kind: str, sdp: str) -> str:
        return near_miss(sdp, pick, E2E_OPS) if kind == which else sdp

    try:
        outcome = loop.run_until_complete(_connect_pair(mutate))
    except ProtocolError:
        event("refused")
        return
    event(f"accepted: {outcome}")


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("no fingerprint", lambda sdp: re.sub(r"a=fingerprint:[^\r]*\r\n", "", sdp)),
        ("no sctp-port", lambda sdp: sdp.replace("a=sctp-port:5000\r\n", "")),
    ],
)
def test_why_aiortc_needs_this_end_to_end(
    name: str, mutate: Callable[[str], str], loop: asyncio.AbstractEventLoop
) -> None:
    """What aiortc accepts in setRemoteDescription but crashes on in a background task once the
    pair connects (DTLS start asserts fingerprints; SCTP packs a None port)."""

    def unchecked(kind: str, sdp: str) -> str:
        return mutate(sdp) if kind == "offer" else sdp

    with pytest.raises(ProtocolError):
        loop.run_until_complete(_connect_pair(lambda kind, sdp: unchecked(kind, sdp)))
    with pytest.raises(AssertionError, match=r"[Ee]rror"):
        loop.run_until_complete(_connect_pair(unchecked, check=False))


def test_end_to_end_harness_connects(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(_connect_pair(lambda kind, sdp: sdp)) == "open"


def test_nothing_else_is_raised_on_arbitrary_text() -> None:
    """Plain random strings never raise anything but ProtocolError (no aiortc needed)."""

    @FUZZ
    @given(st.text(max_size=300), st.sampled_from(["offer", "answer"]))
    def run(text: str, kind: str) -> None:
        with contextlib.suppress(ProtocolError):
            check_description(text, kind)
        with contextlib.suppress(ProtocolError):
            parse_candidate({"candidate": text})

    run()
