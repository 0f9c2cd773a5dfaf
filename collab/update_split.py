"""Split one large Yjs V1 update into several smaller valid updates (owned by the splitter work).

Placeholder signature so other modules can import it; replaced by the real implementation.
"""

from __future__ import annotations

__all__ = ["split_update"]


def split_update(update: bytes, max_bytes: int) -> list[bytes]:
    """Split ``update`` into valid V1 updates each at most ``max_bytes`` long (not yet built)."""
    if len(update) <= max_bytes:
        return [update]
    raise NotImplementedError("update splitting is being built")
