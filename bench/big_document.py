"""A 10 MB document from the replica to a fresh stock y-webrtc browser: time from join to text.

Builds the document of ``tests/replica/test_big_document.py`` (50k typed runs + a 5 MB paste),
archives it, starts ``collab serve``, then for each run opens a fresh headless Chromium, joins the
room with the stock yjs + y-webrtc page and measures the time until the whole text is there.
Anchor, measured in the same run: pycrdt loading the same state in-process (the CRDT floor,
no network). Goal: ≤ 3 s from browser join to full text.

    scripts/netns-run .venv/bin/python bench/big_document.py --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pycrdt

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # the test suite's helpers: tests.support, tests.replica.bigdoc

from tests.replica.bigdoc import archive_document, build_document  # noqa: E402
from tests.support.browser import Chromium, StaticServer, build_ywebrtc_page  # noqa: E402
from tests.support.servers import CollabServer  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="collab-bigdoc-"))
    document = build_document(args.typed, args.paste)
    length = len(str(document.text()))
    state = document.get_update()
    (work / "data").mkdir()
    await archive_document(f"sqlite:///{work / 'data' / 'collab.db'}", "big", document)

    floors = []
    for _ in range(args.runs):
        started = time.perf_counter()
        pycrdt.Doc().apply_update(state)
        floors.append(time.perf_counter() - started)

    page_server = StaticServer(build_ywebrtc_page(work / "page"))
    server = CollabServer(work / "data", work / "serve.log")
    server.start()
    times = []
    try:
        for run in range(args.runs):
            browser = Chromium(work / f"profile-{run}")
            await browser.start()
            try:
                page = await browser.open(page_server.url)
                started = time.perf_counter()
                await page.evaluate(
                    "a => window.collabTest.start(a)",
                    {"room": "big", "signaling": server.signaling},
                )
                await page.wait_for_function(
                    "n => window.collabTest.textLength() >= n",
                    arg=length,
                    timeout=180_000,
                    polling=20,
                )
                times.append(time.perf_counter() - started)
            finally:
                await browser.close()
    finally:
        server.kill()
        page_server.stop()

    t, floor = statistics.median(times), statistics.median(floors)
    print(f"big document: {length:,} chars, state {len(state):,} B")
    print(
        f"  browser join → full text: median {t:.2f} s over {args.runs} runs "
        f"({', '.join(f'{x:.2f}' for x in times)}); goal ≤ 3 s: {'met' if t <= 3 else 'NOT met'}"
    )
    print(f"  anchor, pycrdt in-process load of the same state: {floor * 1000:.0f} ms")
    print(f"  ratio: {t / floor:.1f}× the in-process load floor")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--typed", type=int, default=5_000_000)
    parser.add_argument("--paste", type=int, default=5_000_000)
    anyio.run(main, parser.parse_args())
