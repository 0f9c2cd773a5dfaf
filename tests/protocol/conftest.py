"""Fixtures for the wire-core tests: one long-lived real-Yjs Node worker per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wire_helpers import YjsWorker


@pytest.fixture(scope="session")
def yjs() -> Iterator[YjsWorker]:
    """The session's real-Yjs worker."""
    worker = YjsWorker()
    try:
        yield worker
    finally:
        worker.close()
