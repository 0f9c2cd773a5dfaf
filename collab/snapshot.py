"""Yjs snapshots (delete set + state vector) and "does this archive hold everything I have?".

A browser's state is not described by its state vector alone: deleting text does not move
any clock. A Yjs *snapshot* — ``Y.encodeSnapshot(Y.snapshot(doc))``, the delete set followed
by the state vector — is. :func:`snapshot_covers` answers whether every struct and every
deletion of one snapshot is contained in another; the replica uses it to tell a page that
its latest change, delete-only changes included, is durably stored.

Example:
    >>> from collab.document import Document
    >>> a = Document(client_id=1)
    >>> a.text().insert(0, "hello")
    >>> b = Document(client_id=2)
    >>> b.apply_update(a.get_update())
    True
    >>> del b.text()[0:1]
    >>> old, new = snapshot_of(a), snapshot_of(b)
    >>> snapshot_covers(old, new), snapshot_covers(new, old)
    (False, True)
"""

from __future__ import annotations

import pycrdt

from collab.document import Document
from collab.errors import ProtocolError
from collab.yupdate import DeleteSet, decode_snapshot

__all__ = ["snapshot_covers", "snapshot_of"]

MAX_SNAPSHOT_BYTES = 1 << 20
"""Largest snapshot :func:`snapshot_covers` reads (a peer sends it)."""


def snapshot_of(document: Document) -> bytes:
    """The V1 snapshot of ``document`` now (same bytes as ``Y.encodeSnapshot``)."""
    return bytes(pycrdt.Snapshot.from_doc(document.ydoc).encode())


def _merged(delete_set: DeleteSet) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {}
    for client, ranges in delete_set:
        out.setdefault(client, []).extend((clock, clock + length) for clock, length in ranges)
    for client, spans in out.items():
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            elif end > start:
                merged.append((start, end))
        out[client] = merged
    return out


def snapshot_covers(stored: bytes, wanted: bytes) -> bool:
    """True when ``stored`` holds every struct and every deletion of ``wanted``.

    Raises:
        ProtocolError: ``bad-snapshot`` when either snapshot is malformed or too large.
    """
    if len(wanted) > MAX_SNAPSHOT_BYTES or len(stored) > 64 * MAX_SNAPSHOT_BYTES:
        raise ProtocolError("bad-snapshot", "snapshot too large")
    try:
        stored_ds, stored_sv = decode_snapshot(stored)
        wanted_ds, wanted_sv = decode_snapshot(wanted)
    except ProtocolError as e:
        raise ProtocolError("bad-snapshot", str(e)) from None
    if any(stored_sv.get(client, 0) < clock for client, clock in wanted_sv.items()):
        return False
    have = _merged(stored_ds)
    for client, spans in _merged(wanted_ds).items():
        covering = have.get(client, [])
        i = 0
        for start, end in spans:
            while i < len(covering) and covering[i][1] <= start:
                i += 1
            if i == len(covering) or covering[i][0] > start or covering[i][1] < end:
                return False
    return True
