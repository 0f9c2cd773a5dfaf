"""Attack (a): malformed SDP offers and malformed trickled candidates sent to the replica.

aiortc raises ``KeyError`` (``a=setup:bogus``), ``AssertionError`` (a malformed
``a=candidate`` line inside the SDP), ``ValueError``/``IndexError`` (truncated ``m=`` /
``c=`` lines) while applying an offer. Unless that is contained per remote, one offer ends
the task group of the whole room: later valid offers get no answer, existing connections
are cancelled, and the room silently stops archiving.

Victim properties: after the bad offers (sent both before and while a legit peer is
connected), that legit peer's edits in THE SAME room reach the archive, a fresh stock
y-webrtc browser joining the room afterwards receives them from the replica alone, a
sentinel room archives, and the server's RSS/fds stay bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from tests.hostile.victim import (
    ATTACK_MARKS,
    ResourceWatch,
    ServerFactory,
    assert_alive,
    check_browser_syncs,
    check_sentinel,
    wait_archived,
)
from tests.support.attacker import (
    RawSignaling,
    new_peer_id,
    offer_sdp,
    replace_line,
    replica_peer_id,
    strip_candidates,
)
from tests.support.browser import Chromium
from tests.support.peers import peer

pytestmark = ATTACK_MARKS

MAX_RSS_GROWTH_MB = 40
"""A few dozen short-lived peer connections plus one browser and two legit peers; the
no-attack control costs +5-15 MB. A leak per bad offer would show as more."""
MAX_FD_GROWTH = 80
"""At most ~12 candidate-less offers are still waiting for ICE (2 UDP sockets each in the
test namespace) plus the legit connections; the control costs < 10 fds."""


def _audio_section(sdp: str) -> str:
    creds = [
        line
        for line in sdp.split("\r\n")
        if line.startswith(("a=ice-ufrag", "a=ice-pwd", "a=fingerprint:sha-256", "a=setup"))
    ]
    return "\r\n".join(
        [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "c=IN IP4 0.0.0.0",
            "a=mid:1",
            "a=sendrecv",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            *creds,
            "",
        ]
    )


BAD_OFFERS: dict[str, Callable[[str], str]] = {
    # aiortc: KeyError in the DTLS role table
    "setup-bogus": lambda s: replace_line(s, "a=setup:", "a=setup:bogus"),
    # truncated / malformed m= lines (the section still names webrtc-datachannel)
    "m-line-short": lambda s: replace_line(
        s, "m=application", "m=application 9 webrtc-datachannel"
    ),
    "m-line-port": lambda s: replace_line(
        s, "m=application", "m=application x UDP/DTLS/SCTP webrtc-datachannel"
    ),
    "m-line-cut": lambda s: replace_line(
        s, "m=application", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nm=appl"
    ),
    # truncated c= lines
    "c-line-short": lambda s: replace_line(s, "c=IN", "c=IN IP4"),
    "c-line-empty": lambda s: replace_line(s, "c=IN", "c="),
    # an extra media section (audio), after and before the data section
    "extra-audio": lambda s: (
        s.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1").rstrip("\r\n")
        + "\r\n"
        + _audio_section(s)
    ),
    "audio-first": lambda s: s.replace("m=application", _audio_section(s) + "m=application", 1),
    # malformed a=candidate lines inside the SDP (aiortc: AssertionError)
    "candidate-short": lambda s: replace_line(
        strip_candidates(s), "a=mid:", "a=mid:0\r\na=candidate:1 1 udp"
    ),
    "candidate-garbage": lambda s: replace_line(
        strip_candidates(s), "a=mid:", "a=mid:0\r\na=candidate:garbage 1 udp 5 x"
    ),
    "half": lambda s: s[: len(s) // 2],
}

BAD_CANDIDATES: dict[str, Any] = {
    "unknown-mid": {
        "candidate": "candidate:1 1 udp 5 10.77.0.1 5000 typ host",
        "sdpMid": "9",
        "sdpMLineIndex": 9,
    },
    "bad-ip": {"candidate": "candidate:1 1 udp 5 not-an-ip 5000 typ host", "sdpMid": "0"},
    "ipv6-junk": {"candidate": "candidate:1 1 udp 5 ::::::::1 5000 typ host", "sdpMid": "0"},
    "relay-no-raddr": {
        "candidate": "candidate:1 1 udp 5 10.77.0.1 5000 typ relay raddr",
        "sdpMid": "0",
    },
    "huge-priority": {
        "candidate": "candidate:1 1 udp 99999999999999999999999 10.77.0.1 5000 typ host",
        "sdpMid": "0",
    },
    "short": {"candidate": "candidate:1 1 udp", "sdpMid": "0"},
    "not-an-object": "candidate:1 1 udp 5 10.77.0.1 5000 typ host",
    "null": None,
    "list": [1, 2, 3],
}


async def send_bad_signals(sig: RawSignaling, room: str, replica: str, names: list[str]) -> None:
    """Each bad offer from its own peer id; each bad candidate after a candidate-less valid
    offer from its own peer id."""
    base = await offer_sdp()
    for name in names:
        if name in BAD_OFFERS:
            sdp = BAD_OFFERS[name](base)
            await sig.signal(room, new_peer_id(), replica, {"type": "offer", "sdp": sdp})
        else:
            sender = new_peer_id()
            offer = {"type": "offer", "sdp": strip_candidates(base)}
            await sig.signal(room, sender, replica, offer)
            candidate = {"type": "candidate", "candidate": BAD_CANDIDATES[name]}
            await sig.signal(room, sender, replica, candidate)


async def test_malformed_offers_do_not_stop_the_room(
    hostile_server: ServerFactory, chromium: Chromium, page_url: str
) -> None:
    server = hostile_server()
    assert server.proc is not None
    room = "sdp-attacked"
    names = [*BAD_OFFERS, *BAD_CANDIDATES]
    before, during = names[::2], names[1::2]
    figures: dict[str, str] = {}
    async with ResourceWatch(server.proc.pid) as watch, RawSignaling(server.signaling) as sig:
        try:
            with anyio.fail_after(15):
                replica = await replica_peer_id(sig, room, new_peer_id())
            await send_bad_signals(sig, room, replica, before)
            # a legit peer joins after the first bad offers, and stays while more arrive
            async with peer(room, server.signaling) as writer:
                writer.document.text().insert(0, "typed after bad offers. ")
                await wait_archived(server, room, "typed after bad offers. ")
                await send_bad_signals(sig, room, replica, during)
                text = writer.document.text()
                text.insert(len(text), "typed while bad offers arrive.")
                legit = str(text)
                await wait_archived(server, room, legit)
            # the writer is gone: a fresh browser can get the text from the replica only
            seconds = await check_browser_syncs(chromium, page_url, server, room, legit)
            figures["browser"] = f"{seconds:.2f} s"
            figures["sentinel"] = f"{await check_sentinel(server):.2f} s"
            assert_alive(server)
        finally:
            watch.sample()
            print(
                f"\n[sdp] {len(BAD_OFFERS)} bad offers + {len(BAD_CANDIDATES)} bad candidates; "
                f"synced: {figures}; {watch.line()}"
            )
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB, max_fds=MAX_FD_GROWTH)
