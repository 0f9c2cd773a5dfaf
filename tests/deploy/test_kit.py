"""The deploy kit's files agree with each other and with collab, without Docker: every
``${NAME}`` has a value in ``.env.example`` (or, for the nginx template, in the proxy's
environment), every ``COLLAB_*`` variable is a setting ``collab serve`` reads and its value is
valid, nginx accepts the rendered configuration, and systemd accepts the unit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from collabd.settings import ServeSettings
from collabd.turn import IceConfig
from signaling.settings import SignalingSettings
from tests.deploy.kit import (
    DEPLOY,
    NGINX,
    Nginx,
    compose,
    proxy_environment,
    read_env_file,
    variables,
)
from tests.replica.certs import self_signed
from tests.support.paths import COLLAB

EXAMPLE = read_env_file(DEPLOY / ".env.example")
SAMPLE = {
    **EXAMPLE,
    "TURN_SECRET": "0123456789abcdef0123456789abcdef",
    "POSTGRES_PASSWORD": "fedcba9876543210",
}
"""``.env.example`` with its secrets filled in."""
NOT_COLLAB = {"FORWARDED_ALLOW_IPS"}
"""Variables of collab.env that are not ``COLLAB_*`` settings (uvicorn reads this one)."""


def test_every_name_has_a_value() -> None:
    used = variables((DEPLOY / "compose.yaml").read_text()) | variables(
        (DEPLOY / "collab.env").read_text()
    )
    assert used == set(EXAMPLE), "compose.yaml + collab.env vs .env.example"
    proxy = compose()["services"]["proxy"]["environment"]
    assert variables((DEPLOY / "nginx.conf").read_text()) == set(proxy)


def test_compose_topology() -> None:
    services = compose()["services"]
    assert set(services) == {"proxy", "collab-1", "collab-2", "postgres", "redis", "coturn"}
    for name in ("collab-1", "collab-2"):
        assert services[name]["env_file"] == ["collab.env"]
        assert services[name]["command"] == ["serve"]
    proxy = services["proxy"]
    assert "./nginx.conf:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    assert {
        proxy["environment"]["COLLAB_UPSTREAM_1"],
        proxy["environment"]["COLLAB_UPSTREAM_2"],
    } == {
        "collab-1:8000",
        "collab-2:8000",
    }
    assert proxy["ports"] == ["80:80", "443:443"]
    assert (proxy["environment"]["HTTP_PORT"], proxy["environment"]["HTTPS_PORT"]) == ("80", "443")
    coturn = services["coturn"]
    assert coturn["command"][:2] == ["-c", "/etc/coturn/turnserver.conf"]
    assert "./turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn["volumes"]


def test_collab_env_is_valid_for_collab_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    env = read_env_file(DEPLOY / "collab.env", SAMPLE)
    known = {f"COLLAB_{name.upper()}" for name in ServeSettings.model_fields} | {
        f"COLLAB_{name.upper()}" for name in SignalingSettings.model_fields
    }
    unknown = {key for key in env if key not in known | NOT_COLLAB}
    assert not unknown, f"not settings of collab serve: {unknown}"
    for key in list(os.environ):
        if key.startswith("COLLAB_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    serve = ServeSettings()
    signaling = SignalingSettings()
    assert serve.store_url == "postgresql://collab:fedcba9876543210@postgres:5432/collab"
    assert serve.allowed_hosts == ["collab.example.org"]
    assert signaling.redis_url == "redis://redis:6379/0"
    assert signaling.allowed_origins == ["https://collab.example.org"]
    ice = IceConfig.from_settings(serve, [])
    assert ice.turn_urls == (
        "turn:collab.example.org:3478?transport=udp",
        "turn:collab.example.org:3478?transport=tcp",
    )
    assert ice.turn_secret == SAMPLE["TURN_SECRET"]


@pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (scripts/bootstrap --test)")
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "collab.example.org")
    env = {
        **proxy_environment(SAMPLE),
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
        "COLLAB_UPSTREAM_1": "127.0.0.1:8001",
        "COLLAB_UPSTREAM_2": "127.0.0.1:8002",
    }
    Nginx(tmp_path / "nginx", env, as_root=False).check()


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze")
def test_systemd_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    text = (DEPLOY / "systemd" / "collab@.service").read_text()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure"):
        assert line in text.splitlines()
    assert "EnvironmentFile=/etc/collab/collab.env" in text.splitlines()
    # verify checks that ExecStart's program exists: point it at this checkout's collab
    unit = tmp_path / "collab@.service"
    unit.write_text(text.replace("/opt/collab/bin/collab", COLLAB))
    instance = str(tmp_path / "collab@8000.service")
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", instance], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", instance],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout
