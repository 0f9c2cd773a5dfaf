"""The seeds' named-peer dialect (the classic "WebRTC tutorial" signaling), fixed and room-scoped.

One WebSocket per peer at ``/named/{room}``; names are unique per room (so two apps using
different rooms never collide). Client → server:

- ``{"type":"login","name":N}`` → ``{"type":"login","success":true}``; ``success: false`` if the
  name is taken, invalid, or this socket already holds a name (one name per socket).
- ``{"type":"offer","name":T,"offer":X}`` → T receives ``{"type":"offer","offer":X,"name":me}``.
- ``{"type":"answer","name":T,"answer":X}`` → T receives ``{"type":"answer","answer":X,
  "name":me}``.
- ``{"type":"candidate","name":T,"candidate":X}`` → T receives ``{"type":"candidate",
  "candidate":X,"name":me}``.
- ``{"type":"leave","name":T}`` → T receives ``{"type":"leave","name":me}``.

Errors come back as ``{"type":"error","message":...}``: unknown command
(``"Command not found: <type>"``), invalid JSON, not logged in, unknown or departed target,
missing field. When a socket closes, every peer it exchanged offers/answers with receives
``{"type":"leave","name":me}``.

Example:
    >>> out: list[str] = []
    >>> reg = NamedRegistry()
    >>> alice = NamedPeer(out.append)
    >>> reg.handle("r", alice, '{"type":"login","name":"alice"}')
    >>> out
    ['{"type":"login","success":true}']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

NAME_RE = re.compile(r"[\w.@+\-]+")
_RELAY_FIELDS = {"offer": "offer", "answer": "answer", "candidate": "candidate"}


def _error(message: str) -> str:
    return orjson.dumps({"type": "error", "message": message}).decode()


_LOGIN_OK = '{"type":"login","success":true}'


def _login_failed(message: str) -> str:
    return orjson.dumps({"type": "login", "success": False, "message": message}).decode()


@dataclass(eq=False)
class NamedPeer:
    """One socket of the named dialect.

    Attributes:
        send: queues a text frame to this socket.
        name: the name it logged in with, if any.
        partners: names it exchanged offers/answers with (told ``leave`` when it closes).
    """

    send: Callable[[str], None]
    name: str | None = None
    partners: set[str] = field(default_factory=set)


class NamedRegistry:
    """Names per room and the relay logic (no I/O besides ``NamedPeer.send``)."""

    def __init__(self, max_name_length: int = 64) -> None:
        self._rooms: dict[str, dict[str, NamedPeer]] = {}
        self._max_name = max_name_length

    def names(self, room: str) -> list[str]:
        """The logged-in names of ``room``."""
        return list(self._rooms.get(room, {}))

    def handle(self, room: str, peer: NamedPeer, frame: str | bytes) -> None:
        """Handle one frame from ``peer``; replies go through ``send`` callbacks."""
        try:
            msg: Any = orjson.loads(frame)
        except orjson.JSONDecodeError:
            peer.send(_error("invalid JSON"))
            return
        if not isinstance(msg, dict):
            peer.send(_error("message must be a JSON object"))
            return
        kind = msg.get("type")
        if kind == "login":
            self._login(room, peer, msg.get("name"))
        elif isinstance(kind, str) and kind in _RELAY_FIELDS:
            self._relay(room, peer, kind, msg)
        elif kind == "leave":
            self._leave(room, peer, msg.get("name"))
        else:
            shown = kind if isinstance(kind, str) else orjson.dumps(kind).decode()
            peer.send(_error(f"Command not found: {shown[:100]}"))

    def _login(self, room: str, peer: NamedPeer, name: object) -> None:
        if peer.name is not None:
            peer.send(_login_failed("this socket is already logged in"))
            return
        if (
            not isinstance(name, str)
            or len(name) > self._max_name
            or NAME_RE.fullmatch(name) is None
        ):
            peer.send(_login_failed("invalid name"))
            return
        users = self._rooms.setdefault(room, {})
        if name in users:
            peer.send(_login_failed("name taken"))
            return
        users[name] = peer
        peer.name = name
        peer.send(_LOGIN_OK)

    def _target(self, room: str, peer: NamedPeer, name: object) -> NamedPeer | None:
        if peer.name is None:
            peer.send(_error("not logged in"))
            return None
        if not isinstance(name, str):
            peer.send(_error("missing target name"))
            return None
        target = self._rooms.get(room, {}).get(name)
        if target is None or target is peer:
            peer.send(_error(f"unknown peer: {name[:100]}"))
            return None
        return target

    def _relay(self, room: str, peer: NamedPeer, kind: str, msg: dict[str, Any]) -> None:
        target = self._target(room, peer, msg.get("name"))
        if target is None or peer.name is None or target.name is None:
            return
        fld = _RELAY_FIELDS[kind]
        if fld not in msg:
            peer.send(_error(f"missing field: {fld}"))
            return
        if kind != "candidate":
            peer.partners.add(target.name)
            target.partners.add(peer.name)
        target.send(orjson.dumps({"type": kind, fld: msg[fld], "name": peer.name}).decode())

    def _leave(self, room: str, peer: NamedPeer, name: object) -> None:
        target = self._target(room, peer, name)
        if target is None or peer.name is None or target.name is None:
            return
        peer.partners.discard(target.name)
        target.partners.discard(peer.name)
        target.send(orjson.dumps({"type": "leave", "name": peer.name}).decode())

    def disconnect(self, room: str, peer: NamedPeer) -> None:
        """Forget ``peer``; its partners receive ``leave``."""
        if peer.name is None:
            return
        users = self._rooms.get(room, {})
        if users.get(peer.name) is peer:
            del users[peer.name]
        if not users:
            self._rooms.pop(room, None)
        leave = orjson.dumps({"type": "leave", "name": peer.name}).decode()
        for partner_name in sorted(peer.partners):
            partner = users.get(partner_name)
            if partner is not None:
                partner.partners.discard(peer.name)
                partner.send(leave)
        peer.partners.clear()
        peer.name = None
