"""WebSocket close codes of the signaling service (one table, documented in README.md).

Example:
    >>> CloseCode.RATE_LIMITED.value
    4429
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode", "reason_label"]


class CloseCode(IntEnum):
    """WebSocket close codes used by the signaling service (documented in README.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    FRAME_TOO_LARGE = 1009
    INTERNAL_ERROR = 1011
    SLOW_CONSUMER = 1013
    BAD_MESSAGE = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    IDLE_TIMEOUT = 4408
    TOPIC_FULL = 4413
    RATE_LIMITED = 4429


_REASON_LABELS: dict[int, str] = {
    CloseCode.FRAME_TOO_LARGE: "frame_too_large",
    CloseCode.SLOW_CONSUMER: "slow_consumer",
    CloseCode.UNAUTHORIZED: "unauthorized",
    CloseCode.FORBIDDEN: "forbidden",
    CloseCode.IDLE_TIMEOUT: "idle_timeout",
    CloseCode.TOPIC_FULL: "topic_full",
}


def reason_label(code: int, reason: str) -> str:
    """The metric label of a refusal (a fixed vocabulary: never peer input)."""
    return _REASON_LABELS.get(code, reason.replace(" ", "_")[:40])
