"""The scale-out topology of ``deploy/compose.yaml``, run with local processes and the kit's
own files: PostgreSQL, Redis, coturn (``deploy/turnserver.conf`` + compose's options), two
``collab serve`` (``deploy/collab.env``) behind nginx (``deploy/nginx.conf``) with TLS, and a
stock y-webrtc browser (the built page, headless Chromium) on each instance, in one room.

Only what must differ from a Docker deployment differs: service addresses (127.0.0.1 and the
namespace's 10.77.0.1 instead of compose's service names), the instances' ports (two on one
host), the certificate's path. The browsers open ``https://collab.test/`` (Chromium maps the
name to 127.0.0.1 and trusts the test certificate by its key), port 443, as in production.

It shows:

1. sync across instances: each browser's signaling socket is on a different instance (read
   from each instance's metrics), they find each other through Redis and connect directly;
   what one types appears in the other;
2. the archive is on PostgreSQL: the instance that does not archive the room (its replica
   waits for the lease) serves the text from the database, and ``collab export --store
   postgresql://…`` prints it;
3. SIGKILL of the instance holding the room's lease, right after typing (updates may still
   be in its group commit): the browser whose instance died keeps typing, its signaling
   socket reconnects through nginx to the survivor, whose replica takes the room over after
   the lease expires; the archive ends up with every character typed on either side, which
   ``collab export`` still prints after the survivor is SIGKILLed too.

Besides: collab sees the clients' addresses through X-Forwarded-For, and the page gets
time-limited TURN credentials that coturn accepts (Chromium allocates relays with them; an
expected failure while ``collab serve`` does not hand its TURN settings to the page).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Page
from psycopg import sql
from pycrdt import Text

from collab.storage import open_store, rebuild
from tests.deploy.kit import (
    DEPLOY,
    NGINX,
    TURNSERVER,
    Nginx,
    proxy_environment,
    read_env_file,
    start_coturn,
)
from tests.replica.certs import self_signed
from tests.signaling.sig_helpers import RedisProc, start_redis, stop_redis
from tests.support.browser import Chromium
from tests.support.marks import needs_chromium, needs_netns
from tests.support.paths import COLLAB
from tests.support.postgres import PostgresServer
from tests.support.processes import Process, wait_until
from tests.support.servers import banner_port
from tests.web.web_helpers import build_page, connect_pair, editor_text, type_at_end

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.netns,
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    needs_netns,
    needs_chromium,
    pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (scripts/bootstrap --test)"),
    pytest.mark.skipif(
        not Path(TURNSERVER).exists(), reason="needs coturn (scripts/bootstrap --test)"
    ),
]

PUBLIC_HOST = "collab.test"
VETH = "10.77.0.1"
"""The namespace's veth address (``scripts/netns-run``): coturn listens here, since Chromium
gathers no candidates on loopback."""
CLIENT = "10.77.0.2"
"""The other veth address: a client that is not the proxy's loopback."""
ROOM = "deploy-topology"
TIMEOUT_MS = 60_000


# ---------------------------------------------------------------------- the services


@pytest.fixture
def redis() -> Iterator[RedisProc]:
    server = start_redis()
    try:
        yield server
    finally:
        stop_redis(server)


@pytest.fixture
def values(pg_server: PostgresServer, redis: RedisProc) -> dict[str, str]:
    """This test's ``deploy/.env``: a user and database ``collab`` as compose's postgres
    image creates them, local addresses."""
    password = secrets.token_hex(16)
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE collab LOGIN PASSWORD {}").format(password))
        conn.execute("CREATE DATABASE collab OWNER collab TEMPLATE template0")
    out = {
        "COLLAB_PUBLIC_HOST": PUBLIC_HOST,
        "TURN_ADDR": f"{VETH}:3478",
        "TURN_EXTERNAL_IP": VETH,
        "TURN_SECRET": secrets.token_hex(32),
        "POSTGRES_PASSWORD": password,
        "POSTGRES_ADDR": f"127.0.0.1:{pg_server.port}",
        "REDIS_ADDR": f"127.0.0.1:{redis.port}",
        "PROXY_NETWORK": "127.0.0.1/32",  # nginx reaches the instances from loopback
    }
    assert set(out) == set(read_env_file(DEPLOY / ".env.example")), "a name of .env is not set"
    return out


