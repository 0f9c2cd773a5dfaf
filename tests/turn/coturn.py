"""Debian's coturn (``/usr/bin/turnserver``) for one test, inside the test network namespace.

:class:`Coturn` writes a private configuration (long-term credentials or the REST API's shared
secret), starts ``turnserver -c <it>`` with its log on stdout (drained into a private log
file by :class:`tests.support.processes.Process`), waits until its UDP listener is open and
ends it by PID.

Addresses: coturn listens and relays on 10.77.0.1, the veth address ``scripts/netns-run``
gives the namespace (Chromium gathers nothing on ``lo`` only). Every peer a relay-only client
sends to is a relay address of this same coturn, so every relayed packet stays on 10.77.0.1.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from tests.support.marks import IN_NETNS
from tests.support.processes import Process

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
RELAY_IP = "10.77.0.1"
REALM = "collab.test"
LT_USER = ("collab-test", "lt-password-for-the-test")
"""The static user of the ``lt-cred-mech`` server."""
REST_SECRET = "rest-secret-for-the-test-0123456789"
"""The ``static-auth-secret`` of the ``use-auth-secret`` server."""

needs_coturn = [
    pytest.mark.netns,
    pytest.mark.skipif(
        not IN_NETNS, reason="coturn listens on the namespace's 10.77.0.1: scripts/netns-run"
    ),
    pytest.mark.skipif(
        not Path(TURNSERVER).exists(), reason="needs Debian coturn (scripts/bootstrap --test)"
    ),
]
"""Marks of a test that runs coturn."""

_OPENED = r"UDP listener opened on: \S+|Cannot bind"


def _config(
    port: int, relay_ports: tuple[int, int], auth: list[str], work: Path, allow_relay_ip: bool
) -> str:
    lines = [
        f"listening-ip={RELAY_IP}",
        f"relay-ip={RELAY_IP}",
        f"listening-port={port}",
        # relay ports above Linux's ephemeral range (32768-60999): no client socket of another
        # process of the test holds one
        f"min-port={relay_ports[0]}",
        f"max-port={relay_ports[1]}",
        f"realm={REALM}",
        "fingerprint",
        # one relay thread, so one UDP listener socket: with one per CPU (the default) coturn
        # opens their SO_REUSEPORT sockets one after another, and a client whose challenge
        # came from the first one can see its authenticated retry hashed to a newer one, a
        # session that never issued its nonce (438 Wrong nonce, and aioice gives up)
        "relay-threads=1",
        *auth,
        "no-cli",  # no telnet CLI on 127.0.0.1:5766
        "no-tls",  # no certificates here; TURN over UDP (and TCP) only
        "no-dtls",
        "no-rfc5780",  # no second (alternate) port
        "no-multicast-peers",
        "log-file=stdout",
        "verbose",  # the listener and every allocation, permission and channel binding
        f"pidfile={work / 'turnserver.pid'}",
        f"userdb={work / 'turndb'}",  # never the system's /var/lib/turn/turndb
        # What a public coturn must refuse (README): relaying into private networks.
        # coturn already refuses loopback peers unless allow-loopback-peers is set; we never
        # set it, because no peer here is on 127.0.0.1: a relay-only client sends only to
        # relay addresses, and ours are 10.77.0.1.
        "denied-peer-ip=10.0.0.0-10.255.255.255",
        "denied-peer-ip=172.16.0.0-172.31.255.255",
        "denied-peer-ip=192.168.0.0-192.168.255.255",
    ]
    if allow_relay_ip:
        # the one exception a test needs: its own relay address (allowed-peer-ip wins over
        # denied-peer-ip); without it every CreatePermission / ChannelBind gets 403
        lines.append(f"allowed-peer-ip={RELAY_IP}")
    return "\n".join(lines) + "\n"


class Coturn:
    """One coturn process.

    Args:
        work: a private directory (configuration, log, pid file, user database).
        user: ``(name, password)`` for ``lt-cred-mech``; or
        secret: the ``static-auth-secret`` for ``use-auth-secret`` (the TURN REST API).
        relay_ports: the relay port range (give concurrent instances distinct ranges).
        allow_relay_ip: False leaves out ``allowed-peer-ip`` (every relayed peer refused).
    """

    def __init__(
        self,
        work: Path,
        *,
        user: tuple[str, str] | None = None,
        secret: str | None = None,
        relay_ports: tuple[int, int] = (61000, 61499),
        allow_relay_ip: bool = True,
    ) -> None:
        if (user is None) == (secret is None):
            raise ValueError("give user= (lt-cred-mech) or secret= (use-auth-secret)")
        self.work = work
        self.user = user
        self.secret = secret
        self.relay_ports = relay_ports
        self.allow_relay_ip = allow_relay_ip
        self.port = 0
        self.proc: Process | None = None
        work.mkdir(parents=True, exist_ok=True)

    @property
    def auth(self) -> list[str]:
        if self.user is not None:
            return ["lt-cred-mech", f"user={self.user[0]}:{self.user[1]}"]
        return ["use-auth-secret", f"static-auth-secret={self.secret}"]

    @property
    def url(self) -> str:
        """The ``turn:`` URL (UDP) of this server."""
        return f"turn:{RELAY_IP}:{self.port}?transport=udp"

    def start(self) -> None:
        """Start on a free listening port: coturn cannot take an inherited socket or bind port
        0, so try ports below Linux's ephemeral range (no client socket can hold one, only
        another server that chose it) and start again elsewhere when the bind fails."""
        for _ in range(10):
            port = random.randint(20000, 29999)
            conf = self.work / "turnserver.conf"
            conf.touch(0o600)  # holds the password or secret
            text = _config(port, self.relay_ports, self.auth, self.work, self.allow_relay_ip)
            conf.write_text(text)
            proc = Process([TURNSERVER, "-c", str(conf)], self.work / "turnserver.log")
            proc.start()
            line = proc.wait_ready(_OPENED, 20)
            if "Cannot bind" not in line:
                # requests are authenticated once the user database is open
                proc.wait_ready(r"DB connection success", 20)
                self.port, self.proc = port, proc
                return
            proc.kill()
        raise RuntimeError("coturn found no free port")

    def stop(self) -> None:
        """End coturn by its PID (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def __enter__(self) -> Coturn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        """Everything coturn logged so far."""
        return self.proc.output() if self.proc is not None else ""

    def wait_for(self, pattern: str, timeout: float = 20.0) -> str:
        """Wait for a log line matching ``pattern``."""
        assert self.proc is not None
        return self.proc.wait_for_line(pattern, timeout)

    def allocations(self, user: str = r"[^>]*") -> list[str]:
        """User names of successful allocations (``user`` a regex for the name)."""
        pattern = rf"user <({user})>: incoming packet ALLOCATE processed, success"
        return re.findall(pattern, self.log())
