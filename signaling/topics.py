"""A pure topic registry: who is subscribed to what (no FastAPI, no I/O).

The registry is generic over the subscriber object (anything hashable). It implements the
reference server's semantics but keeps both directions consistent (the reference forgets to
remove a topic from the socket's own set on ``unsubscribe``; that is not observable on the wire).

Example:
    >>> reg: TopicRegistry[str] = TopicRegistry()
    >>> reg.subscribe("alice", "room"), reg.subscribe("bob", "room")
    (True, False)
    >>> sorted(reg.subscribers("room"))
    ['alice', 'bob']
    >>> reg.unsubscribe("alice", "room"), reg.remove("bob")
    (False, ['room'])
"""

from __future__ import annotations

from collections.abc import Hashable, Set
from typing import Generic, TypeVar

S = TypeVar("S", bound=Hashable)

_EMPTY: frozenset[object] = frozenset()


class TopicRegistry(Generic[S]):
    """Topic → subscribers and subscriber → topics maps, kept in step."""

    __slots__ = ("_by_sub", "_topics")

    def __init__(self) -> None:
        self._topics: dict[str, dict[S, None]] = {}
        self._by_sub: dict[S, set[str]] = {}

    def subscribe(self, sub: S, topic: str) -> bool:
        """Add ``sub`` to ``topic``; True when this opened the topic (first subscriber)."""
        subs = self._topics.get(topic)
        opened = subs is None
        if subs is None:
            subs = self._topics[topic] = {}
        subs[sub] = None
        self._by_sub.setdefault(sub, set()).add(topic)
        return opened

    def unsubscribe(self, sub: S, topic: str) -> bool:
        """Remove ``sub`` from ``topic``; True when this closed the topic (last subscriber)."""
        subs = self._topics.get(topic)
        if subs is None or sub not in subs:
            return False
        del subs[sub]
        mine = self._by_sub.get(sub)
        if mine is not None:
            mine.discard(topic)
            if not mine:
                del self._by_sub[sub]
        if not subs:
            del self._topics[topic]
            return True
        return False

    def remove(self, sub: S) -> list[str]:
        """Remove ``sub`` from every topic; returns the topics this closed."""
        closed: list[str] = []
        for topic in list(self._by_sub.get(sub, ())):
            if self.unsubscribe(sub, topic):
                closed.append(topic)
        self._by_sub.pop(sub, None)
        return closed

    def is_subscribed(self, sub: S, topic: str) -> bool:
        """Whether ``sub`` is subscribed to ``topic``."""
        subs = self._topics.get(topic)
        return subs is not None and sub in subs

    def subscribers(self, topic: str) -> Set[S]:
        """A live read-only view of ``topic``'s subscribers (copy before mutating the registry)."""
        subs = self._topics.get(topic)
        if subs is None:
            return _EMPTY  # type: ignore[return-value]
        return subs.keys()

    def count(self, topic: str) -> int:
        """Number of subscribers of ``topic``."""
        subs = self._topics.get(topic)
        return 0 if subs is None else len(subs)

    def topics_of(self, sub: S) -> Set[str]:
        """The topics ``sub`` is subscribed to."""
        return frozenset(self._by_sub.get(sub, ()))

    def topics(self) -> list[str]:
        """All topics with at least one subscriber."""
        return list(self._topics)

    def __len__(self) -> int:
        return len(self._topics)
