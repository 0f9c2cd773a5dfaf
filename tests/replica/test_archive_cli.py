"""``collab import|export|versions|diff|restore`` on a real SQLite archive, through the real CLI;
the Yjs export is loaded by real Yjs in Node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from collab.storage import open_store
from tests.support.paths import COLLAB, ROOT

pytestmark = pytest.mark.anyio


def cli(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [COLLAB, *args], input=input, capture_output=True, cwd=ROOT, timeout=120, check=False
    )


async def test_import_export_versions_diff_restore(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'archive.db'}"
    v1_text = "# Notes\n\nfirst draft with ünïcode and 🐍\n"
    (tmp_path / "v1.md").write_text(v1_text)
    done = cli("import", "notes", str(tmp_path / "v1.md"), "--store", store)
    assert done.returncode == 0, done.stderr
    async with open_store(store) as s:
        await s.acquire_room("notes", "test")
        v1 = await s.add_version("notes", "draft 1")

    v2_text = "# Notes\n\nsecond draft, much better\nwith a new line\n"
    (tmp_path / "v2.md").write_text(v2_text)
    assert cli("import", "notes", str(tmp_path / "v2.md"), "--store", store).returncode == 0

    assert cli("export", "notes", "--store", store).stdout.decode() == v2_text
    at_v1 = cli("export", "notes", "--store", store, "--at", str(v1.id))
    assert at_v1.stdout.decode() == v1_text
    exported = json.loads(cli("export", "notes", "--store", store, "--format", "json").stdout)
    assert exported == {"codemirror": v2_text}

    listing = cli("versions", "notes", "--store", store).stdout.decode()
    assert "draft 1" in listing

    diff = cli("diff", "notes", "--store", store, "--from", str(v1.id)).stdout.decode()
    assert "-first draft with ünïcode and 🐍" in diff and "+second draft, much better" in diff

    restored = cli("restore", "notes", "--store", store, "--at", str(v1.id))
    assert restored.returncode == 0, restored.stderr
    assert cli("export", "notes", "--store", store).stdout.decode() == v1_text

    # the Yjs export loads in real Yjs
    yjs = cli("export", "notes", "--store", store, "--format", "yjs").stdout
    script = (
        "import * as Y from 'yjs';const c=[];process.stdin.on('data',d=>c.push(d));"
        "process.stdin.on('end',()=>{const d=new Y.Doc();"
        "Y.applyUpdate(d,new Uint8Array(Buffer.concat(c)));"
        "process.stdout.write(d.getText('codemirror').toString())})"
    )
    node = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=yjs,
        capture_output=True,
        cwd=ROOT,
        check=True,
        timeout=30,
    )
    assert node.stdout.decode() == v1_text

    # and a Yjs update imports into another room
    (tmp_path / "notes.yjs").write_bytes(yjs)
    assert (
        cli(
            "import", "copy", str(tmp_path / "notes.yjs"), "--store", store, "--format", "yjs"
        ).returncode
        == 0
    )
    assert cli("export", "copy", "--store", store).stdout.decode() == v1_text


async def test_large_import_and_markdown_and_errors(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'archive.db'}"
    big = "".join(f"line {i}: lorem ipsum dolor sit amet 🌍\n" for i in range(40_000))
    (tmp_path / "big.txt").write_text(big)
    assert cli("import", "big", str(tmp_path / "big.txt"), "--store", store).returncode == 0
    out = cli("export", "big", "--store", store, "--format", "markdown").stdout.decode()
    assert out == big

    missing = cli("export", "nope", "--store", store)
    assert missing.returncode == 2 and b"room-not-found" in missing.stderr
    bad_version = cli("export", "big", "--store", store, "--at", "12345")
    assert bad_version.returncode == 2 and b"no-version" in bad_version.stderr
    bad_format = cli("export", "big", "--store", store, "--format", "pdf")
    assert bad_format.returncode != 0
