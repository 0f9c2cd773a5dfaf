"""The distribution as a user gets it: ``python -m build``, then the wheel in fresh venvs.

- the wheel is ``collab-ywebrtc``, carries the built page as ``collabd/web/``, and its base
  requirements hold no role's packages;
- ``[all]``: ``collab serve --help`` works, and a real ``collab serve`` answers ``/`` with the
  packaged page;
- ``[signaling]``: ``import signaling.app`` works without aiortc or pycrdt installed, a real
  ``collab signaling`` answers a y-webrtc ping, and ``collab serve`` says in one line which
  extra it needs;
- ``[replica]``: the peer, the replica and the archive tools work without FastAPI or uvicorn;
- the base install: ``collab --help`` works, and a command needing extras names them.

Everything runs offline, inside the test network namespace: the wheel is built with
``--no-isolation`` (hatchling is in the dev extra) and installed with ``pip --no-index`` from
the built wheel plus ``.venv/wheelhouse``, where ``scripts/bootstrap --test`` collects a wheel
of every dependency. The venvs are made once per session (``venv --without-pip``; this
project's pip installs into them with ``--python``, without byte-compiling: most of the time
otherwise), all at once.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

from collabd.extras import DIST, missing_line

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
ROLE_PACKAGES = ("aiortc", "pycrdt", "fastapi", "uvicorn", "psycopg", "redis")

pytestmark = pytest.mark.skipif(
    not (WHEELHOUSE / ".collab-stamp").is_file(),
    reason="needs the dependency wheels in .venv/wheelhouse: scripts/bootstrap --test",
)


def _run(cmd: list[str], timeout: float = 240) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (built,) = out.glob("*.whl")
    return built


@dataclass
class Venv:
    """A fresh venv with the wheel installed, with one set of extras."""

    root: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args[0]`` from the venv's ``bin/`` (not checked), in an empty directory."""
        return subprocess.run(
            [str(self.root / "bin" / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            env={**_clean_env(), **(env or {})},
        )

    def python(self, code: str) -> str:
        done = self.run("python", "-c", code)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()


def _clean_env() -> dict[str, str]:
    """The environment without this checkout's settings and paths (the venv stands alone)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COLLAB_", "PYTHON", "VIRTUAL_ENV"))
    }


@pytest.fixture(scope="session")
def venvs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    """Venvs with ``[all]``, ``[signaling]``, ``[replica]`` and nothing extra, installed in
    parallel."""
    base = tmp_path_factory.mktemp("venvs")
    specs = {
        "all": f"{wheel}[all]",
        "signaling": f"{wheel}[signaling]",
        "replica": f"{wheel}[replica]",
        "base": str(wheel),
    }
    procs = {}
    for name, requirement in specs.items():
        root = base / name
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(root / "bin" / "python")]
        offline = ["--no-index", "--find-links", str(WHEELHOUSE)]
        procs[name] = subprocess.Popen(
            [*pip, "install", "--quiet", "--no-compile", *offline, requirement],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_clean_env(),
        )
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"pip install {specs[name]}:\n{output}"
    return {name: Venv(base / name) for name in specs}


@dataclass
class Running:
    """A long-running command from a venv; its output lines arrive on a queue."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    seen: list[str]

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                seen = "".join(self.seen)
                raise AssertionError(f"no line matching {pattern!r} in:\n{seen}") from None
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
            if line == "":
                raise AssertionError(f"exited before {pattern!r}:\n{''.join(self.seen)}")


Start = Callable[..., Running]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start commands from a venv; each is ended by its PID afterwards."""
    started: list[tuple[subprocess.Popen[str], threading.Thread]] = []

    def _start(venv: Venv, *args: str) -> Running:
        proc = subprocess.Popen(
            [str(venv.root / "bin" / args[0]), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=venv.root,
            env=_clean_env(),
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put("")  # end of output

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        started.append((proc, reader))
        return Running(proc, lines, [])

    yield _start
    for proc, reader in started:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()


def test_wheel_is_named_carries_the_page_and_keeps_roles_optional(wheel: Path) -> None:
    assert wheel.name.startswith("collab_ywebrtc-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = Parser().parsestr(zf.read(f"{info}/METADATA").decode())
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
        index = zf.read("collabd/web/index.html").decode()
    assert {n.split("/")[0] for n in names} == {"collab", "signaling", "collabd", info}
    for page_file in ("index.html", "app.js", "style.css", "sw.js"):
        assert f"collabd/web/{page_file}" in names
    assert "app.js" in index
    assert "collabd/py.typed" in names and "collab/py.typed" in names
    assert metadata["Name"] == DIST
    assert {"signaling", "replica", "postgres", "redis", "all"} <= set(
        metadata.get_all("Provides-Extra") or []
    )
    always = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert always and not [r for r in always if r.startswith(ROLE_PACKAGES)], always
    assert re.search(r"^collab = collabd\.cli:app$", entry_points, re.M), entry_points


def test_all_extra_runs_the_commands(venvs: dict[str, Venv]) -> None:
    venv = venvs["all"]
    for command in ("serve", "signaling", "replica", "export"):
        done = venv.run("collab", command, "--help")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Usage: collab " + command in done.stdout
    packaged = venv.python("from collabd.webdir import default_web_dir; print(default_web_dir())")
    assert Path(packaged).is_relative_to(venv.root), packaged  # the wheel's copy, not ROOT's
    assert (Path(packaged) / "index.html").is_file()


def test_installed_server_serves_the_packaged_page(
    venvs: dict[str, Venv], start: Start, tmp_path: Path
) -> None:
    venv = venvs["all"]
    server = start(venv, "collab", "serve", "--port", "0", "--data", str(tmp_path))
    url = server.wait_for(r"collab is serving on (http://\S+/)").group(1)
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    packaged = venv.python("from collabd.webdir import default_web_dir; print(default_web_dir())")
    assert body == (Path(packaged) / "index.html").read_text()


def test_signaling_extra_has_no_webrtc_and_serves_signaling(
    venvs: dict[str, Venv], start: Start
) -> None:
    venv = venvs["signaling"]
    absent = venv.python(
        "import importlib.util, signaling.app, signaling.server\n"
        "print([m for m in ('aiortc', 'pycrdt', 'psycopg', 'redis')"
        " if importlib.util.find_spec(m) is not None])"
    )
    assert absent == "[]"
    done = venv.run("collab", "signaling", "--help")
    assert done.returncode == 0, done.stdout + done.stderr

    server = start(venv, "collab", "signaling", "--port", "0")
    url = server.wait_for(r"serving on (ws://\S+/signaling)").group(1)
    from websockets.sync.client import connect

    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}

    for args, extras in (
        (["serve", "--port", "0"], ["replica"]),
        (
            ["replica", "--signaling", "ws://x", "--room", "r", "--store", "sqlite:///x"],
            ["replica"],
        ),
        (["signaling", "--redis", "redis://127.0.0.1:1/0"], ["redis"]),
    ):
        done = venv.run("collab", *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr == missing_line(args[0], extras) + "\n"


def test_replica_extra_runs_the_peer_and_the_archive_without_fastapi(
    venvs: dict[str, Venv], tmp_path: Path
) -> None:
    venv = venvs["replica"]
    absent = venv.python(
        "import importlib.util, collab.peer, collab.replica, collab.storage, collabd.replica_main\n"
        "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'psycopg', 'redis')"
        " if importlib.util.find_spec(m) is not None])"
    )
    assert absent == "[]"
    done = venv.run("collab", "replica", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    store = f"sqlite:///{tmp_path}/archive.db"
    done = venv.run("collab", "export", "notes", "--store", store)
    assert (done.returncode, done.stderr) == (2, "error: room-not-found: no stored room 'notes'\n")
    done = venv.run("collab", "signaling")
    assert (done.returncode, done.stderr) == (1, missing_line("signaling", ["signaling"]) + "\n")


def test_base_install_names_the_extras_a_command_needs(venvs: dict[str, Venv]) -> None:
    venv = venvs["base"]
    done = venv.run("collab", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    done = venv.run("collab", "serve", "--help")
    assert done.returncode == 0 and "--data" in done.stdout, done.stdout + done.stderr
    done = venv.run("collab", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        "error: collab serve needs the 'signaling' and 'replica' extras: "
        f"pip install '{DIST}[signaling,replica]'\n"
    )
    done = venv.run("collab", "export", "notes", env={"COLLAB_STORE": "postgresql://db/x"})
    assert done.stderr == missing_line("export", ["replica", "postgres"]) + "\n"
    installed = venv.python(
        "import importlib.util\n"
        "print([m for m in ('fastapi', 'uvicorn', 'aiortc', 'pycrdt', 'psycopg', 'redis')"
        " if importlib.util.find_spec(m) is not None])"
    )
    assert installed == "[]"
