"""The page's JavaScript is checked: ``tsc --checkJs`` (strict) over ``web/src`` with its JSDoc
types (``web/tsconfig.json``) and over the TipTap example (``examples/tiptap_room``), and ESLint
(``eslint.config.js``, flat config) over ``web/``, the example and its test helper.

No browser needed: runs everywhere node and the npm packages (``scripts/bootstrap``) are.
Each check is also shown to catch what it is for, so a config that checks nothing fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"


def _tool(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None:
        pytest.skip("needs node")
    exe = BIN / name
    assert exe.exists(), f"{exe} is missing: scripts/bootstrap installs the npm packages"
    return subprocess.run(
        [str(exe), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize("project", ["web", "examples/tiptap_room"])
def test_page_javascript_type_checks(project: str) -> None:
    config = json.loads((ROOT / project / "tsconfig.json").read_text())["compilerOptions"]
    assert config["checkJs"] is True and config["strict"] is True
    run = _tool("tsc", "-p", f"{project}/tsconfig.json", "--pretty", "false")
    assert run.returncode == 0, run.stdout + run.stderr


def test_type_check_covers_every_page_module_strictly() -> None:
    config = json.loads((ROOT / "web" / "tsconfig.json").read_text())["compilerOptions"]
    assert config["checkJs"] is True and config["strict"] is True
    run = _tool("tsc", "-p", "web/tsconfig.json", "--listFilesOnly")
    assert run.returncode == 0, run.stdout + run.stderr
    listed = {Path(line).resolve() for line in run.stdout.splitlines() if line.strip()}
    modules = set((ROOT / "web" / "src").glob("*.js"))
    assert modules and modules <= listed, sorted(map(str, modules - listed))


def test_type_check_catches_a_wrong_jsdoc_type(tmp_path: Path) -> None:
    (tmp_path / "bad.js").write_text("/** @type {number} */\nexport const n = 'one'\n")
    (tmp_path / "tsconfig.json").write_text(
        json.dumps({"extends": str(ROOT / "web" / "tsconfig.json"), "include": ["bad.js"]})
    )
    run = _tool("tsc", "-p", str(tmp_path / "tsconfig.json"), "--pretty", "false")
    assert run.returncode != 0 and "TS2322" in run.stdout, run.stdout + run.stderr


def test_page_javascript_lints() -> None:
    run = _tool(
        "eslint",
        "--max-warnings",
        "0",
        "web",
        "examples/tiptap_room",
        "tests/richtext/tiptap_markdown.mjs",
        "eslint.config.js",
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_lint_catches_an_unused_variable_in_page_code() -> None:
    run = _tool(
        "eslint",
        "--stdin",
        "--stdin-filename",
        "web/src/probe.js",
        stdin="const unused = location.hash\nexport const two = 1 + 1\n",
    )
    assert run.returncode == 1 and "no-unused-vars" in run.stdout, run.stdout + run.stderr
