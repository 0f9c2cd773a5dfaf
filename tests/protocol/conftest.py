"""Fixtures for the wire-core tests: one long-lived real-Yjs Node worker per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.protocol.wire_helpers import SplitCheckWorker


@pytest.fixture(scope="session")
def yjs() -> Iterator[SplitCheckWorker]:
    """The session's real-Yjs worker."""
    worker = SplitCheckWorker()
    try:
        yield worker
    finally:
        worker.close()
