"""Ports for servers under test, bound once by whoever serves on them.

In order of preference:

1. an in-process server gets a socket that is already listening (:func:`bound_socket`):
   clients may connect before it serves;
2. a child process that can take an inherited socket gets one the same way (``pass_fds``);
3. a child that can bind port 0 itself does so and the test reads back the port it got:
   ``collab serve`` and ``collab signaling`` print it in their banner, y-webrtc's
   ``bin/server.js`` (``PORT=0``) does not, so :func:`listening_port` reads it from ``/proc``;
4. only servers that can do none of this (``redis-server``, ``postgres``) are told a number
   from :func:`free_port`, the one fallback. That port is bound, closed and handed on, so
   another process may take it in between: their launchers go through :func:`on_free_port`,
   which starts again on another port when the server reports the port taken.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LISTEN = "0A"
"""The TCP state ``LISTEN`` in ``/proc/net/tcp``."""


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on ``host`` with a port of its own (connections queue before
    anyone serves on it). Close it once the server that took it has ended."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(512)
    return sock


def free_port() -> int:
    """A port that was free a moment ago, for servers that can neither take a socket nor bind
    port 0 and say which port they got. Racy by nature: start them through
    :func:`on_free_port`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortTaken(RuntimeError):
    """A server could not bind the port it was told (another process took it first)."""


def on_free_port(start: Callable[[int], T], attempts: int = 5) -> T:
    """``start(port)`` on a :func:`free_port`; again on another one while it raises
    :class:`PortTaken` (at most ``attempts`` times)."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def listening_ports(pid: int) -> list[int]:
    """The TCP ports process ``pid`` listens on (its socket inodes matched against the
    ``/proc/PID/net/tcp`` tables of its network namespace)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 here
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def listening_port(pid: int, timeout: float = 10.0) -> int:
    """The one port process ``pid`` listens on, once it does (polled: another process)."""
    deadline = time.monotonic() + timeout
    while True:
        ports = listening_ports(pid)
        if len(ports) == 1:
            return ports[0]
        if len(ports) > 1:
            raise RuntimeError(f"process {pid} listens on several ports: {ports}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} listens on no TCP port after {timeout} s")
        time.sleep(0.02)