@pytest.fixture
def coturn(values: dict[str, str], tmp_path: Path) -> Iterator[Process]:
    proc = start_coturn(tmp_path / "coturn", values, VETH)
    try:
        yield proc
    finally:
        proc.stop()


class Instance(Process):
    """One ``collab serve`` with the settings of ``deploy/collab.env``. Both listen on every
    address of this one namespace, so each binds a port of its own (``--port 0``) where each
    container of the compose file has its own 8000."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__([COLLAB, "serve", "--port", "0"], log, env)
        self.port = 0
        self.baseline = 0.0

    def wait_serving(self) -> None:
        self.port = banner_port(self.wait_ready(r"collab is serving on", 90))
        self.baseline = self.sockets()  # the replica's own signaling socket

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)

    def sockets(self) -> float:
        """Open signaling sockets (``collab_signaling_sockets``, every endpoint)."""
        text = self.get("/metrics").text
        found = re.findall(r"^collab_signaling_sockets\{[^}]*\} ([\d.e+]+)$", text, re.M)
        return sum(float(v) for v in found)

    def browsers(self) -> int:
        """Browsers' signaling sockets on this instance (0 once it is dead)."""
        if self.proc is None:
            return 0
        return round(self.sockets() - self.baseline)


@pytest.fixture
def instances(values: dict[str, str], coturn: Process, tmp_path: Path) -> Iterator[list[Instance]]:
    env = read_env_file(DEPLOY / "collab.env", values)
    started = [Instance(env, tmp_path / f"collab-{i}.log") for i in (1, 2)]
    try:
        for inst in started:
            inst.start()
        for inst in started:
            inst.wait_serving()
        yield started
    finally:
        for inst in started:
            inst.kill(signal.SIGKILL)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path, PUBLIC_HOST)


@pytest.fixture
def proxy(
    values: dict[str, str],
    instances: list[Instance],
    certificate: tuple[Path, Path],
    tmp_path: Path,
) -> Iterator[Nginx]:
    cert, key = certificate
    env = {
        **proxy_environment(values),
        "COLLAB_UPSTREAM_1": f"127.0.0.1:{instances[0].port}",
        "COLLAB_UPSTREAM_2": f"127.0.0.1:{instances[1].port}",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
    }
    assert (env["HTTP_PORT"], env["HTTPS_PORT"]) == ("80", "443")  # compose's, unchanged
    nginx = Nginx(tmp_path / "nginx", env, as_root=True)
    nginx.start()
    try:
        yield nginx
    finally:
        nginx.stop()


# ---------------------------------------------------------------------- the browsers


def spki_hash(cert: Path) -> str:
    """What ``--ignore-certificate-errors-spki-list`` takes: base64 SHA-256 of the key."""
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def browser(label: str, tmp: Path, cert: Path) -> Chromium:
    return Chromium(
        tmp / f"profile-{label}",
        tmp / f"chromium-{label}.log",
        (
            # the public name resolves to the proxy; nothing else resolves
            f"--host-resolver-rules=MAP {PUBLIC_HOST} 127.0.0.1, MAP * ~NOTFOUND, "
            "EXCLUDE localhost, EXCLUDE 127.0.0.1",
            f"--ignore-certificate-errors-spki-list={spki_hash(cert)}",
        ),
        name=f"chromium-{label}",
    )


async def open_room(chromium: Chromium) -> Page:
    """The room page at the proxy's public address, once its signaling socket is connected."""
    assert chromium.browser is not None
    page = await chromium.browser.contexts[0].new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"https://{PUBLIC_HOST}/#/room/{ROOM}")
    await wait_signaling(page)
    return page


