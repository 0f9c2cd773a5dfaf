"""The ``collab`` command line (typer).

Each sub-command lives in its own function; long-running ones start uvicorn or an asyncio loop.

Example:
    $ collab serve --port 8000 --data ./data
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="collab",
    help="Server side for Yjs over WebRTC: signaling, archival replica, web page.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """collab: y-webrtc signaling + archival replica + co-editing page."""


if __name__ == "__main__":
    app()
