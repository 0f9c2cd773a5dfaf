"""Fixtures of the TURN tests: coturn with long-term credentials or with the TURN REST API's
shared secret, inside the test network namespace, ended by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.turn.coturn import LT_USER, REST_SECRET, Coturn


@pytest.fixture
def coturn_lt(tmp_path: Path) -> Iterator[Coturn]:
    """coturn with long-term credentials (``lt-cred-mech``, one static user)."""
    with Coturn(tmp_path / "coturn-lt", user=LT_USER, relay_ports=(61000, 61499)) as server:
        yield server


@pytest.fixture
def coturn_rest(tmp_path: Path) -> Iterator[Coturn]:
    """coturn with the TURN REST API's shared secret (``use-auth-secret``)."""
    with Coturn(tmp_path / "coturn-rest", secret=REST_SECRET, relay_ports=(61500, 61999)) as server:
        yield server
