"""A stand-in for ``collab serve`` while it is being built: serves ``web/dist`` at ``/`` plus
``GET /api/config`` (``{"iceServers": []}``: tests run offline). ``/api/rooms`` and the history
endpoints are absent (404), i.e. a server without an archive. Signaling is y-webrtc's own
``bin/server.js`` on another port (the page gets ``?signaling=ws://127.0.0.1:PORT``).

Run: ``python tests/web/fixture_server.py --port 8123 --dist web/dist``, or ``--fd N`` to serve
on a listening socket inherited from the test (bound once, by the test).
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def create_app(dist: Path) -> FastAPI:
    """The page + ``/api/config``, nothing else."""
    app = FastAPI()

    @app.get("/api/config")
    def config() -> dict[str, list[object]]:
        return {"iceServers": []}

    app.mount("/", StaticFiles(directory=dist, html=True), name="web")
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--fd", type=int, help="a listening TCP socket to serve on")
    parser.add_argument("--dist", type=Path, required=True)
    args = parser.parse_args()
    app = create_app(args.dist)
    if args.fd is None:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[socket.socket(fileno=args.fd)])


if __name__ == "__main__":
    main()
