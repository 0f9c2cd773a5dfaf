"""A throw-away PostgreSQL server for tests: initdb + postgres on 127.0.0.1, as a non-root user.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the system
user ``collabtest`` (created with ``useradd -r`` if missing) through ``setpriv`` (which execs,
so the PID we hold is the postmaster's own). The data directory and the unix-socket directory
live in a fresh temp dir; the server is stopped by PID.

postgres can neither take an inherited socket nor bind port 0 and report it, so it is told a
port from :func:`~tests.support.ports.free_port` and started again on another one if that port
was taken meanwhile (:func:`~tests.support.ports.on_free_port`).

Example:
    >>> with PostgresServer.start() as pg:  # doctest: +SKIP
    ...     dsn = pg.create_database("t1")
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg

from tests.support.ports import PortTaken, on_free_port
from tests.support.processes import Process

PG_BIN = Path(os.environ.get("COLLAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "collabtest"


def pg_available() -> str | None:
    """``None`` if the PostgreSQL binaries exist, else the reason to skip."""
    for tool in ("initdb", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binary {PG_BIN / tool} not found"
    return None


def _ensure_user() -> tuple[int, int] | None:
    """(uid, gid) to run as, or ``None`` when not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_USER)
    return entry.pw_uid, entry.pw_gid


@dataclass
class PostgresServer:
    """A running server; use :meth:`start` as a context manager."""

    root: Path
    port: int
    process: Process
    n_dbs: int = 0

    @property
    def admin_dsn(self) -> str:
        """DSN of the ``postgres`` database as superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + start the postmaster; returns once it accepts connections."""
        reason = pg_available()
        if reason is not None:
            raise RuntimeError(reason)
        root = Path(tempfile.mkdtemp(prefix="collab-pg-"))
        try:
            ids = _ensure_user()
            data, sock = root / "data", root / "sock"
            sock.mkdir()
            os.chmod(root, 0o755)
            prefix: list[str] = []
            if ids is not None:
                uid, gid = ids
                os.chown(root, uid, gid)
                os.chown(sock, uid, gid)
                prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
            env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(root)}
            subprocess.run(
                [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, env=env, cwd=root,
            )  # fmt: skip

            def postmaster(port: int) -> PostgresServer:
                process = Process(
                    [*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port),
                     "-k", str(sock), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                     "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                     "-c", "max_connections=100"],
                    root / "postgres.log",
                )  # fmt: skip
                process.env = env  # exactly this environment, nothing of ours on top
                process.start()
                try:
                    process.wait_ready(r"database system is ready to accept connections", 60)
                except RuntimeError:
                    if "Address already in use" in process.output():
                        raise PortTaken(port) from None
                    raise
                return cls(root, port, process)

            return on_free_port(postmaster)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def log_tail(self) -> str:
        """The end of the server log (for error messages)."""
        return self.process.output()[-2000:]

    def create_database(self, prefix: str = "t") -> str:
        """Create a fresh empty database; returns its DSN."""
        self.n_dbs += 1
        name = f"{prefix}_{self.n_dbs}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL if it hangs, then remove the temp dir."""
        try:
            self.process.kill(signal.SIGINT, timeout=30)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
