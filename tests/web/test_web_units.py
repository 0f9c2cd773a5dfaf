"""The page's pure logic (archive rule, peers, routes, API parsing) on real Yjs (node --test).

No browser needed: runs everywhere node does.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.paths import ROOT


def test_page_units_pass_under_node() -> None:
    if shutil.which("node") is None:
        pytest.skip("needs node")
    run = subprocess.run(
        ["node", "--test", "tests/web/page_units.test.mjs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout, run.stdout
