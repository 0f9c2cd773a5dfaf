"""Expected failures at start, as one line an operator can act on.

Every check here turns what would otherwise be a traceback into a :class:`StartupError`: a
message saying what is wrong, a hint saying what to do next, and an exit code — 2 for usage
errors (a bad option or setting), 1 for the runtime ones (the port is taken, the store is
down). ``collab`` prints ``error: <message> — <hint>`` on stderr and exits with that code; the
traceback is shown only with ``--debug`` (or ``COLLAB_DEBUG=1``).

Example:
    >>> err = StartupError("port 8000 is already in use", "pick another with --port")
    >>> err.line(), err.exit_code
    ('error: port 8000 is already in use — pick another with --port', 1)
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import uuid
from pathlib import Path

from collab.errors import StorageError
from collabd.redact import redact_url

log = logging.getLogger("collabd")

__all__ = [
    "RUNTIME",
    "USAGE",
    "StartupError",
    "bind_listener",
    "check_tls",
    "explain_storage",
    "prepare_data_dir",
]

USAGE = 2
"""Exit code of a usage error: an option or setting is wrong."""
RUNTIME = 1
"""Exit code of a runtime failure at start: something the machine refuses."""


class StartupError(Exception):
    """An expected failure at start (see the module docstring).

    Args:
        message: what is wrong (no secrets: URLs are redacted by the callers).
        hint: what to do about it.
        exit_code: :data:`USAGE` or :data:`RUNTIME`.
    """

    def __init__(self, message: str, hint: str = "", exit_code: int = RUNTIME) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def line(self) -> str:
        """The one line printed on stderr."""
        return f"error: {self.message}" + (f" — {self.hint}" if self.hint else "")


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a :class:`StartupError` saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} is already in use on {host}",
                "stop the other server, or choose another port: --port 8001 "
                "(--port 0 picks a free one)",
            ) from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise StartupError(
                f"permission denied listening on {where}",
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; use --port 8000 behind a "
                "proxy",
            ) from exc
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            raise StartupError(
                f"{host} is not an address of this machine",
                "use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)",
                USAGE,
            ) from exc
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def prepare_data_dir(path: Path, probe_bytes: int = 64 * 1024) -> None:
    """Create the data directory and prove it is writable (a probe file is written, synced
    and removed), or raise a :class:`StartupError` saying why not."""
    hint = "choose a writable directory with --data (or COLLAB_DATA)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise StartupError(f"--data {path} exists and is not a directory", hint, USAGE) from exc
    except OSError as exc:
        raise StartupError(
            f"cannot create the data directory {path}: {exc.strerror or exc}", hint
        ) from exc
    probe = path / f".collab-write-probe-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * probe_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StartupError(
                f"the disk holding {path} is full", "free some space, or use another --data"
            ) from exc
        raise StartupError(
            f"the data directory {path} is not writable: {exc.strerror or exc}", hint
        ) from exc
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError as exc:  # a leftover 64 KiB file is harmless: say so, carry on
            log.warning("could not remove the write probe %s: %s", probe, exc)


def check_tls(cert: Path, key: Path | None) -> None:
    """Load the certificate and key as the server will, or raise a :class:`StartupError`."""
    if key is None:
        raise StartupError("--tls-cert needs --tls-key", "give the PEM private key too", USAGE)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except FileNotFoundError as exc:
        raise StartupError(
            f"TLS file not found: {exc.filename}", "check --tls-cert and --tls-key", USAGE
        ) from exc
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise StartupError(
            f"cannot use the TLS certificate and key: {reason}",
            "--tls-cert must be a PEM certificate and --tls-key its PEM private key",
            USAGE,
        ) from exc


def explain_storage(exc: StorageError, url: str) -> StartupError:
    """A :class:`StartupError` for a store that could not be opened (the URL is redacted)."""
    shown = redact_url(url)
    code = exc.code
    if code == "locked":
        return StartupError(
            f"the archive {shown} is in use by another process",
            "stop the other collab process, or give this one another --data",
        )
    if code == "read-only":
        return StartupError(
            f"the archive {shown} is read-only", "check the file's owner and permissions"
        )
    if code == "disk-full":
        return StartupError(f"the disk holding {shown} is full", "free some space")
    if code == "auth":
        return StartupError(
            f"the store {shown} refused the credentials", "check the user and password in --store"
        )
    if code == "unavailable":
        return StartupError(
            f"cannot reach the store {shown}",
            "start the database, or check the host and port in --store",
        )
    if code == "corrupt":
        return StartupError(
            f"the archive {shown} is damaged",
            "restore the file from a backup (collab export/import copy rooms out and in)",
        )
    if code == "schema":
        return StartupError(
            f"the archive {shown} was written by a newer collab", "upgrade collab to open it"
        )
    return StartupError(f"cannot open the store {shown} ({code})", "run with --debug for details")
