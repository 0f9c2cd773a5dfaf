"""Python peers (aiortc) relay-only through a real coturn: with long-term credentials, with
credentials minted by :func:`collabd.turn.turn_credential` from the REST API secret, and
refused when coturn may not relay to the peer.

Relay use is proven three ways: each peer's selected ICE pair has a ``relay`` local candidate
(aioice's nominated pair, :attr:`ConnectionStats.candidate_types`), coturn logged the
allocations and channel bindings of exactly these users, and the same peers cannot connect
at all when coturn refuses to relay (``allowed-peer-ip`` left out): with
``ice_transport_policy="relay"`` there is no other path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from aiortc import RTCPeerConnection

from collab.peer import ConnectionStats, IceServer, PeerConfig, WebrtcPeer
from collab.peer.remote import rtc_configuration
from collabd.turn import IceConfig
from tests.support.peers import wait_text
from tests.support.servers import SignalingServer, collab_signaling
from tests.turn.coturn import LT_USER, REST_SECRET, Coturn, needs_coturn

pytestmark = [pytest.mark.anyio, *needs_coturn]


@pytest.fixture(scope="module")
def signaling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignalingServer]:
    """``collab signaling`` for the Python peers."""
    log = tmp_path_factory.mktemp("signaling") / "signaling.log"
    with collab_signaling(log) as server:
        yield server


def lt_config(coturn: Coturn, connect_timeout: float = 20.0) -> PeerConfig:
    """Relay-only with coturn's static user."""
    turn = IceServer(coturn.url, username=LT_USER[0], credential=LT_USER[1])
    return PeerConfig(
        ice_servers=[turn], ice_transport_policy="relay", connect_timeout=connect_timeout
    )


def rest_config(coturn: Coturn, name: str, secret: str = REST_SECRET) -> PeerConfig:
    """Relay-only with a credential minted per connection, as ``collab serve`` does it."""
    ice = IceConfig(turn_urls=(coturn.url,), turn_secret=secret, turn_ttl=600, policy="relay")
    return PeerConfig(
        ice_servers_factory=lambda: [IceServer(**s) for s in ice.ice_servers(name)],
        ice_transport_policy="relay",
    )


async def relayed_pair(
    signaling: str, room: str, config_a: PeerConfig, config_b: PeerConfig
) -> list[ConnectionStats]:
    """Two peers in ``room`` edit through their one connection; returns both sides' stats."""
    async with (
        WebrtcPeer(room, signaling, config=config_a) as a,
        WebrtcPeer(room, signaling, config=config_b) as b,
    ):
        with anyio.fail_after(30):
            await a.wait_for_peers(1)
            await b.wait_for_peers(1)
        a.document.text().insert(0, "sent through coturn")
        await wait_text(b, "sent through coturn")
        b.document.text().insert(0, "and back: ")
        await wait_text(a, "and back: sent through coturn")
        return [*(await a.stats()), *(await b.stats())]


def assert_relayed(stats: list[ConnectionStats]) -> None:
    assert len(stats) == 2 and all(s.state == "open" for s in stats), stats
    for s in stats:
        assert s.candidate_types is not None, s
        # local relay: this side sends every packet to coturn; the remote is a relay
        # address of the same coturn (or the peer-reflexive form of it)
        assert s.candidate_types[0] == "relay", s.candidate_types
        assert s.candidate_types[1] in ("relay", "prflx"), s.candidate_types
        assert s.transport_bytes_in > 0 and s.transport_bytes_out > 0


async def test_long_term_credentials_relay_only(
    signaling: SignalingServer, coturn_lt: Coturn
) -> None:
    stats = await relayed_pair(signaling.url, "turn-lt", lt_config(coturn_lt), lt_config(coturn_lt))
    assert_relayed(stats)
    # one allocation per connection attempt (a restart under load makes another)
    assert len(coturn_lt.allocations(LT_USER[0])) >= 2, coturn_lt.log()
    assert coturn_lt.log().count("CHANNEL_BIND processed, success") >= 2


async def test_rest_credentials_minted_by_collabd_relay_only(
    signaling: SignalingServer, coturn_rest: Coturn
) -> None:
    stats = await relayed_pair(
        signaling.url,
        "turn-rest",
        rest_config(coturn_rest, "peer-a"),
        rest_config(coturn_rest, "peer-b"),
    )
    assert_relayed(stats)
    users = coturn_rest.allocations(r"\d+:peer-[ab]")
    assert {u.split(":")[1] for u in users} == {"peer-a", "peer-b"}, coturn_rest.log()
    expiry = int(users[0].split(":")[0])
    assert time.time() < expiry <= time.time() + 600  # turn_ttl: coturn checked it
    assert coturn_rest.log().count("CHANNEL_BIND processed, success") >= 2


async def test_relay_policy_gathers_only_relay_candidates(coturn_rest: Coturn) -> None:
    """What a relay-only aiortc offers: one relay candidate with a good credential, none with
    a credential from the wrong secret (coturn answers 401, ICE has nothing to try)."""
    for secret, expected in ((REST_SECRET, ["relay"]), ("not-the-secret-0123456789", [])):
        pc = RTCPeerConnection(rtc_configuration(rest_config(coturn_rest, "gather", secret)))
        try:
            pc.createDataChannel("probe")
            await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
            sdp = pc.localDescription.sdp
        finally:
            await pc.close()
        types = [line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if " typ " in line]
        assert types == expected, f"{sdp}\ncoturn:\n{coturn_rest.log()[-3000:]}"
    await anyio.to_thread.run_sync(
        coturn_rest.wait_for, r"user <\d+:gather>: incoming packet \w+ processed, error 401"
    )


async def test_no_connection_when_coturn_refuses_to_relay(
    signaling: SignalingServer, tmp_path: Path
) -> None:
    """The negative control: coturn with the production denials (private ranges) and without
    the test's ``allowed-peer-ip`` refuses every permission, and relay-only peers then have no
    way to reach each other."""
    coturn = Coturn(tmp_path / "coturn-deny", user=LT_USER, allow_relay_ip=False)
    coturn.start()
    try:
        config = lt_config(coturn, connect_timeout=60.0)
        async with (
            WebrtcPeer("turn-denied", signaling.url, config=config) as a,
            WebrtcPeer("turn-denied", signaling.url, config=config) as b,
        ):
            # both allocated, then asked to relay to each other: 403 Forbidden
            await anyio.to_thread.run_sync(
                coturn.wait_for, r"(CREATE_PERMISSION|CHANNEL_BIND) processed, error 403", 30
            )
            assert a.connected_peers() == [] and b.connected_peers() == []
        assert "processed, success" in coturn.log()  # the allocations themselves worked
    finally:
        coturn.stop()