async def wait_signaling(page: Page) -> None:
    await page.wait_for_function(
        "() => !!(window.collabRoom && window.collabRoom.provider.room)"
        " && window.collabRoom.provider.signalingConns.some(c => c.connected)",
        polling=100,
    )


async def wait_contains(page: Page, *parts: str) -> None:
    await page.wait_for_function(
        "parts => parts.every(p => window.collabRoom.ytext.toString().includes(p))",
        arg=list(parts),
        polling=50,
    )


def counts(instances: list[Instance]) -> list[int]:
    return [inst.browsers() for inst in instances]


async def wait_total(instances: list[Instance], total: int) -> list[int]:
    """Browser sockets per instance, once they add up to ``total`` (polled: the metrics of
    other processes)."""
    with anyio.fail_after(30):
        while True:
            now = await anyio.to_thread.run_sync(counts, instances)
            if sum(now) == total:
                return now
            await anyio.sleep(0.1)


async def open_apart(
    chromium: Chromium, instances: list[Instance], taken: int | None = None
) -> tuple[Page, int]:
    """Open the room; returns the page and the instance its signaling socket is on, which is
    not ``taken``. nginx's ``least_conn`` sends it to the instance with fewer open
    connections; a request of a page still in flight can tip that, so a page that landed on
    ``taken`` is opened again."""
    total = 1 if taken is None else 2
    for _ in range(4):
        page = await open_room(chromium)
        now = await wait_total(instances, total)
        if taken is None:
            return page, now.index(1)
        if now[taken] == 1:
            return page, 1 - taken
        await page.close()
        await wait_total(instances, 1)
    raise AssertionError("nginx put both browsers on one instance four times")


# ---------------------------------------------------------------------- the archive


async def archived(dsn: str) -> str:
    """The room's text as PostgreSQL holds it (read directly, like ``collab export``)."""
    async with open_store(dsn) as store:
        doc = rebuild(await store.load(ROOM, missing_ok=True))
    return str(doc.get("codemirror", type=Text))


