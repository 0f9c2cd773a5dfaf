"""Skip marks for tests that need the test network namespace or Debian Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.paths import CHROMIUM

IN_NETNS = os.environ.get("COLLAB_NETNS") == "1"
"""True inside ``scripts/netns-run`` (the private network namespace the tests run in)."""

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)

needs_netns = pytest.mark.skipif(
    not IN_NETNS,
    reason="WebRTC between processes runs in the test network namespace: scripts/netns-run",
)
