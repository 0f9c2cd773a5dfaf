"""``collab export|diff|restore`` on a rich-text room (TipTap fragment, Quill text, whiteboard
map) in a real SQLite archive, through the real CLI; real Yjs + y-prosemirror judge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.richtext.archive import ROOTS, seed
from tests.richtext.helpers import RichtextWorker
from tests.support.node import b64
from tests.support.paths import COLLAB, ROOT

pytestmark = pytest.mark.anyio


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([COLLAB, *args], capture_output=True, cwd=ROOT, timeout=120, check=False)


async def test_export_diff_restore_every_root(js: RichtextWorker, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'archive.db'}"
    v = await seed(js, store, "essay")

    def export(*args: str) -> str:
        done = cli("export", "essay", "--store", store, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.decode()

    # the main root is TipTap's "default" fragment (no shared CodeMirror text here)
    assert export("--format", "html") == v.v2["html"]
    assert export("--root", "default") == v.v2["html"]  # an XML root's default format
    assert export("--format", "html", "--at", str(v.v1_id)) == v.v1["html"]
    assert export("--format", "text") == v.v2["text"]
    assert export("--format", "markdown").startswith("# Title, renamed\n\n")
    quill = js.call("delta", updates=[v.v2_update], name="quill")
    assert json.loads(export("--root", "quill", "--format", "delta")) == quill["delta"]
    assert export("--root", "quill") == quill["string"]
    expected = js.call("json", updates=[v.v2_update], roots=ROOTS)["json"]
    assert json.loads(export("--root", "board")) == expected["board"]
    everything = json.loads(export("--format", "json"))
    # every root, plus the (empty) shared text the CLI declares, as before
    assert sorted(everything) == ["board", "codemirror", "default", "quill"]
    assert everything["board"] == expected["board"] and everything["quill"] == expected["quill"]
    assert everything["default"]["content"][0]["attrs"] == {"level": 1}

    missing = cli("export", "essay", "--store", store, "--root", "nope")
    assert missing.returncode == 2 and b"no root named 'nope'" in missing.stderr
    wrong = cli("export", "essay", "--store", store, "--root", "quill", "--format", "html")
    assert wrong.returncode == 2 and b"exports as text, markdown, delta, json" in wrong.stderr

    # diff: the default stays the shared text's (empty here); --root/--summary for the rest
    assert cli("diff", "essay", "--store", store, "--from", str(v.v1_id)).stdout == b""
    diff = cli(
        "diff", "essay", "--store", store, "--from", str(v.v1_id), "--root", "default", "--summary"
    ).stdout.decode()
    first, rest = diff.split("\n", 1)
    assert first == (  # the TipTap twin has no link: one marked run fewer than the basic one
        "# default (xml): headings ~1, paragraphs -1 ~3, code blocks ~1, rules -1, marks changed 3"
    )
    assert "-## Title" in rest and "+# Title, renamed" in rest
    board = cli(
        "diff", "essay", "--store", store, "--from", str(v.v1_id), "--root", "board", "--summary"
    ).stdout.decode()
    assert board.startswith("# board (map): keys +1 ~1\n")

    # restore every root, then the Yjs export loads in real Yjs as version 1
    restored = cli("restore", "essay", "--store", store, "--at", str(v.v1_id))
    assert restored.returncode == 0, restored.stderr
    yjs = b64(cli("export", "essay", "--store", store, "--format", "yjs").stdout)
    again = js.call("render", updates=[yjs], fragment="default", schema="tiptap")
    assert again["node"] == v.v1["node"]
    assert (
        js.call("delta", updates=[yjs], name="quill")["delta"]
        == js.call("delta", updates=[v.v1_update], name="quill")["delta"]
    )
    assert js.call("json", updates=[yjs], roots=ROOTS) == js.call(
        "json", updates=[v.v1_update], roots=ROOTS
    )
