"""The deploy kit (``deploy/``) as the tests use it: its files read and filled in the way
compose fills them in, and its proxy and TURN server started as local processes.

* :func:`substitute` fills ``${NAME}`` (and compose's ``${NAME:?message}``) from a mapping and
  refuses names it does not know, as ``docker compose`` refuses an unset required variable;
* :func:`read_env_file` reads ``collab.env``/``.env.example`` (``KEY=value``, ``KEY="…"`` with
  ``\\"``, ``KEY='…'`` literal, comment lines): the subset that compose's env files, systemd's
  ``EnvironmentFile=`` and ``envsubst`` agree on;
* :func:`compose` is ``deploy/compose.yaml``; :func:`coturn_options` the command line it gives
  coturn, filled in;
* :class:`Nginx` runs ``deploy/nginx.conf`` (rendered like the nginx image renders templates)
  inside a minimal main configuration; :func:`start_coturn` runs Debian's ``turnserver`` with
  ``deploy/turnserver.conf`` and compose's options.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT
from tests.support.processes import Process

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::\?[^}]*)?\}")


def variables(text: str) -> set[str]:
    """The ``${NAME}`` names ``text`` uses."""
    return set(_VAR.findall(text))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every ``${NAME}`` (or ``${NAME:?message}``) replaced by ``values[NAME]``.

    Raises:
        KeyError: a name ``values`` does not have.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"${{{name}}} has no value")
        return values[name]

    return _VAR.sub(one, text)


def read_env_file(path: Path, values: Mapping[str, str] | None = None) -> dict[str, str]:
    """``KEY=value`` lines of ``path``; with ``values``, ``${NAME}``s of unquoted and
    double-quoted values are filled in (compose leaves single-quoted ones alone)."""
    out: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not KEY=value: {raw!r}")
        literal = False
        if value.startswith("'"):
            if len(value) < 2 or not value.endswith("'"):
                raise ValueError(f"{path.name}:{number}: unterminated '")
            value, literal = value[1:-1], True
        elif value.startswith('"'):
            if len(value) < 2 or not value.endswith('"') or value.endswith('\\"'):
                raise ValueError(f'{path.name}:{number}: unterminated "')
            value = re.sub(r"\\([\"\\])", r"\1", value[1:-1])
        elif any(c in value for c in "\"' "):
            raise ValueError(f"{path.name}:{number}: quote values with quotes or spaces")
        if values is not None and not literal:
            value = substitute(value, values)
        out[key] = value
    return out


def compose() -> dict[str, Any]:
    """``deploy/compose.yaml``, parsed (names not filled in)."""
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def proxy_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The environment compose gives the proxy (what its template rendering sees)."""
    env = compose()["services"]["proxy"]["environment"]
    return {key: substitute(str(value), values) for key, value in env.items()}


def coturn_options(values: Mapping[str, str]) -> list[str]:
    """The options compose passes coturn, filled in, without ``-c <its config path>``."""
    command = [substitute(str(arg), values) for arg in compose()["services"]["coturn"]["command"]]
    at = command.index("-c")
    del command[at : at + 2]
    return command


class Nginx(Process):
    """Debian's nginx with ``deploy/nginx.conf`` rendered from ``env`` (the proxy service's
    environment), included by a minimal main configuration in ``work``."""

    def __init__(self, work: Path, env: Mapping[str, str], *, as_root: bool) -> None:
        work.mkdir(parents=True, exist_ok=True)
        site = work / "collab.conf"
        site.write_text(substitute((DEPLOY / "nginx.conf").read_text(), env))
        temp = work / "temp"
        temp.mkdir(exist_ok=True)
        main = work / "nginx.conf"
        main.write_text(
            "\n".join(
                [
                    "daemon off;",
                    "worker_processes 1;",
                    # the work directory is private to root: workers must be able to use it
                    "user root root;" if as_root else "",
                    f"pid {work}/nginx.pid;",
                    "error_log stderr notice;",
                    "events { worker_connections 1024; }",
                    "http {",
                    f"    access_log {work}/access.log;",
                    *(
                        f"    {kind}_temp_path {temp}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                    ),
                    f"    include {site};",
                    "}",
                    "",
                ]
            )
        )
        self.main = main
        super().__init__([NGINX, "-p", str(work), "-e", "stderr", "-c", str(main)], work / "log")

    def check(self) -> str:
        """``nginx -t`` on this configuration: its output (``AssertionError`` if refused)."""
        done = subprocess.run(
            [*self.args, "-t"], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    def start(self) -> None:
        super().start()
        self.wait_ready(r"start worker process \d+", 30)


def start_coturn(work: Path, values: Mapping[str, str], listen_ip: str) -> Process:
    """``turnserver -c deploy/turnserver.conf`` plus compose's options, listening and relaying
    on ``listen_ip`` (the deployment listens on every address); ready once its user database
    is open (requests are authenticated from then on)."""
    work.mkdir(parents=True, exist_ok=True)
    proc = Process(
        [
            TURNSERVER,
            "-c",
            str(DEPLOY / "turnserver.conf"),
            *coturn_options(values),
            # where this test differs from a deployment
            f"--listening-ip={listen_ip}",
            f"--relay-ip={listen_ip}",
            f"--pidfile={work / 'turnserver.pid'}",
            f"--userdb={work / 'turndb'}",
            "--verbose",  # every allocation is logged: the test reads them
            # one UDP listener: with one per CPU a client's authenticated retry can reach a
            # listener that never issued its nonce while coturn is still starting (tests/turn)
            "--relay-threads=1",
        ],
        work / "turnserver.log",
    )
    proc.start()
    proc.wait_ready(r"UDP listener opened on: \S+", 30)
    proc.wait_ready(r"DB connection success", 30)
    return proc
