"""The ``collab`` command line (typer).

Each sub-command lives in its own function; long-running ones start uvicorn or an asyncio loop.

Example:
    $ collab serve --port 8000 --data ./data
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from collabd.options import settings_command
from collabd.settings import (
    CommandSettings,
    ReplicaSettings,
    ServeSettings,
    SignalingCommandSettings,
)

app = typer.Typer(
    name="collab",
    help="Server side for Yjs over WebRTC: signaling, archival replica, web page.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # expected failures are one line; --debug shows tracebacks
)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="COLLAB_DEBUG", help="Show tracebacks of failures (COLLAB_DEBUG=1)."
        ),
    ] = False,
) -> None:
    """collab: y-webrtc signaling + archival replica + co-editing page."""
    from collabd.extras import require_extras

    require_extras(ctx.invoked_subcommand)  # a missing extra: one line and exit 1, no traceback
    ctx.obj = {"debug": debug}


def _guarded(ctx: typer.Context, run: Callable[[], None]) -> None:
    """Run a long-running command: an expected failure is one line on stderr and its exit
    code (2 usage, 1 runtime); anything else is one line too, its traceback with --debug."""
    from pydantic import ValidationError

    from collabd.options import invalid_setting
    from collabd.startup import StartupError

    debug = bool(ctx.obj and ctx.obj.get("debug")) or os.environ.get("COLLAB_DEBUG", "") in (
        "1",
        "true",
        "yes",
    )
    try:
        run()
    except StartupError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(exc.line(), err=True)
        raise typer.Exit(exc.exit_code) from None
    except ValidationError as exc:
        error = invalid_setting(exc)  # e.g. SignalingSettings (env only)
        typer.echo(error.line(), err=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - reported (traceback with --debug), exit 1
        if debug:
            traceback.print_exc()
        name = type(exc).__name__
        typer.echo(
            f"error: unexpected failure: {name}: {exc} — run with --debug for the traceback",
            err=True,
        )
        sys.stderr.flush()
        raise typer.Exit(1) from None


def _configure_logging(settings: CommandSettings) -> None:
    """The one place logging is set up, the same way for every long-running command."""
    from signaling.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def _command(
    name: str, model: type[Any]
) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    return settings_command(app, name, model, guard=_guarded, prepare=_configure_logging)


@_command("signaling", SignalingCommandSettings)
def signaling_cmd(settings: SignalingCommandSettings) -> None:
    """Run the y-webrtc signaling server alone (ws://HOST:PORT/ and /signaling)."""
    from collabd.startup import USAGE, StartupError, bind_listener
    from signaling.server import run_signaling

    if settings.config is not None and not settings.config.is_file():
        raise StartupError(f"--config {settings.config} is not a file", "", USAGE)
    sock = bind_listener(settings.host, settings.port)
    run_signaling(
        host=settings.host,
        port=settings.port,
        redis_url=settings.redis_url,
        config=settings.config,
        log_level=settings.log_level,
        sock=sock,
    )


@app.command("token")
def token_cmd(
    room: Annotated[list[str], typer.Option("--room", help="Room granted (repeat; '*' = any).")],
    secret: Annotated[str, typer.Option(envvar="COLLAB_TOKEN_SECRET", help="HMAC secret.")],
    read_only: Annotated[bool, typer.Option("--read-only", help="Mint a read-only token.")] = False,
    ttl: Annotated[float, typer.Option(help="Lifetime in seconds.")] = 3600.0,
    subject: Annotated[str | None, typer.Option(help="Optional 'sub' claim (user id).")] = None,
) -> None:
    """Mint a signed, expiring, room-scoped signaling token (append as ?token=...)."""
    from signaling.auth import mint_token

    token = mint_token(
        secret, room, access="ro" if read_only else "rw", ttl_seconds=ttl, subject=subject
    )
    typer.echo(token)


@_command("serve", ServeSettings)
def serve_cmd(settings: ServeSettings) -> None:
    """Start everything on one port: signaling + web page + archival replica + HTTP API."""
    from collabd.server import run_serve

    run_serve(settings)


@_command("replica", ReplicaSettings)
def replica_cmd(settings: ReplicaSettings) -> None:
    """Archive rooms on any y-webrtc signaling server (ours or y-webrtc's bin/server.js)."""
    import anyio

    from collabd.replica_main import run_replica

    anyio.run(run_replica, settings)


StoreOpt = Annotated[
    str, typer.Option(envvar="COLLAB_STORE", help="sqlite:///path.db or postgresql://…")
]
AtOpt = Annotated[str | None, typer.Option(help="Version id or ISO 8601 time (default: now).")]
NameOpt = Annotated[str, typer.Option("--name", help="Name of the shared text.")]
RootOpt = Annotated[
    str | None, typer.Option("--root", help="Root type to use (default: the room's main root).")
]


def _run_archive(coro: Any) -> Any:
    import anyio

    from collab.errors import CollabError

    try:
        return anyio.run(lambda: coro)
    except (CollabError, ValueError) as exc:  # ValueError: e.g. --at is not an id or ISO time
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("export")
def export_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    store: StoreOpt,
    format: Annotated[
        str | None,
        typer.Option(help="text, markdown, html, delta, json or yjs (default: by root kind)."),
    ] = None,
    at: AtOpt = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout).")
    ] = None,
    name: NameOpt = "codemirror",
    root: RootOpt = None,
) -> None:
    """Export a room's root (now or at a version): XML fragments (TipTap, ProseMirror) as HTML,
    Markdown, text or JSON; texts as text, Markdown or a Quill delta; maps/arrays as JSON; or
    the whole document as a Yjs V1 update."""
    from collabd.archive import EXPORT_FORMATS, export_room, write_output

    if format is not None and format not in EXPORT_FORMATS:
        raise typer.BadParameter(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    fmt = format or ("text" if root is None else None)
    data = _run_archive(export_room(store, room, fmt, at, name, root=root))  # type: ignore[arg-type]
    write_output(data, output)


@app.command("import")
def import_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    file: Annotated[Path, typer.Argument(help="A UTF-8 text file or a Yjs V1 update.")],
    store: StoreOpt,
    format: Annotated[str, typer.Option(help="text or yjs.")] = "text",
    name: NameOpt = "codemirror",
) -> None:
    """Import text (replaces the shared text, as a new change) or a Yjs update into a room."""
    from collabd.archive import import_room

    if format not in ("text", "yjs"):
        raise typer.BadParameter("format must be text or yjs")
    count = _run_archive(import_room(store, room, file.read_bytes(), format, name))  # type: ignore[arg-type]
    typer.echo(f"imported into {room!r}: {count} update(s) appended")


