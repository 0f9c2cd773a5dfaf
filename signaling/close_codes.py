"""WebSocket close codes of the signaling service (one table, documented in README.md).

Example:
    >>> CloseCode.RATE_LIMITED.value
    4429
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode"]


class CloseCode(IntEnum):
    """WebSocket close codes used by the signaling service (documented in README.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    FRAME_TOO_LARGE = 1009
    SLOW_CONSUMER = 1013
    BAD_MESSAGE = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    IDLE_TIMEOUT = 4408
    TOPIC_FULL = 4413
    RATE_LIMITED = 4429
