"""Root-kind inference from updates made by real Yjs (and pycrdt)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pycrdt

from collab.render import infer_kinds

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import * as Y from 'yjs'
const d = new Y.Doc()
d.getText('prose').insert(0, 'hello')
d.getText('rich').insert(0, 'bold', { bold: true })
d.getMap('meta').set('title', 'x')
d.getArray('list').push([1, 'two'])
d.getArray('nested').push([new Y.Map()])
const frag = d.getXmlFragment('xml')
frag.insert(0, [new Y.XmlElement('p')])
const gone = d.getText('gone'); gone.insert(0, 'x'); gone.delete(0, 1)
process.stdout.write(Buffer.from(Y.encodeStateAsUpdate(d)).toString('hex'))
"""


def test_kinds_of_yjs_roots() -> None:
    out = subprocess.run(
        ["node", "--input-type=module", "-e", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    kinds = infer_kinds(bytes.fromhex(out.stdout.decode()))
    # a root whose only item was deleted carries no evidence: it is left out
    assert kinds == {
        "prose": "text",
        "rich": "text",
        "meta": "map",
        "list": "array",
        "nested": "array",
        "xml": "xml",
    }


def test_kinds_of_pycrdt_roots_and_empty_update() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    doc["t"] = pycrdt.Text("hi")
    doc["m"] = pycrdt.Map({"k": pycrdt.Array([1])})
    assert infer_kinds(doc.get_update()) == {"t": "text", "m": "map"}
    assert infer_kinds(b"\x00\x00") == {}
