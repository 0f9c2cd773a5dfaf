"""Which optional extra each ``collab`` command needs, and the one line saying so when missing.

The distribution (``collab-ywebrtc``) installs the ``collab`` command and its settings; every
role is an extra (``pyproject.toml``): ``signaling`` (FastAPI + uvicorn), ``replica`` (aiortc +
pycrdt), ``postgres``, ``redis``, and ``all``. A command whose extra is missing stops before
it imports anything heavy, with one line on stderr instead of a ``ModuleNotFoundError``
traceback::

    error: collab serve needs the 'replica' extra: pip install 'collab-ywebrtc[replica]'

An extra counts as installed when every module in :data:`PROBES` for it can be found (found,
not imported: the check costs a few directory look-ups). ``--help`` always works.

Example:
    >>> without_aiortc = lambda module: module != "aiortc"
    >>> missing_extras("serve", [], {}, installed=without_aiortc)
    ['replica']
    >>> missing_line("serve", ["replica"])
    "error: collab serve needs the 'replica' extra: pip install 'collab-ywebrtc[replica]'"
    >>> missing_extras("export", ["notes", "--store", "postgresql://db/x"], {},
    ...                installed=lambda module: module != "psycopg")
    ['postgres']
    >>> missing_extras("serve", ["--help"], {}, installed=lambda module: False)
    []
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "COMMANDS",
    "DIST",
    "EXIT_CODE",
    "PROBES",
    "missing_extras",
    "missing_line",
    "require_extras",
]

DIST = "collab-ywebrtc"
"""The distribution name on the package index (``collab`` there is an unrelated project)."""

EXIT_CODE = 1
"""Exit code of a missing extra: a runtime failure at start (the machine lacks a package)."""

PROBES: dict[str, tuple[str, ...]] = {
    "signaling": ("fastapi", "uvicorn", "websockets", "jwt", "orjson", "prometheus_client"),
    "replica": ("aiortc", "pycrdt", "cryptography", "websockets", "httpx"),
    "postgres": ("psycopg",),
    "redis": ("redis",),
}
"""Top-level modules that prove an extra is installed (a subset of its requirements that the
code imports; keep in step with ``[project.optional-dependencies]``)."""

COMMANDS: dict[str, tuple[str, ...]] = {
    "serve": ("signaling", "replica"),
    "signaling": ("signaling",),
    "token": ("signaling",),
    "replica": ("replica",),
    "export": ("replica",),
    "import": ("replica",),
    "versions": ("replica",),
    "diff": ("replica",),
    "restore": ("replica",),
    "blame": ("replica",),
    "fork": ("replica",),
}
"""The extras each sub-command always needs. ``postgres`` and ``redis`` are added when the
command is pointed at PostgreSQL (``--store``/``COLLAB_STORE``) or Redis
(``--redis``/``COLLAB_REDIS_URL``)."""

_STORE_COMMANDS = frozenset(
    {"serve", "replica", "export", "import", "versions", "diff", "restore", "blame", "fork"}
)
_REDIS_COMMANDS = frozenset({"serve", "signaling"})
_HELP = frozenset({"--help", "-h"})


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


def _option(args: Sequence[str], names: Sequence[str]) -> str | None:
    """The value of the last ``--name VALUE`` or ``--name=VALUE`` among ``args``."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
    return value


def missing_extras(
    command: str | None,
    args: Sequence[str],
    environ: Mapping[str, str],
    *,
    installed: Callable[[str], bool] = _found,
) -> list[str]:
    """The extras ``collab <command> <args>`` needs that are not installed, in install order.

    Args:
        command: the sub-command (``None`` or an unknown name: nothing is required).
        args: the sub-command's own arguments (``--help`` among them: nothing is required).
        environ: the environment (``COLLAB_STORE``, ``COLLAB_REDIS_URL``).
        installed: whether a top-level module can be imported (default: found on sys.path).
    """
    if command not in COMMANDS or _HELP & set(args):
        return []
    needed = list(COMMANDS[command])
    if command in _STORE_COMMANDS:
        store = _option(args, ("--store",)) or environ.get("COLLAB_STORE", "")
        if store.startswith(("postgresql:", "postgres:")):
            needed.append("postgres")
    if command in _REDIS_COMMANDS and (
        _option(args, ("--redis", "--redis-url")) or environ.get("COLLAB_REDIS_URL")
    ):
        needed.append("redis")
    return [extra for extra in needed if not all(installed(m) for m in PROBES[extra])]


def missing_line(command: str, extras: Sequence[str]) -> str:
    """The one line printed for ``extras`` missing from ``collab <command>``."""
    quoted = " and ".join(f"'{extra}'" for extra in extras)
    noun = "extra" if len(extras) == 1 else "extras"
    return (
        f"error: collab {command} needs the {quoted} {noun}: "
        f"pip install '{DIST}[{','.join(extras)}]'"
    )


def _command_args(command: str, argv: Sequence[str]) -> list[str]:
    """The arguments after ``command`` on the command line ``argv`` (``sys.argv[1:]``): the
    group's own flags (``--debug``) come first. Empty when ``argv`` is not a ``collab`` command
    line for ``command`` (e.g. under a test runner)."""
    for i, arg in enumerate(argv):
        if arg == command:
            return list(argv[i + 1 :])
        if not arg.startswith("-"):
            break
    return []


def require_extras(
    command: str | None,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Stop ``collab <command>`` with one line and :data:`EXIT_CODE` when an extra it needs is
    not installed. Called from the ``collab`` group callback with ``ctx.invoked_subcommand``
    (the sub-command's arguments are read from ``argv``, default ``sys.argv[1:]``).

    Raises:
        SystemExit: with :data:`EXIT_CODE`, after printing :func:`missing_line` on stderr.
    """
    if command is None:
        return
    args = _command_args(command, sys.argv[1:] if argv is None else argv)
    missing = missing_extras(command, args, os.environ if environ is None else environ)
    if missing:
        print(missing_line(command, missing), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CODE)
