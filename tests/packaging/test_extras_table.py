"""``collabd.extras`` stays in step with ``pyproject.toml`` and the CLI (no venv needed).

- every module that proves an extra is installed comes from a requirement of that extra;
- every ``collab`` sub-command says which extras it needs;
- the missing-extra line is the one the README shows, and ``--help`` never needs an extra.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import typer.main

from collabd import cli
from collabd.extras import COMMANDS, DIST, PROBES, missing_extras, missing_line, require_extras

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    """Normalised distribution names of PEP 508 requirement strings."""
    return {
        re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


def test_the_distribution_is_named_as_collabd_extras_says() -> None:
    assert PROJECT["name"] == DIST
    assert PROJECT["scripts"] == {"collab": "collabd.cli:app"}


def test_each_probe_module_comes_from_its_extra() -> None:
    extras = PROJECT["optional-dependencies"]
    owners = importlib.metadata.packages_distributions()
    for extra, modules in PROBES.items():
        required = _names(extras[extra])
        for module in modules:
            dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
            assert dists & required, f"{module} ({dists}) is not required by [{extra}]"
    assert _names(extras["all"]) == {DIST}
    assert set(re.findall(r"\[(.*)\]", extras["all"][0])[0].split(",")) == set(PROBES)


def test_the_base_install_holds_no_role() -> None:
    base = _names(PROJECT["dependencies"])
    for extra in PROBES:
        assert not base & _names(PROJECT["optional-dependencies"][extra]), extra


def test_every_command_names_its_extras() -> None:
    commands = getattr(typer.main.get_command(cli.app), "commands", {})
    assert set(commands) == set(COMMANDS)
    for extras in COMMANDS.values():
        assert set(extras) <= set(PROBES)


def test_missing_extras_follow_the_command_line_and_environment() -> None:
    def nothing(module: str) -> bool:
        return False

    assert missing_extras("serve", [], {}, installed=nothing) == ["signaling", "replica"]
    assert missing_extras("serve", ["-h"], {}, installed=nothing) == []
    assert missing_extras("token", ["--room", "r"], {}, installed=nothing) == ["signaling"]
    assert missing_extras(None, [], {}, installed=nothing) == []
    assert missing_extras("unknown", [], {}, installed=nothing) == []
    postgres = {"COLLAB_STORE": "postgres://db/x"}
    assert missing_extras("diff", [], postgres, installed=nothing) == ["replica", "postgres"]
    assert missing_extras("restore", ["--store=postgresql://h/d"], {}, installed=nothing)[-1] == (
        "postgres"
    )
    assert "redis" in missing_extras("signaling", ["--redis", "redis://h"], {}, installed=nothing)
    assert "redis" in missing_extras(
        "serve", [], {"COLLAB_REDIS_URL": "redis://h"}, installed=nothing
    )
    assert "redis" not in missing_extras(
        "replica", [], {"COLLAB_REDIS_URL": "x"}, installed=nothing
    )


def test_the_line_and_the_exit() -> None:
    assert missing_line("serve", ["replica"]) == (
        f"error: collab serve needs the 'replica' extra: pip install '{DIST}[replica]'"
    )
    # everything is installed here: the check passes through, whatever the command line says
    require_extras("serve", ["--debug", "serve", "--store", "postgresql://h/d"], {})
    require_extras(None)
