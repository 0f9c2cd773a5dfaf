"""A throw-away PostgreSQL server for tests: initdb + postgres on a free port, as a non-root user.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the system
user ``collabtest`` (created with ``useradd -r`` if missing) through ``setpriv`` (which execs,
so the PID we hold is the postmaster's own). The data directory and the unix-socket directory
live in a fresh temp dir; the server listens on 127.0.0.1 and is stopped by PID.

Example:
    >>> with PostgresServer.start() as pg:  # doctest: +SKIP
    ...     dsn = pg.create_database("t1")
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg

PG_BIN = Path(os.environ.get("COLLAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "collabtest"


def pg_available() -> str | None:
    """``None`` if the PostgreSQL binaries exist, else the reason to skip."""
    for tool in ("initdb", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binary {PG_BIN / tool} not found"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    pid: int
    proc: subprocess.Popen[bytes]
    n_dbs: int = 0

    @property
    def admin_dsn(self) -> str:
        """DSN of the ``postgres`` database as superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + start the postmaster; waits until it accepts connections."""
        reason = pg_available()
        if reason is not None:
            raise RuntimeError(reason)
        root = Path(tempfile.mkdtemp(prefix="collab-pg-"))
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
        port = _free_port()
        log = open(root / "postgres.log", "wb")  # noqa: SIM115 - owned by the server object
        proc = subprocess.Popen(
            [*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port),
             "-k", str(sock), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=100"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
        log.close()
        server = cls(root, port, proc.pid, proc)
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)  # polling a starting server process, not test synchronisation
        raise RuntimeError(f"postgres not ready after {timeout}s: {last}; {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the server log (for error messages)."""
        try:
            return (self.root / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError as exc:
            return f"(no log: {exc})"

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
            if self.proc.poll() is None:
                os.kill(self.pid, signal.SIGINT)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self.proc.wait(timeout=30)
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
