"""Allowed ``Host`` headers (DNS-rebinding protection) for ``collab serve``.

A page on ``evil.example`` can make its name resolve to 127.0.0.1 and then talk to a
localhost server "same-origin": every check that compares ``Origin`` with ``Host`` passes.
Refusing requests whose ``Host`` is not one of the server's own names stops that. The
default list is the host ``collab serve`` listens on plus the localhost names (and, when it
listens on every interface, this machine's host names and interface addresses); put the
public name of a reverse proxy in ``--allowed-hosts``.

Example:
    >>> sorted(default_allowed_hosts("127.0.0.1"))
    ['127.0.0.1', '::1', 'localhost']
    >>> host_of("[::1]:8000"), host_of("Example.org:443"), host_of("a b")
    ('::1', 'example.org', None)
"""

from __future__ import annotations

import logging
import re
import socket

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AllowedHostsMiddleware", "default_allowed_hosts", "host_of"]

log = logging.getLogger("collabd")

_LOCAL = ("localhost", "127.0.0.1", "::1")
_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")


def host_of(header: str) -> str | None:
    """The host part of a ``Host`` header, lower-cased, brackets removed; None if malformed."""
    match = _HOST.match(header.strip())
    if match is None:
        return None
    return match.group(1).strip("[]").lower()


def default_allowed_hosts(listen_host: str) -> set[str]:
    """The server's own names for a server listening on ``listen_host``."""
    hosts = {*_LOCAL}
    if listen_host not in ("0.0.0.0", "::", ""):
        hosts.add(listen_host.strip("[]").lower())
        return hosts
    for name in {socket.gethostname(), socket.getfqdn()}:
        if name:
            hosts.add(name.lower())
    try:
        import ifaddr  # aiortc's dependency: every interface address

        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                hosts.add(str(ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip).lower())
    except (ImportError, OSError) as exc:
        log.info("could not list interface addresses for allowed hosts: %s", exc)
    return hosts


class AllowedHostsMiddleware:
    """Refuse HTTP (400) and WebSocket (close 1008) requests whose ``Host`` is not allowed.

    ``"*"`` in ``allowed`` turns the check off.
    """

    def __init__(self, app: ASGIApp, allowed: set[str]) -> None:
        self.app = app
        self.allowed = {h.lower().strip("[]") for h in allowed}
        self.any = "*" in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(b"host", b"")
        host = host_of(raw.decode("latin-1")) if raw else None
        if host is not None and host in self.allowed:
            await self.app(scope, receive, send)
            return
        log.warning("refused a request with a foreign Host header")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        body = b"Invalid host header"
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"19")],
            }
        )
        await send({"type": "http.response.body", "body": body})
