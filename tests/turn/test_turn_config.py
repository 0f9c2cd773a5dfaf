"""TURN settings without a network: coturn REST credentials, :class:`IceConfig`'s checks,
``GET /api/config`` (in process), the TURN options of ``collab serve`` and ``PeerConfig``'s
relay-only mode. (Real coturn accepting these credentials: test_turn_peers / _browsers.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from collab.peer import IceServer, PeerConfig
from collab.peer.remote import rtc_configuration
from collabd.api import api_router
from collabd.options import invalid_setting
from collabd.settings import ServeSettings
from collabd.turn import IceConfig, safe_name, turn_credential
from signaling.auth import mint_token
from signaling.settings import SignalingSettings
from tests.support.paths import COLLAB
from tests.support.processes import Process

SECRET = "north-wind-0123456789"
URL = "turn:turn.example.org:3478?transport=udp"


def test_credential_is_coturns_rest_scheme() -> None:
    # expected value from: printf 1700003600:alice | openssl dgst -sha1 -hmac "$SECRET" \
    #                        -binary | base64
    cred = turn_credential(SECRET, "alice", ttl=3600, now=1_700_000_000)
    assert cred == ("1700003600:alice", "Wvde8+1F2Uu/zgdrxaWz6hIBrLM=", 1_700_003_600)
    assert turn_credential(SECRET, "alice", ttl=3600, now=0, not_after=10).expires == 10
    for bad in ("", "a:b", "with space", "x" * 65, "é"):
        with pytest.raises(ValueError):
            turn_credential(SECRET, bad, ttl=60)
    assert safe_name("ada:lovelace") == "ada_lovelace"
    assert safe_name(":::").startswith("web-") and safe_name("") != safe_name("")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"turn_secret": SECRET}, "--turn-secret needs --turn-url"),
        ({"turn_urls": (URL,)}, "--turn-url needs --turn-secret"),
        ({"turn_urls": ("stun:x",), "turn_secret": SECRET}, "turn: or turns: URL"),
        ({"turn_urls": (URL,), "turn_secret": SECRET, "turn_ttl": 5}, "at least 60"),
        ({"policy": "relay"}, "relay needs a TURN server"),
        ({"servers": ({"urls": "stun:s.example"},), "policy": "relay"}, "needs a TURN"),
    ],
)
def test_inconsistent_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        IceConfig(**kwargs)
    assert SECRET not in str(caught.value)


def test_config_keeps_the_secret_out_of_its_repr() -> None:
    ice = IceConfig(turn_urls=(URL,), turn_secret=SECRET, policy="relay")
    assert SECRET not in repr(ice) and SECRET not in str(ice)
    static = {"urls": "turn:static.example", "username": "u", "credential": "p"}
    assert IceConfig(servers=(static,), policy="relay").has_turn
    now = time.time()
    cred = turn_credential(SECRET, "bob", ttl=3600, now=now)
    turn = {"urls": [URL], "username": cred.username, "credential": cred.credential}
    assert ice.ice_servers("bob", now=now) == [turn]


def _client(ice: IceConfig | list[dict[str, Any]], sig: SignalingSettings) -> httpx.AsyncClient:
    """The API router in process (``/api/config`` never touches the replica)."""
    app = FastAPI()
    app.include_router(api_router(lambda: None, sig, ice))  # type: ignore[arg-type,return-value]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.anyio
async def test_api_config_without_turn_is_unchanged() -> None:
    async with _client([], SignalingSettings()) as plain:
        assert (await plain.get("/api/config")).json() == {"iceServers": []}
    stun = [{"urls": ["stun:s.example:3478"]}]
    async with _client(stun, SignalingSettings()) as client:
        assert (await client.get("/api/config")).json() == {"iceServers": stun}


@pytest.mark.anyio
async def test_api_config_mints_a_credential_per_request() -> None:
    ice = IceConfig(turn_urls=(URL,), turn_secret=SECRET, turn_ttl=600, policy="relay")
    async with _client(ice, SignalingSettings()) as client:
        first = await client.get("/api/config")
        again = (await client.get("/api/config")).json()
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert body["iceTransportPolicy"] == "relay" and 590 <= body["credentialTtl"] <= 600
    [turn] = body["iceServers"]
    expiry, name = turn["username"].split(":")
    assert abs(int(expiry) - (time.time() + 600)) < 10 and name.startswith("web-")
    assert turn["credential"] == turn_credential(SECRET, name, ttl=0, now=int(expiry))[1]
    assert again["iceServers"][0]["username"] != turn["username"]
    assert SECRET not in first.text


@pytest.mark.anyio
async def test_api_config_with_access_control() -> None:
    """Only token holders get TURN credentials; the user name is the token's subject and the
    credential never outlives the token."""
    token_secret = "token-secret-0123456789-0123456789"
    sig = SignalingSettings(auth_required=True, token_secret=token_secret)
    ice = IceConfig(turn_urls=(URL,), turn_secret=SECRET, turn_ttl=3600)
    token = mint_token(token_secret, ["notes"], ttl_seconds=120, subject="ada lovelace")
    async with _client(ice, sig) as client:
        assert (await client.get("/api/config")).status_code == 401
        body = (await client.get("/api/config", params={"token": token})).json()
    assert body["iceServers"][0]["username"].endswith(":ada_lovelace")
    assert body["credentialTtl"] <= 120


def test_serve_settings_read_the_turn_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_TURN_SECRET", SECRET)
    monkeypatch.setenv("COLLAB_TURN_URLS", f'["{URL}"]')
    monkeypatch.setenv("COLLAB_ICE_TRANSPORT_POLICY", "relay")
    settings = ServeSettings()
    assert SECRET not in repr(settings)
    ice = IceConfig.from_settings(settings, [])
    assert ice.policy == "relay" and ice.turn_urls == (URL,) and ice.turn_ttl == 3600
    monkeypatch.setenv("COLLAB_TURN_SECRET", "short-secret")
    with pytest.raises(ValidationError) as caught:
        ServeSettings()
    line = invalid_setting(caught.value, ServeSettings).line()
    assert "--turn-secret / COLLAB_TURN_SECRET" in line and "short-secret" not in line


def test_collab_serve_refuses_inconsistent_turn_options(tmp_path: Path) -> None:
    """One operator line, exit code 2, and never the secret."""
    serve = Process(
        [COLLAB, "serve", "--port", "0", "--data", str(tmp_path / "data")],
        tmp_path / "serve.log",
        {"COLLAB_TURN_SECRET": SECRET},
    )
    serve.start()
    try:
        line = serve.wait_for_line(r"^error: |is serving on", 30)
        assert serve.proc is not None
        code = serve.proc.wait(30) if line.startswith("error: ") else None
    finally:
        serve.kill()
    assert "invalid TURN settings: --turn-secret needs --turn-url" in line, line
    assert code == 2
    assert SECRET not in serve.output()


def test_peer_config_relay_only() -> None:
    with pytest.raises(ValueError, match="needs a TURN server"):
        PeerConfig(ice_transport_policy="relay")
    with pytest.raises(ValueError, match="needs a TURN server"):
        PeerConfig(ice_servers=[IceServer("stun:s.example:3478")], ice_transport_policy="relay")
    minted: list[int] = []

    def mint() -> list[IceServer]:
        minted.append(1)
        return [IceServer(URL, username=f"{len(minted)}:replica", credential="c")]

    config = PeerConfig(ice_servers_factory=mint, ice_transport_policy="relay")
    first, second = rtc_configuration(config), rtc_configuration(config)
    assert first.iceTransportPolicy.value == "relay"
    assert [s.username for s in (*first.iceServers, *second.iceServers)] == [
        "1:replica",
        "2:replica",
    ]
    assert rtc_configuration(PeerConfig()).iceTransportPolicy.value == "all"
