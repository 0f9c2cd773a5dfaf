"""Fixtures for the sync tests: a long-lived Node Yjs worker (tests/js/yjs_worker.mjs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync.yjs_helpers import YjsWorker


@pytest.fixture(scope="session")
def yjs() -> Iterator[YjsWorker]:
    """One Node Yjs worker for the whole session (not one process per example)."""
    worker = YjsWorker()
    try:
        assert worker.call("ping")["pong"] is True
        yield worker
    finally:
        worker.close()
