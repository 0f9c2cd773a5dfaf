"""Replay automerge-paper between two collab peers and compare with pure pycrdt.

Usage:
    .venv/bin/python bench/sync_replay.py [--limit N] [--batch K] [--echo]

Anchor (measured in the same run): pure pycrdt in one process — doc A applies each batch of
``K`` edits in one transaction (31-bit client id) and every update is applied straight to doc
B. Collab: the same edits on peer A's :class:`collab.sync.SyncRoom`, carried to peer B over an
in-memory channel pair by the full sync engine (outbox, coalescing, framing, strict decoding,
relay/echo, parking checks). Reported: the time ratio collab / anchor (goal <= 1.2) and the
wire bytes per edit. The final texts are checked against the trace's ``endContent``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from collab.document import Document, random_client_id
from collab.memnet import channel_pair, wait_idle
from collab.sync import SyncOptions, SyncRoom

TRACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "automerge-paper.json.gz"


def load(limit: int | None) -> tuple[list[tuple[int, int, str]], str | None]:
    with gzip.open(TRACE) as f:
        data: dict[str, Any] = json.load(f)
    patches = [tuple(p) for txn in data["txns"] for p in txn["patches"]]
    if limit is not None and limit < len(patches):
        return patches[:limit], None  # type: ignore[return-value]
    return patches, data["endContent"]  # type: ignore[return-value]


def apply_patch(text: pycrdt.Text, patch: tuple[int, int, str]) -> None:
    pos, deleted, inserted = patch  # the trace is pure ASCII: code points == UTF-8 bytes
    if deleted:
        del text[pos : pos + deleted]
    if inserted:
        text.insert(pos, inserted)


def anchor(patches: list[tuple[int, int, str]], batch: int) -> tuple[float, str, int]:
    a = pycrdt.Doc(client_id=random_client_id())
    b = pycrdt.Doc(client_id=random_client_id())
    text_a = a.get("text", type=pycrdt.Text)
    text_b = b.get("text", type=pycrdt.Text)
    sent = 0

    def forward(event: pycrdt.TransactionEvent) -> None:
        nonlocal sent
        sent += len(event.update)
        b.apply_update(event.update)

    a.observe(forward)
    start = time.perf_counter()
    for i in range(0, len(patches), batch):
        with a.transaction():
            for patch in patches[i : i + batch]:
                apply_patch(text_a, patch)
    elapsed = time.perf_counter() - start
    if str(text_a) != str(text_b):
        raise SystemExit("anchor: replicas differ")
    return elapsed, str(text_b), sent


async def collab(
    patches: list[tuple[int, int, str]], batch: int, echo: bool
) -> tuple[float, str, dict[str, int]]:
    options = SyncOptions(echo_to_origin=echo)
    a = SyncRoom(Document(roots={"text": "text"}), options=options)
    b = SyncRoom(Document(roots={"text": "text"}), options=options)
    left, right = channel_pair()
    text_a = a.document.text("text")
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.serve, left, "a->b")
        tg.start_soon(b.serve, right, "b->a")
        await wait_idle()
        start = time.perf_counter()
        for n, i in enumerate(range(0, len(patches), batch)):
            with a.document.transaction():
                for patch in patches[i : i + batch]:
                    apply_patch(text_a, patch)
            if n % 32 == 31:  # let the connection tasks run (an editor yields all the time)
                await anyio.lowlevel.checkpoint()
        await wait_idle()
        elapsed = time.perf_counter() - start
        (ca,) = a.connections
        (cb,) = b.connections
        stats = {
            "a_messages_out": ca.stats.messages_out,
            "a_bytes_out": ca.stats.bytes_out,
            "b_messages_out": cb.stats.messages_out,
            "b_bytes_out": cb.stats.bytes_out,
            "coalesced": ca.stats.updates_coalesced,
        }
        result = str(b.document.text("text"))
        if result != str(text_a):
            raise SystemExit("collab: replicas differ")
        tg.cancel_scope.cancel()
    return elapsed, result, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N edits")
    parser.add_argument("--batch", type=int, default=1, help="edits per transaction (both sides)")
    parser.add_argument(
        "--echo", action="store_true", help="echo updates to their origin, like y-webrtc"
    )
    args = parser.parse_args()
    if not TRACE.exists():
        sys.exit(f"{TRACE} not found")
    patches, end = load(args.limit)
    edits = len(patches)
    print(f"automerge-paper: {edits} edits, {args.batch} per transaction")
    # anchor before and after (the box is shared: load drifts), collab in between
    t_before, text_anchor, anchor_bytes = anchor(patches, args.batch)
    t_collab, text_collab, stats = anyio.run(collab, patches, args.batch, args.echo)
    t_after, _, _ = anchor(patches, args.batch)
    t_anchor = (t_before + t_after) / 2
    if text_anchor != text_collab or (end is not None and text_collab != end):
        sys.exit("final text differs from the trace's endContent")
    print(
        f"anchor  (pure pycrdt, in-process): {t_anchor:8.2f} s"
        f"  (before {t_before:.2f}, after {t_after:.2f})"
    )
    print(f"collab  (two SyncRooms, memory ch): {t_collab:8.2f} s")
    print(f"ratio   collab / anchor           : {t_collab / t_anchor:8.2f}x   (goal <= 1.2x)")
    print(
        f"wire A->B: {stats['a_bytes_out']:,} B in {stats['a_messages_out']:,} messages"
        f" = {stats['a_bytes_out'] / edits:.1f} B/edit"
        f" (raw updates: {anchor_bytes / edits:.1f} B/edit;"
        f" {stats['coalesced']:,} updates coalesced)"
    )
    print(
        f"wire B->A (sync + echo if --echo): {stats['b_bytes_out']:,} B"
        f" in {stats['b_messages_out']:,} messages"
    )
    print("final text matches endContent" if end is not None else "final texts match")


if __name__ == "__main__":
    main()
