"""Operators get one clear line for every startup failure (a real ``collab`` process each).

For every common mistake: exactly one ``error: …`` line on stderr saying what is wrong and
what to do, a distinct exit code (2: usage, 1: runtime), no traceback unless ``--debug``, no
secret in the output, and never "collab is serving on" when it is not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collab.errors import StorageError
from collabd.startup import explain_storage
from tests.replica.certs import self_signed
from tests.support.filesystems import fill, tmpfs
from tests.support.paths import COLLAB, ROOT
from tests.support.servers import CollabServer

SECRET_PASSWORD = "pw-must-not-leak-7c1e"


def collab(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run ``collab …`` to completion; returns (exit code, stdout + stderr)."""
    done = subprocess.run(
        [COLLAB, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


def one_error(output: str) -> str:
    """The one ``error:`` line (and nothing traceback-like around it)."""
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert "Traceback" not in output, output
    assert "collab is serving on" not in output, output
    return errors[0]


def serve(tmp_path: Path, *extra: str) -> list[str]:
    return ["serve", "--host", "127.0.0.1", "--port", "0", "--data", str(tmp_path / "d"), *extra]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = collab("serve", "--port", str(port), "--data", str(tmp_path / "d"))
    line = one_error(out)
    assert code == 1
    assert f"port {port} is already in use" in line and "--port 0" in line


def test_privileged_port_without_the_capability(tmp_path: Path) -> None:
    """Port 80 without CAP_NET_BIND_SERVICE (dropped with setpriv: the tests run as root)."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs util-linux setpriv")
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service",
         COLLAB, "serve", "--port", "80", "--data", str(tmp_path / "d")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = one_error(done.stdout + done.stderr)
    assert done.returncode == 1 and "permission denied listening on 127.0.0.1:80" in line


def test_host_that_is_not_ours(tmp_path: Path) -> None:
    code, out = collab("serve", "--host", "10.99.99.99", "--port", "0", "--data", str(tmp_path))
    assert code == 2 and "is not an address of this machine" in one_error(out)


def test_data_dir_cannot_be_created_or_is_a_file(tmp_path: Path) -> None:
    code, out = collab("serve", "--port", "0", "--data", "/proc/nope")
    assert code == 1 and "cannot create the data directory /proc/nope" in one_error(out)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code, out = collab("serve", "--port", "0", "--data", str(a_file))
    assert code == 2 and "is not a directory" in one_error(out)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "tiny") as mount:
        yield mount


def test_disk_full_at_start(tiny_fs: Path) -> None:
    fill(tiny_fs / "filler")
    code, out = collab("serve", "--port", "0", "--data", str(tiny_fs / "data"))
    assert code == 1 and "is full" in one_error(out)


def test_store_unreachable_does_not_claim_to_serve_nor_print_the_password(tmp_path: Path) -> None:
    url = f"postgresql://nobody:{SECRET_PASSWORD}@127.0.0.1:1/x"
    code, out = collab(*serve(tmp_path, "--store", url))
    line = one_error(out)
    assert code == 1
    assert "cannot reach the store postgresql://nobody:***@127.0.0.1:1/x" in line
    assert SECRET_PASSWORD not in out


def test_store_errors_read_as_one_line_each() -> None:
    url = f"postgresql://u:{SECRET_PASSWORD}@db/x"
    for code, words in [
        ("auth", "refused the credentials"),
        ("locked", "in use by another process"),
        ("read-only", "read-only"),
        ("corrupt", "damaged"),
        ("unavailable", "cannot reach the store"),
    ]:
        line = explain_storage(StorageError(code, "detail"), url).line()
        assert words in line and SECRET_PASSWORD not in line and " — " in line


def test_postgres_bad_password_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """What libpq says for a wrong password becomes StorageError("auth") (the test PostgreSQL
    trusts every local user, so the refusal is injected at psycopg's connect)."""
    import anyio
    import psycopg

    from collab.storage.postgres import PostgresStore

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise psycopg.OperationalError(
            'connection failed: FATAL:  password authentication failed for user "u"'
        )

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", refuse)
    store = PostgresStore(f"postgresql://u:{SECRET_PASSWORD}@127.0.0.1:1/x")

    async def attempt() -> StorageError:
        try:
            await store._connect()
        except StorageError as exc:
            return exc
        raise AssertionError("connected?")

    error = anyio.run(attempt)
    assert error.code == "auth"
    assert "refused the credentials" in explain_storage(error, store.dsn).line()


def test_sqlite_file_locked_by_another_server(tmp_path: Path) -> None:
    first = CollabServer(tmp_path / "data", tmp_path / "first.log")
    first.start()
    try:
        code, out = collab("serve", "--port", "0", "--data", str(tmp_path / "data"))
    finally:
        first.kill()
    assert code == 1 and "is in use by another process" in one_error(out)


def test_bad_or_mismatched_tls(tmp_path: Path) -> None:
    cert_a, _key_a = self_signed(tmp_path, "a.test")
    _cert_b, key_b = self_signed(tmp_path, "b.test")
    code, out = collab(*serve(tmp_path, "--tls-cert", str(cert_a), "--tls-key", str(key_b)))
    assert code == 2 and "cannot use the TLS certificate and key" in one_error(out)
    code, out = collab(*serve(tmp_path, "--tls-cert", str(cert_a)))
    assert code == 2 and "--tls-cert needs --tls-key" in one_error(out)
    code, out = collab(*serve(tmp_path, "--tls-cert", str(tmp_path / "nope.crt"), "--tls-key", "x"))
    assert code == 2 and "TLS file not found" in one_error(out)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('[{"urls": "stun:', "invalid --ice-servers"),
        ('[{"urls": "turn:turn.example.org:3478"}]', "needs username= and credential="),
        ("http://not-ice", "must start with stun:/turn:"),
    ],
)
def test_invalid_ice_servers(tmp_path: Path, value: str, words: str) -> None:
    code, out = collab(*serve(tmp_path, "--ice-servers", value))
    assert code == 2 and words in one_error(out)


def test_token_secret_too_short_while_auth_is_required(tmp_path: Path) -> None:
    env = {"COLLAB_AUTH_REQUIRED": "true", "COLLAB_TOKEN_SECRET": "short"}
    code, out = collab(*serve(tmp_path), env=env)
    line = one_error(out)
    assert code == 2 and "token_secret is too short" in line and "short" not in line.split(":")[0]


def test_redis_unreachable(tmp_path: Path) -> None:
    env = {"COLLAB_REDIS_URL": f"redis://:{SECRET_PASSWORD}@127.0.0.1:1/0"}
    code, out = collab(*serve(tmp_path), env=env)
    assert code == 1 and "cannot reach Redis" in one_error(out)
    assert SECRET_PASSWORD not in out


def test_bad_log_format_and_settings_are_usage_errors(tmp_path: Path) -> None:
    code, out = collab(*serve(tmp_path, "--log-format", "xml"))
    assert code == 2 and "log format must be one of" in one_error(out)
    code, out = collab(*serve(tmp_path), env={"COLLAB_IDLE_UNLOAD_AFTER": "soon"})
    assert code == 2 and "COLLAB_IDLE_UNLOAD_AFTER" in one_error(out)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    code, out = collab("--debug", "serve", "--port", "0", "--data", "/proc/nope")
    assert code == 1 and "Traceback" in out and "error: cannot create" in out


def test_serving_line_comes_once_everything_is_up_and_readyz_says_so(tmp_path: Path) -> None:
    srv = CollabServer(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    try:
        log = srv.output()
        assert log.index("signaling connected") < log.index("collab is serving on")
        assert srv.get("/healthz").text == "okay"
        ready = srv.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True, "problems": []}
        metrics = srv.get("/metrics").text
        assert "collab_store_up 1.0" in metrics and "collab_replica_signaling_up 1.0" in metrics
    finally:
        srv.stop()
    assert srv.proc is None


def test_json_log_format(tmp_path: Path) -> None:
    srv = CollabServer(tmp_path / "data", tmp_path / "serve.log", env={"COLLAB_LOG_FORMAT": "json"})
    srv.start()
    try:
        assert httpx.get(srv.http + "/api/rooms?token=abc", timeout=10).status_code == 200
    finally:
        assert srv.proc is not None
        os.kill(srv.proc.pid, signal.SIGTERM)
        srv.proc.wait(timeout=30)
        srv.kill()
    lines = [line for line in srv.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if not line.startswith("collab is serving on")]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("/api/rooms?…" in r["message"] for r in access), access
    assert not any("token=abc" in line for line in lines)


@pytest.fixture
def read_only_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "ro", read_only=True) as mount:
        yield mount


