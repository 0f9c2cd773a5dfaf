"""The long-running commands' options come from one settings model each: ``--help`` names
every field's flag and env var, and every option reaches the settings (collabd.options)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from collabd.cli import app
from collabd.options import option_specs, settings_from_params
from collabd.settings import ReplicaSettings, ServeSettings, SignalingCommandSettings

COMMANDS: dict[str, type[BaseSettings]] = {
    "serve": ServeSettings,
    "replica": ReplicaSettings,
    "signaling": SignalingCommandSettings,
}

# A valid, non-default command-line value for every field of every command.
SAMPLES: dict[str, list[str]] = {
    "host": ["0.0.0.0"],
    "port": ["9"],
    "data": ["/tmp/collab-data"],
    "store": ["sqlite:////tmp/x.db"],
    "rooms": ["notes-*"],
    "room_passwords": ["secret:pw", "other:p:w"],
    "tls_cert": ["/tmp/cert.pem"],
    "tls_key": ["/tmp/key.pem"],
    "web_dir": ["/tmp/web"],
    "idle_unload_after": ["5"],
    "workers": ["3"],
    "allowed_hosts": ["collab.example", "*.example.org"],
    "ice_servers": ["stun:stun.example.org:3478"],
    "text_name": ["prosemirror"],
    "version_pause": ["2.5"],
    "version_every": ["7"],
    "log_level": ["DEBUG"],
    "log_format": ["json"],
    "signaling": ["ws://127.0.0.1:4444"],
    "room": ["a", "b:pw"],
    "lease_ttl": ["3"],
    "name": ["keeper"],
    "redis_url": ["redis://127.0.0.1:6379/0"],
    "config": ["/tmp/collab.env"],
    "allow_delete": [],  # a flag: given alone
    "turn_secret": ["0123456789abcdef0123"],
    "turn_urls": ["turn:127.0.0.1:3478?transport=udp"],
    "turn_ttl": ["600"],
    "ice_transport_policy": ["relay"],
    "webhook_urls": ["http://127.0.0.1:9/hook", "https://user:pw@hooks.example/x"],
    "webhook_secret": ["0123456789abcdef-hook"],
    "webhook_events": ["version.recorded", "room.deleted"],
    "webhook_timeout": ["2.5"],
    "webhook_attempts": ["3"],
    "webhook_queue": ["50"],
}


def _command(name: str) -> Any:
    group: Any = typer.main.get_command(app)  # typer's own click-compatible group
    return group.commands[name]


def _parse(name: str, args: list[str]) -> Any:
    ctx = _command(name).make_context(name, list(args))
    return settings_from_params(COMMANDS[name], ctx.params)


@pytest.fixture(autouse=True)
def _no_collab_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("COLLAB_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_names_every_flag_and_env_var(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert result.exit_code == 0, result.output
    text = re.sub(r"[\s│]+", " ", result.output)
    for spec in option_specs(COMMANDS[name]):
        assert re.search(rf"{re.escape(spec.flag)}\b", text), spec.flag
        assert f"env: {spec.env}" in text, spec.env


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_reaches_the_settings(name: str) -> None:
    model = COMMANDS[name]
    args: list[str] = []
    for spec in option_specs(model):
        if spec.kind == "flag":
            args.append(spec.flag)  # --allow-delete (the default is off)
        for value in SAMPLES[spec.name]:
            args += [spec.flag, value]
    settings = _parse(name, args)
    for field, info in model.model_fields.items():
        value = getattr(settings, field)
        if not info.is_required():
            assert value != info.get_default(call_default_factory=True), field
    if name == "serve":
        assert settings.room_passwords == {"secret": "pw", "other": "p:w"}
        assert settings.allowed_hosts == ["collab.example", "*.example.org"]
        assert settings.data == Path("/tmp/collab-data") and settings.version_every == 7
    if name == "replica":
        assert settings.room == ["a", "b:pw"] and settings.replica_options().version_every == 7


def test_env_fills_what_the_command_line_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_VERSION_EVERY", "11")
    monkeypatch.setenv("COLLAB_ALLOWED_HOSTS", '["a.example"]')
    monkeypatch.setenv("COLLAB_ROOM_PASSWORDS", '{"r": "pw"}')
    monkeypatch.setenv("COLLAB_PORT", "8100")
    settings = _parse("serve", ["--port", "8200"])
    assert settings.version_every == 11 and settings.port == 8200
    assert settings.allowed_hosts == ["a.example"] and settings.room_passwords == {"r": "pw"}
    defaults = _parse("serve", [])
    assert defaults.text_name == "codemirror" and defaults.port == 8100


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["serve", "--log-level", "loud"], {}, "invalid --log-level / COLLAB_LOG_LEVEL"),
        (
            ["serve"],
            {"COLLAB_VERSION_EVERY": "0"},
            "invalid --version-every / COLLAB_VERSION_EVERY",
        ),
        (["replica", "--store", "sqlite:////tmp/x.db"], {}, "missing --signaling"),
        (["signaling", "--port", "70000"], {}, "invalid --port / COLLAB_PORT"),
        (["serve", "--room-password", "nocolon"], {}, "--room-password wants KEY:VALUE"),
    ],
)
def test_invalid_settings_are_one_usage_line(
    args: list[str], env: dict[str, str], words: str
) -> None:
    result = CliRunner().invoke(app, args, env=env)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert any(words in line for line in lines), result.output
    assert "Traceback" not in result.output
