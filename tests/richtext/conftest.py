"""One Node worker for the whole folder (starting Node with y-prosemirror costs ~0.3 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.richtext.helpers import RichtextWorker


@pytest.fixture(scope="session")
def js() -> Iterator[RichtextWorker]:
    worker = RichtextWorker()
    try:
        yield worker
    finally:
        worker.close()
