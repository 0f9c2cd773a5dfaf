"""Where things are: the checkout, its virtualenv's ``collab`` command, Node and node_modules."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout (the directory holding ``pyproject.toml``)."""
VENV_BIN = ROOT / ".venv" / "bin"
COLLAB = str(VENV_BIN / "collab")
"""The ``collab`` command of this checkout."""
NODE = shutil.which("node") or "/usr/bin/node"
NODE_MODULES = ROOT / "node_modules"
YWEBRTC_SERVER = NODE_MODULES / "y-webrtc" / "bin" / "server.js"
"""y-webrtc's own signaling server (the reference our signaling is held to)."""
CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (``scripts/bootstrap --test``)."""
SHARED_DATA = ROOT.parent / "shared" / "data"
"""Large shared inputs (the automerge-paper trace) outside the checkout."""
