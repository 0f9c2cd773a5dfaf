"""collab.attribution on real pycrdt documents: per-line authors through interleaved edits,
merged (multi-client) updates, deletions with their deleter, non-text roots, sanitising."""

from __future__ import annotations

import pycrdt
import pytest

from collab.attribution import (
    Attributor,
    attributed_diff,
    clean_color,
    clean_name,
    first_client,
    user_of,
)
from collab.storage import TimedLog


class Editor:
    """One client editing a shared text; every transaction is one update (like a peer)."""

    def __init__(self, client_id: int) -> None:
        self.doc = pycrdt.Doc(client_id=client_id)
        self.text = self.doc.get("codemirror", type=pycrdt.Text)
        self.out: list[bytes] = []
        self.doc.observe(lambda event: self.out.append(event.update))

    def take(self) -> list[bytes]:
        out, self.out = self.out, []
        return out


def _sync(a: Editor, b: Editor) -> None:
    b.doc.apply_update(a.doc.get_update(b.doc.get_state()))
    a.doc.apply_update(b.doc.get_update(a.doc.get_state()))
    a.take()
    b.take()


def test_lines_name_their_writers_through_interleaved_edits() -> None:
    ada, bob = Editor(1), Editor(2)
    log: list[tuple[bytes, float]] = []
    ada.text += "ada writes\n"
    log += [(u, 1.0) for u in ada.take()]
    _sync(ada, bob)
    bob.text.insert(len(bob.text), "bob writes é😀\n")
    bob.text.insert(4, "(bob) ")  # inside ada's line
    log += [(u, 2.0) for u in bob.take()]
    _sync(ada, bob)
    ada.text.insert(0, "header\n")
    log += [(u, 3.0) for u in ada.take()]

    attributor = Attributor("codemirror")
    for update, ts in log:
        attributor.apply(update, ts)
    assert attributor.text == str(ada.text)
    lines = attributor.blame()
    assert [(x.text, x.authors, x.time) for x in lines] == [
        ("header", [1], 3.0),
        ("ada (bob) writes", [1, 2], 2.0),
        ("bob writes é😀", [2], 2.0),
    ]

    # the same document as ONE merged update (a snapshot): still split by author
    merged = Attributor("codemirror")
    merged.apply(ada.doc.get_update(), None)
    assert [(x.text, x.authors, x.time) for x in merged.blame()] == [
        ("header", [1], None),
        ("ada (bob) writes", [1, 2], None),
        ("bob writes é😀", [2], None),
    ]


def test_diff_names_who_wrote_and_who_deleted() -> None:
    ada, bob = Editor(1), Editor(2)
    ada.text += "keep\nada's doomed line\n"
    entries = [(1, 1.0, u) for u in ada.take()]
    _sync(ada, bob)
    # bob deletes ada's line while typing his own (one transaction: he is the deleter)
    with bob.doc.transaction():
        del bob.text[5:23]
        bob.text.insert(5, "bob's line\n")
    entries += [(2, 2.0, u) for u in bob.take()]
    log = TimedLog("r", None, 0, None, [(i + 1, t, u) for i, (_, t, u) in enumerate(entries)], 2)
    diff = attributed_diff(log, 1, "codemirror", context=-1)
    assert [(d.op, d.text, d.authors, d.deleted_by) for d in diff] == [
        (" ", "keep", [1], []),
        ("-", "ada's doomed line", [1], [2]),
        ("+", "bob's line", [2], []),
    ]
    # a delete-only update: the writer is known, the deleter is not (Yjs does not say)
    _sync(ada, bob)
    del ada.text[0:5]
    log2 = TimedLog("r", None, 0, None, [*log.entries, (3, 3.0, ada.take()[0])], 3)
    (gone,) = [d for d in attributed_diff(log2, 2, "codemirror") if d.op == "-"]
    assert (gone.text, gone.authors, gone.deleted_by) == ("keep", [1], [None])


def test_non_text_roots_are_refused_and_missing_roots_are_empty() -> None:
    doc = pycrdt.Doc(client_id=5)
    doc["settings"] = settings = pycrdt.Map()
    settings["theme"] = "dark"
    log = TimedLog("r", None, 0, None, [(1, 1.0, doc.get_update())], 1)
    with pytest.raises(ValueError, match="text roots"):
        attributed_diff(log, 0, "settings")
    attributor = Attributor("codemirror")
    attributor.replay(log)
    assert attributor.blame() == []


def test_an_xml_fragment_whose_first_block_was_deleted_is_refused() -> None:
    """y-prosemirror deletes and re-creates blocks all the time: the items naming the root can
    all be gone, and the root must still read as XML (not as a missing, empty text)."""
    doc = pycrdt.Doc(client_id=7)
    doc["default"] = fragment = pycrdt.XmlFragment()
    fragment.children.append(pycrdt.XmlElement("paragraph", {}, [pycrdt.XmlText("first")]))
    fragment.children.append(pycrdt.XmlElement("paragraph", {}, [pycrdt.XmlText("second")]))
    del fragment.children[0]
    log = TimedLog("r", None, 0, None, [(1, 1.0, doc.get_update())], 1)
    attributor = Attributor("default")
    with pytest.raises(ValueError, match="text roots"):
        attributor.replay(log)
        attributor.check_root()


def test_peer_input_is_sanitised() -> None:
    assert clean_name("\u202eevil\x00 name\n\n  x") == "evil name x"
    assert clean_name(["not", "a", "string"]) == ""
    assert len(clean_name("é" * 10_000)) == 64
    assert clean_color("#ABCDEF") == "#abcdef" and clean_color("#12345") == ""
    assert clean_color("javascript:alert(1)") == ""
    assert user_of({"user": "Ada"}) == ("", "") and user_of(42) == ("", "")
    assert first_client(b"") is None and first_client(b"\x01\x01") is None
    assert first_client(Editor(77).doc.get_update()) is None  # nothing: 0 sections
