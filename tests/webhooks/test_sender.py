"""The webhook sender in-process: the queue bound against a receiver that never answers."""

from __future__ import annotations

import gc

import anyio
import pytest
from prometheus_client import CollectorRegistry

from collab.replica import ReplicaEvent
from collabd.webhooks import WebhookOptions, WebhookSender, sign
from tests.webhooks.receiver import receiver, silent_listener

pytestmark = pytest.mark.anyio


def test_signature_is_hmac_sha256_of_the_body() -> None:
    import hashlib
    import hmac

    body = b'{"event":"room.deleted"}'
    expected = hmac.new(b"k" * 16, body, hashlib.sha256).hexdigest()
    assert sign(b"k" * 16, body) == f"sha256={expected}"


async def test_a_flood_against_a_silent_receiver_stays_bounded_and_counts_drops() -> None:
    registry = CollectorRegistry()
    with silent_listener() as port:
        options = WebhookOptions(
            urls=(f"http://127.0.0.1:{port}/hook",), timeout=30, queue=50, workers=4
        )
        sender = WebhookSender(options, registry)
        async with sender:
            # the first four are taken by the workers and hang (nobody answers)
            for i in range(4):
                sender.emit(ReplicaEvent("room.created", f"r{i}", 0.0, {}))
            with anyio.fail_after(10):
                while sender.queued:
                    await anyio.sleep(0.01)
            for i in range(20_000):
                sender.emit(ReplicaEvent("version.recorded", "flood", 0.0, {"n": i}))
            assert sender.queued == 50
            assert sender.counts["dropped"] == 20_000 - 50
            assert registry.get_sample_value(
                "collab_webhook_deliveries_total", {"result": "dropped"}
            ) == float(20_000 - 50)
            # the newest survive (the oldest are dropped)
            assert [d.body for d in sender._queue][-1].count(b'"n":19999') == 1
            # large bodies: the byte bound holds too
            big = {"contributors": ["x" * 1000] * 1000}  # ~6 MB of JSON each
            for _ in range(10):
                sender.emit(ReplicaEvent("version.recorded", "big", 0.0, big))
            assert sender._queued_bytes <= options.queue_bytes
            assert sender.counts["ok"] == sender.counts["failed"] == 0
    gc.collect()


async def test_a_refusing_receiver_fails_at_once_and_unselected_events_are_skipped() -> None:
    registry = CollectorRegistry()
    with receiver(b"0" * 16, {"/hook": [400]}) as hooks:
        options = WebhookOptions(
            urls=(hooks.url(),),
            secret=b"0" * 16,
            events=frozenset({"room.deleted"}),
        )
        async with WebhookSender(options, registry) as sender:
            sender.emit(ReplicaEvent("room.created", "a", 0.0, {}))  # not selected
            sender.emit(ReplicaEvent("room.deleted", "a", 1.0, {}))  # answered 400: refused
            sender.emit(ReplicaEvent("room.deleted", "b", 2.0, {}))
            with anyio.fail_after(10):
                while sender.counts["ok"] + sender.counts["failed"] < 2:
                    await anyio.sleep(0.01)
        assert dict(sender.counts) == {"failed": 1, "ok": 1}
        # four workers deliver concurrently: arrival order is not a promise (README)
        assert sorted(r.json["room"] for r in hooks.requests()) == ["a", "b"]
        assert all(r.signed for r in hooks.requests())