@app.command("versions")
def versions_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    store: StoreOpt,
) -> None:
    """List a room's recorded versions."""
    from rich.console import Console

    from collabd.archive import list_versions

    Console().print(_run_archive(list_versions(store, room)))


@app.command("diff")
def diff_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    store: StoreOpt,
    from_: Annotated[str, typer.Option("--from", help="Version id or ISO time.")],
    to: AtOpt = None,
    name: NameOpt = "codemirror",
    root: RootOpt = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print a structural summary line first.")
    ] = False,
) -> None:
    """Unified diff between two versions (or a version and now): of the shared text, or with
    --root/--summary of any root (Markdown for XML, pretty JSON for maps/arrays)."""
    from collabd.archive import diff_room, diff_room_root

    if root is None and not summary:
        typer.echo(_run_archive(diff_room(store, room, from_, to, name)), nl=False)
        return
    found = _run_archive(diff_room_root(store, room, from_, to, root, name))
    if summary:
        typer.echo(f"# {found.root} ({found.kind}): {found.line}")
    typer.echo(found.diff, nl=False)


@app.command("restore")
def restore_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    store: StoreOpt,
    at: Annotated[str, typer.Option(help="Version id or ISO time to restore.")],
    name: NameOpt = "codemirror",
) -> None:
    """Restore a version as a new change (offline; live rooms: POST /api/rooms/{room}/restore)."""
    from collabd.archive import restore_room

    count = _run_archive(restore_room(store, room, at, name))
    typer.echo(f"restored {room!r} to {at}: {count} update(s) appended")


@app.command("blame")
def blame_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    store: StoreOpt,
    at: AtOpt = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Show the attributed diff from this version instead."),
    ] = None,
    name: NameOpt = "codemirror",
) -> None:
    """Who wrote each line of the shared text (now or --at a version), from the stored log;
    with --from, the diff between two versions naming who wrote and deleted each line."""
    from collabd.blame import blame_text

    typer.echo(_run_archive(blame_text(store, room, at, name, from_)), nl=False)


@app.command("fork")
def fork_cmd(
    room: Annotated[str, typer.Argument(help="Room name.")],
    store: StoreOpt,
    at: Annotated[str, typer.Option(help="Version id or ISO time to start from.")],
    to: Annotated[str, typer.Option(help="The new room's name (must not exist).")],
) -> None:
    """Create a new room whose history starts at a version of ROOM (offline; live servers:
    POST /api/rooms/{room}/fork)."""
    from collabd.blame import fork_text

    version = _run_archive(fork_text(store, room, at, to))
    typer.echo(f"forked {room!r} at {at} into {to!r} (version {version.id}: {version.label})")


if __name__ == "__main__":
    app()