async def export(dsn: str) -> str:
    done = await anyio.run_process(
        [COLLAB, "export", ROOM, "--store", dsn, "--format", "text"], check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def lease_holder(instances: list[Instance], dsn: str) -> int:
    """The instance whose replica holds the room's lease now: the one that logged taking the
    lease row's current token."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT token FROM room_leases WHERE room = %s AND expires_at > now()", (ROOM,)
        ).fetchone()
    assert row is not None, "no replica holds the room"
    line = f"acquired room '{ROOM}' (token {row[0]},"
    holders = [i for i, inst in enumerate(instances) if line in inst.output()]
    assert len(holders) == 1, (line, holders)
    return holders[0]


async def wait_equal(
    read: Callable[[], Awaitable[str]], expected: str, what: str, timeout: float = 60
) -> None:
    """Poll ``read()`` (another process's state: no event to wait on) until it is
    ``expected``."""
    last = None
    with anyio.move_on_after(timeout):
        while True:
            last = await read()
            if last == expected:
                return
            await anyio.sleep(0.2)
    raise AssertionError(f"{what}: {last!r} != {expected!r}")


# ---------------------------------------------------------------------- the test


def forwarded_for_probe(cert: Path) -> None:
    """A request through nginx from 10.77.0.2 (not the proxy's loopback), by name (SNI)."""
    context = ssl.create_default_context(cafile=str(cert))
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=context)
    with httpx.Client(transport=transport, timeout=10) as client:
        res = client.get(
            f"https://{VETH}/api/rooms/forwarded-for-probe/text",
            headers={"Host": PUBLIC_HOST},
            extensions={"sni_hostname": PUBLIC_HOST},
        )
    assert res.status_code == 404, res.text  # answered by collab: no such room


async def test_topology(
    values: dict[str, str],
    coturn: Process,
    instances: list[Instance],
    proxy: Nginx,
    certificate: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    await anyio.to_thread.run_sync(build_page)
    dsn = read_env_file(DEPLOY / "collab.env", values)["COLLAB_STORE"]
    cert = certificate[0]

    config = (await anyio.to_thread.run_sync(instances[0].get, "/api/config")).json()

    # collab sees the client's address, not the proxy's (FORWARDED_ALLOW_IPS)
    await anyio.to_thread.run_sync(forwarded_for_probe, cert)

    def probe_logged() -> bool:
        lines = (line for inst in instances for line in inst.output().splitlines())
        return any(CLIENT in line and "forwarded-for-probe" in line for line in lines)

    await wait_until(probe_logged, 10)  # the access line is written as the answer goes out

    chromes = [browser(label, tmp_path, cert) for label in ("a", "b")]
    try:
        for chrome in chromes:
            await chrome.start()
        # -- 1. a browser on each instance: they meet through Redis, sync directly
        a, on_a = await open_apart(chromes[0], instances)
        b, _ = await open_apart(chromes[1], instances, taken=on_a)
        await connect_pair(a, b)
        await type_at_end(a, "[A1: typed in A]")
        await wait_contains(b, "[A1: typed in A]")
        await type_at_end(b, "[B1: typed in B]")
        await wait_contains(a, "[A1: typed in A]", "[B1: typed in B]")

        # -- 2. one instance archives the room; the other reads it from PostgreSQL
        holder = await anyio.to_thread.run_sync(lease_holder, instances, dsn)
        survivor = instances[1 - holder]
        text = await editor_text(a)

        async def via_survivor() -> str:
            res = await anyio.to_thread.run_sync(survivor.get, f"/api/rooms/{ROOM}/text")
            return res.text

        await wait_equal(via_survivor, text, "the other instance's API (from PostgreSQL)")
        assert await export(dsn) == text

        # -- 3. SIGKILL the lease holder right after typing; its browser types on
        orphan, friend = (a, b) if on_a == holder else (b, a)
        await type_at_end(orphan, "[O2: typed just before the kill]")
        await type_at_end(friend, "[F2: typed just before the kill]")
        await anyio.to_thread.run_sync(instances[holder].kill, signal.SIGKILL)
        await type_at_end(orphan, "[O3: typed after the kill]")
        await type_at_end(friend, "[F3: typed after the kill]")
        markers = [
            "[A1: typed in A]",
            "[B1: typed in B]",
            "[O2: typed just before the kill]",
            "[F2: typed just before the kill]",
            "[O3: typed after the kill]",
            "[F3: typed after the kill]",
        ]
        for page in (orphan, friend):
            await wait_contains(page, *markers)
        # the orphan's signaling socket reconnects through nginx, to the survivor
        await wait_signaling(orphan)
        assert await wait_total(instances, 2) == [
            2 if inst is survivor else 0 for inst in instances
        ]
        await anyio.to_thread.run_sync(survivor.wait_for_line, f"took over room '{ROOM}'", 90)
        final = await editor_text(orphan)
        assert await editor_text(friend) == final
        await wait_equal(via_survivor, final, "the survivor's API")
        await wait_equal(functools.partial(archived, dsn), final, "PostgreSQL")
    finally:
        for chrome in chromes:
            await chrome.close()

    # what PostgreSQL holds is all of it, with no instance left to add anything
    survivor.kill(signal.SIGKILL)
    exported = await export(dsn)
    assert exported == final
    assert all(exported.count(marker) == 1 for marker in markers), exported

    # the page's ICE configuration is coturn, with a credential minted from its secret...
    turn = [server for server in config["iceServers"] if "username" in server]
    assert turn[0]["urls"] == [
        f"turn:{values['TURN_ADDR']}?transport=udp",
        f"turn:{values['TURN_ADDR']}?transport=tcp",
    ], config
    # coturn accepted the credentials collab minted (Chromium allocates relays with them)
    users = re.findall(
        r"user <(\d+:[^>]+)>: incoming packet ALLOCATE processed, success", coturn.output()
    )
    assert any(re.fullmatch(r"\d+:web-[0-9a-f]+", user) for user in users), users
    print(f"topology test: {time.monotonic() - started:.1f} s")