def test_data_dir_not_writable(read_only_fs: Path) -> None:
    code, out = collab("serve", "--port", "0", "--data", str(read_only_fs))
    line = one_error(out)
    assert code == 1 and "is not writable" in line and "--data" in line


def test_readyz_turns_503_while_storage_fails_and_back(tiny_fs: Path, tmp_path: Path) -> None:
    """Readiness follows the store: a full disk takes the instance out of rotation (503 with
    the reason), freed space brings it back; liveness stays ``okay`` throughout."""
    import anyio

    from tests.support.peers import peer
    from tests.support.processes import wait_until

    srv = CollabServer(tiny_fs / "data", tmp_path / "serve.log")
    srv.start()

    async def scenario() -> None:
        async with peer("ready", srv.signaling) as p:
            with anyio.fail_after(30):
                await p.wait_for_peers(1)
            fill(tiny_fs / "filler")
            text = p.document.text()
            for i in range(200):
                text.insert(len(str(text)), f"line {i} while the disk is full\n")
            await wait_until(lambda: srv.get("/readyz").status_code == 503, 30)
            assert "storage is failing to commit" in srv.get("/readyz").json()["problems"]
            assert srv.get("/healthz").text == "okay"
            os.unlink(tiny_fs / "filler")
            await wait_until(lambda: srv.get("/readyz").status_code == 200, 30)

    try:
        anyio.run(scenario)
        log = srv.output()
        assert log.count("storage is failing") == 1 and "storage recovered after" in log
    finally:
        srv.kill()
