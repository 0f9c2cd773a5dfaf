"""Import layering, checked by parsing every .py under collab/, signaling/ and collabd/ with ast.

Rules (AGENTS.md / architecture notes):

* ``collab`` never imports ``signaling`` or ``collabd``;
* ``signaling`` never imports ``collab``, ``collabd``, ``pycrdt`` or ``aiortc``;
* core collab modules (everything in ``collab/`` except ``collab/peer/``,
  ``collab/replica/`` and the API table ``collab/__init__.py``, whose peer/replica
  re-exports load lazily on attribute access) never import aiortc, FastAPI, Starlette, uvicorn
  or ``collab.peer``;
* only ``collab/peer/`` imports ``aiortc`` (and ``aioice``/``pyee``, its event plumbing).

Relative imports are resolved; ``TYPE_CHECKING`` imports count too (an edge is an edge).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("collab", "signaling", "collabd")


@dataclass(frozen=True)
class Rule:
    """Modules matching ``applies`` must not import anything under ``forbidden``."""

    name: str
    applies: Callable[[str, str], bool]  # (module name, posix path relative to ROOT)
    forbidden: tuple[str, ...]


def _is_core(module: str, path: str) -> bool:
    if module.split(".")[0] != "collab":
        return False
    if module == "collab":  # the public API table: re-exports peer/replica lazily (PEP 562)
        return False
    if module == "collab.peer" or module.startswith("collab.peer."):
        return False
    return not (module == "collab.replica" or module.startswith("collab.replica."))


RULES: tuple[Rule, ...] = (
    Rule(
        "collab must not import signaling/collabd",
        lambda m, p: m.split(".")[0] == "collab",
        ("signaling", "collabd"),
    ),
    Rule(
        "signaling must not import collab/collabd/pycrdt/aiortc",
        lambda m, p: m.split(".")[0] == "signaling",
        ("collab", "collabd", "pycrdt", "aiortc"),
    ),
    Rule(
        "core collab modules must not import aiortc/fastapi/starlette/uvicorn/collab.peer",
        _is_core,
        ("aiortc", "aioice", "fastapi", "starlette", "uvicorn", "collab.peer"),
    ),
    Rule(
        "only collab/peer may import aiortc",
        lambda m, p: not (m == "collab.peer" or m.startswith("collab.peer.")),
        ("aiortc", "aioice", "pyee"),
    ),
)


def module_name(path: str) -> str:
    """``collab/peer/__init__.py`` → ``collab.peer``; ``collab/sync.py`` → ``collab.sync``."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: str, source: str) -> list[tuple[int, str]]:
    """Every module a file imports, absolute, with line numbers.

    ``from a.b import c`` yields both ``a.b`` and ``a.b.c`` (``c`` may be a submodule).
    """
    module = module_name(path)
    is_package = Path(path).name == "__init__.py"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                keep = len(package_parts) - (node.level - 1)
                base_parts = package_parts[: max(keep, 0)]
                if node.module:
                    base_parts = [*base_parts, *node.module.split(".")]
                base = ".".join(base_parts)
            else:
                base = node.module or ""
            if base:
                out.append((node.lineno, base))
            out.extend(
                (node.lineno, f"{base}.{alias.name}" if base else alias.name)
                for alias in node.names
                if alias.name != "*"
            )
    return out


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(files: Iterable[tuple[str, str]]) -> list[str]:
    """All forbidden edges in ``files`` (pairs of posix path relative to ROOT, source)."""
    found: list[str] = []
    for path, source in files:
        module = module_name(path)
        for lineno, target in imported_modules(path, source):
            for rule in RULES:
                if rule.applies(module, path) and any(_under(target, f) for f in rule.forbidden):
                    found.append(f"{path}:{lineno}: {module} imports {target} ({rule.name})")
    return sorted(set(found))


def _project_files() -> list[tuple[str, str]]:
    files = []
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            files.append((rel, file.read_text(encoding="utf-8")))
    return files


def test_project_has_no_forbidden_import_edges() -> None:
    files = _project_files()
    assert any(path == "collab/protocol.py" for path, _ in files)
    assert violations(files) == []


def test_checker_catches_synthetic_forbidden_edges() -> None:
    bad = [
        ("collab/protocol.py", "import aiortc\n"),
        ("collab/sync.py", "from .peer import datachannel\n"),
        ("collab/storage/sqlite.py", "from ..peer.datachannel import X\n"),
        ("collab/document.py", "from fastapi import FastAPI\n"),
        ("collab/errors.py", "import signaling.app\n"),
        ("collab/replica/_archiver.py", "from aiortc import RTCPeerConnection\n"),
        ("signaling/app.py", "from collab import protocol\n"),
        ("signaling/topics.py", "import pycrdt\n"),
        ("collabd/cli.py", "import pyee\n"),
    ]
    found = violations(bad)
    for path, _ in bad:
        assert any(v.startswith(path + ":") for v in found), path
    assert any("collab.peer.datachannel" in v for v in found)  # relative import resolved


def test_checker_allows_permitted_edges() -> None:
    good = [
        ("collab/peer/datachannel.py", "from aiortc import RTCDataChannel\nimport pyee\n"),
        ("collab/peer/__init__.py", "from .connection import Peer\nfrom ..protocol import X\n"),
        ("collab/replica/_archiver.py", "from collab.peer import Peer\nfrom ..sync import X\n"),
        ("collabd/app.py", "from fastapi import FastAPI\nimport collab.peer\nimport signaling\n"),
        ("signaling/app.py", "from fastapi import FastAPI\nfrom .topics import Topics\n"),
        ("collab/sync.py", "from collab import protocol\nfrom . import document\n"),
    ]
    assert violations(good) == []


def test_importing_the_core_does_not_load_aiortc_or_fastapi() -> None:
    """The runtime view of the same rule: ``import collab`` and the core stay light."""
    import subprocess
    import sys

    code = (
        "import sys, collab, collab.protocol, collab.sync, collab.document, collab.awareness, "
        "collab.storage, collab.history, collab.update_split, collab.crypto\n"
        "heavy = [m for m in ('aiortc', 'aioice', 'fastapi', 'starlette', 'uvicorn', 'signaling')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
