"""Pure parts (no sockets): frame parsing, the clients splice, the topic registry, the token bucket
and the named registry, driven by Hypothesis."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from signaling.limits import TokenBucket
from signaling.messages import Ignored, Ping, Publish, Subscribe, Unsubscribe, parse_frame
from signaling.messages import with_clients as splice
from signaling.named import NamedPeer, NamedRegistry
from signaling.topics import TopicRegistry

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.binary() | st.text())
def test_parse_frame_never_raises_on_garbage(frame: bytes | str) -> None:
    assert isinstance(parse_frame(frame), Ignored | Ping | Subscribe | Unsubscribe | Publish)


@given(
    st.dictionaries(st.text(), json_values, max_size=6), st.text(min_size=1), st.integers(0, 999)
)
def test_publish_passes_whole_object_through_with_clients(
    extra: dict[str, Any], topic: str, n: int
) -> None:
    obj = {**extra, "type": "publish", "topic": topic}
    for text in (json.dumps(obj), json.dumps(obj, indent=2) + "\n", orjson.dumps(obj)):
        msg = parse_frame(text)
        assert isinstance(msg, Publish) and msg.topic == topic
        out = orjson.loads(splice(msg.raw, n))
        assert out == {**obj, "clients": n}


@given(st.lists(json_values, max_size=6))
def test_subscribe_keeps_only_string_topics(topics: list[Any]) -> None:
    msg = parse_frame(orjson.dumps({"type": "subscribe", "topics": topics}))
    assert msg == Subscribe([t for t in topics if isinstance(t, str)])


class RegistryMachine(RuleBasedStateMachine):
    """TopicRegistry against a plain dict-of-sets model."""

    def __init__(self) -> None:
        super().__init__()
        self.reg: TopicRegistry[int] = TopicRegistry()
        self.model: dict[str, set[int]] = {}

    subs = st.integers(0, 5)
    topics = st.sampled_from(["a", "b", "c", "d"])

    @rule(sub=subs, topic=topics)
    def subscribe(self, sub: int, topic: str) -> None:
        opened = self.reg.subscribe(sub, topic)
        assert opened == (topic not in self.model)
        self.model.setdefault(topic, set()).add(sub)

    @rule(sub=subs, topic=topics)
    def unsubscribe(self, sub: int, topic: str) -> None:
        closed = self.reg.unsubscribe(sub, topic)
        members = self.model.get(topic, set())
        assert closed == (members == {sub})
        members.discard(sub)
        if not members:
            self.model.pop(topic, None)

    @rule(sub=subs)
    def remove(self, sub: int) -> None:
        closed = self.reg.remove(sub)
        expected = sorted(t for t, m in self.model.items() if m == {sub})
        assert sorted(closed) == expected
        for t in list(self.model):
            self.model[t].discard(sub)
            if not self.model[t]:
                del self.model[t]

    @invariant()
    def agrees(self) -> None:
        assert sorted(self.reg.topics()) == sorted(self.model)
        for t, members in self.model.items():
            assert set(self.reg.subscribers(t)) == members and self.reg.count(t) == len(members)
        for sub in range(6):
            assert set(self.reg.topics_of(sub)) == {t for t, m in self.model.items() if sub in m}


TestRegistry = RegistryMachine.TestCase
TestRegistry.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)


@given(
    st.floats(0.5, 100),
    st.integers(1, 50),
    st.lists(st.floats(0, 0.5), min_size=1, max_size=200),
)
def test_token_bucket_never_exceeds_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    now = 0.0
    taken = 0
    for gap in gaps:
        now += gap
        taken += bucket.take(now)
    assert taken <= burst + rate * now + 1e-9


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(["login", "offer", "answer", "candidate", "leave", "close", "x"]),
            st.sampled_from(["p0", "p1", "p2", "", "bad name"]),
        ),
        max_size=40,
    )
)
def test_named_registry_random_sessions(ops: list[tuple[int, str, str]]) -> None:
    reg = NamedRegistry()
    inbox: dict[int, list[dict[str, Any]]] = {i: [] for i in range(4)}

    def make(i: int) -> NamedPeer:
        return NamedPeer(lambda text: inbox[i].append(orjson.loads(text)))

    peers = {i: make(i) for i in range(4)}
    for i, kind, name in ops:
        if kind == "close":
            reg.disconnect("room", peers[i])
            peers[i] = make(i)
            continue
        reg.handle("room", peers[i], orjson.dumps({"type": kind, "name": name, kind: {"v": 1}}))
    names = reg.names("room")
    assert len(names) == len(set(names))  # unique per room
    holders = [p.name for p in peers.values() if p.name is not None]
    assert sorted(holders) == sorted(names)  # exactly the live sockets hold names
    for msgs in inbox.values():
        for m in msgs:
            assert m["type"] in {"login", "offer", "answer", "candidate", "leave", "error"}
