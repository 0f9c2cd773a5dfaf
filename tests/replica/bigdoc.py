"""A 10 MB document for the big-document test and benchmark, written into an archive.

Half of it is "typed": ``typed_bytes`` of text typed in small runs at the top of the document,
with a few corrections (deletions), so the state holds tens of thousands of items and a delete
set, like real editing (typing at the top keeps pycrdt fast: inserting at arbitrary offsets of a
5 MB Yrs text costs milliseconds per edit); the other half is one single paste of
``paste_bytes`` in the middle (one huge string item that must be cut into several items to
travel within a 256 KiB data-channel message).
"""

from __future__ import annotations

import random

from collab.document import Document
from collab.storage import open_store

WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
]


def build_document(typed_bytes: int, paste_bytes: int, seed: int = 1) -> Document:
    """Build the document in memory (ASCII text, so pycrdt byte offsets = characters)."""
    rng = random.Random(seed)
    document = Document()
    text = document.text()
    length = 0
    runs = 0
    while length < typed_bytes:
        run = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) + " "
        text.insert(0, run)
        length += len(run)
        runs += 1
        if runs % 10 == 0:  # a correction: delete a few characters just typed
            del text[1:4]
            length -= 3
    unit = "pasted paragraph: " + " ".join(WORDS) + ".\n"
    paste = (unit * (paste_bytes // len(unit) + 1))[:paste_bytes]
    text.insert(length // 2, paste)
    return document


async def archive_document(store_url: str, room: str, document: Document) -> None:
    """Store the document's full state as the room's archive (one snapshot-sized update)."""
    async with open_store(store_url) as store:
        await store.acquire_room(room, "bigdoc")
        # one update of the whole state: what the replica must split to send it
        seq = store.append(room, document.get_update())
        await store.flush()
        await store.compact(room, document.get_update(), seq)
