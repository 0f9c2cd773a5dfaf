"""The y-webrtc signaling JSON (the written contract), parsed strictly but cheaply.

Client → server frames (JSON objects, text or binary frames):

=============== ============================================= =====================================
``type``        fields                                        server action
=============== ============================================= =====================================
``subscribe``   ``topics: list[str]`` (missing → ``[]``)      subscribe the socket to each string
``unsubscribe`` ``topics: list[str]`` (missing → ``[]``)      unsubscribe from each string
``publish``     ``topic: str`` (non-empty), anything else     send the whole object plus
                                                              ``clients`` (subscriber count) to
                                                              every subscriber, sender included
``ping``        —                                             reply ``{"type":"pong"}``
=============== ============================================= =====================================

Anything else (unknown ``type``, no ``type``, non-object JSON, invalid JSON, wrong field types)
is ignored and counted, like the reference server ignores unknown types. ``data`` is never
parsed beyond what JSON decoding needs, and never stored.

Example:
    >>> parse_frame('{"type":"ping"}')
    Ping()
    >>> parse_frame('{"type":"subscribe","topics":["a",1,"b"]}')
    Subscribe(topics=['a', 'b'])
    >>> with_clients('{"type":"publish","topic":"a"}', 2)
    '{"type":"publish","topic":"a","clients":2}'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PONG = '{"type":"pong"}'


@dataclass(slots=True)
class Subscribe:
    """``{"type":"subscribe","topics":[...]}`` with the string topics kept."""

    topics: list[str]


@dataclass(slots=True)
class Unsubscribe:
    """``{"type":"unsubscribe","topics":[...]}`` with the string topics kept."""

    topics: list[str]


@dataclass(slots=True)
class Publish:
    """A publish: ``raw`` is the message as JSON text without any ``clients`` field."""

    topic: str
    raw: str


@dataclass(slots=True)
class Ping:
    """``{"type":"ping"}``."""


@dataclass(slots=True)
class Ignored:
    """A frame that is not acted upon; ``reason`` is a metric label."""

    reason: str


SignalMessage = Subscribe | Unsubscribe | Publish | Ping | Ignored


def _string_topics(value: Any) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list):
        return None
    return [t for t in value if isinstance(t, str)]


def parse_frame(frame: str | bytes) -> SignalMessage:
    """Parse one frame; never raises on bad input (returns ``Ignored``).

    Args:
        frame: the frame payload (text, or bytes holding UTF-8 JSON like the reference accepts).

    Returns:
        The parsed message, or ``Ignored(reason)``.

    Example:
        >>> parse_frame(b"not json")
        Ignored(reason='invalid_json')
    """
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return Ignored("invalid_json")
    if not isinstance(msg, dict):
        return Ignored("not_object")
    kind = msg.get("type")
    if kind == "publish":
        topic = msg.get("topic")
        if not isinstance(topic, str) or not topic:
            return Ignored("bad_publish")
        if "clients" in msg:
            del msg["clients"]
            return Publish(topic, orjson.dumps(msg).decode())
        text = frame if isinstance(frame, str) else frame.decode()
        return Publish(topic, text.strip(" \t\r\n"))
    if kind == "subscribe":
        topics = _string_topics(msg.get("topics"))
        return Ignored("bad_subscribe") if topics is None else Subscribe(topics)
    if kind == "unsubscribe":
        topics = _string_topics(msg.get("topics"))
        return Ignored("bad_unsubscribe") if topics is None else Unsubscribe(topics)
    if kind == "ping":
        return Ping()
    return Ignored("unknown_type")


def with_clients(raw: str, clients: int) -> str:
    """Append ``"clients": n`` to a JSON object text that has no ``clients`` key.

    Args:
        raw: ``Publish.raw`` (a JSON object text, stripped, without ``clients``).
        clients: the subscriber count.

    Example:
        >>> with_clients('{"type":"publish","topic":"t","data":{}}', 1)
        '{"type":"publish","topic":"t","data":{},"clients":1}'
    """
    return f'{raw[:-1]},"clients":{clients}}}'
