"""Build hook: the wheel and the sdist carry an up-to-date web page.

The page (``node web/build.mjs`` output, ``web/dist``, git-ignored) ships in the wheel as
package data ``collabd/web/`` (found by ``collabd.webdir``) and in the sdist as ``web/dist``, so
a wheel built from the sdist has it too. In a checkout with the npm packages installed
(``scripts/bootstrap``), ``python -m build`` first runs ``node web/build.mjs --if-stale``, so a
wheel never ships a page older than its sources; an unpacked sdist has no ``node_modules`` and
uses the ``web/dist`` it carries. A build without ``web/dist/index.html`` fails, saying how to
build the page. Editable installs (``pip install -e``) skip all of this: a checkout serves
``web/dist`` in place.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TARGETS = {"wheel": "collabd/web", "sdist": "web/dist"}
"""Where ``web/dist`` goes in each artifact."""


class WebPageHook(BuildHookInterface):
    """Rebuild ``web/dist`` when stale and possible; require it; include it."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable" or self.target_name not in TARGETS:
            return
        root = Path(self.root)
        script = root / "web" / "build.mjs"
        node = shutil.which("node")
        if node and script.is_file() and (root / "node_modules").is_dir():
            subprocess.run([node, str(script), "--if-stale"], cwd=root, check=True)
        dist = root / "web" / "dist"
        if not (dist / "index.html").is_file():
            raise RuntimeError(
                "web/dist is not built: run `node web/build.mjs` (scripts/bootstrap does it) "
                "before building a wheel or sdist"
            )
        build_data["force_include"][str(dist)] = TARGETS[self.target_name]
