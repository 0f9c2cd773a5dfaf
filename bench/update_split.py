"""Benchmark collab.update_split.split_update on big documents.

Anchor (measured in the same run, on the same update): pycrdt (Rust yrs) applying the whole
update to a fresh ``Doc`` — the work a receiver does anyway. Printed: best-of-N wall time for
split_update, the anchor, and split/anchor ratios, plus µs per struct and MB/s.

Documents:
  * paste-10MB     one 10 MB paste (ASCII + astral chars) built in pycrdt: few, huge structs;
  * typing         N random-position keystrokes built by stock Yjs (tests/js/split_check.mjs):
                   one struct per keystroke — the worst case for a per-struct splitter;
  * trace          the automerge-paper editing trace (259,778 edits) replayed in stock Yjs.

Run: .venv/bin/python bench/update_split.py [--keystrokes 200000] [--tries 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pycrdt

from collab.update_split import split_update
from collab.yupdate import decode_update

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT.parent / "shared" / "data" / "automerge-paper.json.gz"


def best(fn: Callable[[], object], tries: int) -> float:
    """Best wall time of ``tries`` runs (the machine is shared: the minimum is the signal)."""
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def yjs_build(scenario: str, size: int) -> bytes:
    """Build a document with stock Yjs via the test worker (one request, then exit)."""
    env = dict(os.environ, TRACE_PATH=str(TRACE))
    request = json.dumps({"op": "build", "scenario": scenario, "seed": 1, "size": size})
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "js" / "split_check.mjs")],
        input=request + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    ).stdout
    return base64.b64decode(json.loads(out.splitlines()[0])["update"])


def paste_update(megabytes: int) -> bytes:
    rng = random.Random(1)
    alphabet = "abcdefghij klmnop\n" * 4 + "é😀𝄞中"
    # ~1.12 UTF-8 bytes per character on average with this alphabet
    text = "".join(rng.choice(alphabet) for _ in range(int(megabytes * 1_000_000 / 1.12)))
    doc = pycrdt.Doc(client_id=7)
    doc["t"] = ytext = pycrdt.Text()
    ytext += text
    return doc.get_update()


def apply_in_pycrdt(update: bytes) -> None:
    pycrdt.Doc().apply_update(update)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keystrokes", type=int, default=200_000)
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()

    docs = [
        ("paste-10MB", paste_update(10)),
        (f"typing-{args.keystrokes}", yjs_build("typing", args.keystrokes)),
        ("trace", yjs_build("trace", 0)),
    ]
    print(
        f"{'document':<20} {'bytes':>10} {'structs':>8} {'max_bytes':>9} {'chunks':>6} "
        f"{'split s':>8} {'anchor s':>8} {'ratio':>6} {'us/struct':>9} {'MB/s':>6}"
    )
    for name, update in docs:
        structs = sum(len(c.structs) for c in decode_update(update).clients)
        anchor = best(lambda u=update: apply_in_pycrdt(u), args.tries)
        for max_bytes in (16_384, 262_144):
            chunks = split_update(update, max_bytes)
            assert all(len(c) <= max_bytes for c in chunks)
            took = best(lambda u=update, m=max_bytes: split_update(u, m), args.tries)
            print(
                f"{name:<20} {len(update):>10} {structs:>8} {max_bytes:>9} {len(chunks):>6} "
                f"{took:>8.3f} {anchor:>8.3f} {took / anchor:>6.1f} "
                f"{took / structs * 1e6:>9.2f} {len(update) / took / 1e6:>6.1f}"
            )


if __name__ == "__main__":
    main()
