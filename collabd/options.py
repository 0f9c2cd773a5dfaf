"""Command-line options generated from a settings model: one declaration per option.

Each field of a pydantic-settings model (env prefix ``COLLAB_``) becomes a typer option named
after it (``idle_unload_after`` → ``--idle-unload-after``), with the field's description as
help, its default shown, and its environment variable (``COLLAB_IDLE_UNLOAD_AFTER``) named in
the help. Options left off the command line are not passed to the model, so the model reads
the environment for them and applies its own defaults and validation: the command line, the
environment and the defaults can never disagree.

Field types map to options like this:

- ``str``, ``int``, ``float``, ``Path`` (optionally ``| None``): one value;
- ``bool``: ``--flag/--no-flag``;
- ``list[str]``: a repeated option (``cli_name`` in ``json_schema_extra`` picks a singular
  name, e.g. ``--room``); the env var holds a JSON list;
- ``dict[str, str]``: a repeated ``KEY:VALUE`` option; the env var holds a JSON object.

Example:
    >>> from pydantic_settings import BaseSettings, SettingsConfigDict
    >>> class Demo(BaseSettings):
    ...     model_config = SettingsConfigDict(env_prefix="COLLAB_")
    ...     port: int = 8000
    ...     "TCP port."
    >>> [spec.flag for spec in option_specs(Demo)], option_specs(Demo)[0].env
    (['--port'], 'COLLAB_PORT')
    >>> settings_from_params(Demo, {"port": None}).port
    8000
    >>> settings_from_params(Demo, {"port": 1}).port
    1
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from collabd.startup import USAGE, StartupError

__all__ = [
    "OptionSpec",
    "invalid_setting",
    "option_specs",
    "settings_command",
    "settings_from_params",
]

S = TypeVar("S", bound=BaseSettings)

_SCALARS = (str, int, float, Path, bool)
_METAVARS: dict[Any, str] = {
    "mapping": "KEY:VALUE",
    "list": "TEXT",
    "flag": "",
    int: "INTEGER",
    float: "FLOAT",
    Path: "PATH",
}


@dataclass(frozen=True)
class OptionSpec:
    """How one settings field appears on the command line."""

    name: str
    "Field name (and the callback parameter name)."
    flag: str
    "Command-line flag, e.g. ``--idle-unload-after``."
    env: str
    "Environment variable, e.g. ``COLLAB_IDLE_UNLOAD_AFTER``."
    kind: str
    "``scalar``, ``flag``, ``list`` or ``mapping``."
    cli_type: Any
    "The type typer parses (``str`` for list items and ``KEY:VALUE`` pairs)."
    help: str
    "Help text including the env var."
    default_text: str
    "Default shown in ``--help``."


def _description(field: FieldInfo) -> str:
    return " ".join((field.description or "").split())


def _plain(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(annotation, False)``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if default is None or default == [] or default == {}:
        return ""
    if hasattr(default, "get_secret_value"):
        return "(secret)"
    return str(default)


def option_specs(model: type[BaseSettings]) -> list[OptionSpec]:
    """The command-line form of every field of ``model`` (see the module docstring).

    Raises:
        TypeError: a field type has no command-line form.
    """
    prefix = str(model.model_config.get("env_prefix", ""))
    specs = []
    for name, field in _own_fields_first(model):
        base, _ = _plain(field.annotation)
        origin = typing.get_origin(base)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flag = str(extra.get("cli_name", "--" + name.replace("_", "-")))
        env = f"{prefix}{name}".upper()
        cli_type: Any
        if base is bool:
            kind, cli_type = "flag", bool
        elif base in _SCALARS or (inspect.isclass(base) and issubclass(base, str)):
            kind, cli_type = "scalar", base
        elif base is SecretStr:  # typed as text; the model keeps it out of reprs and dumps
            kind, cli_type = "scalar", str
        elif origin is list:
            kind, cli_type = "list", str
        elif origin is dict:
            kind, cli_type = "mapping", str
        elif typing.get_origin(base) is typing.Literal:
            kind, cli_type = "scalar", str
        else:
            raise TypeError(f"setting {name}: no command-line form for {field.annotation!r}")
        text = _description(field).replace("``", "")
        if kind in ("list", "mapping"):
            text += " Repeat for more."
        default = _default_text(field)
        facts = [f"default: {default}"] if default else []
        facts.append(f"env: {env}" + (" as JSON" if kind in ("list", "mapping") else ""))
        help_text = f"{text} ({'; '.join(facts)})"
        specs.append(OptionSpec(name, flag, env, kind, cli_type, help_text, default))
    return specs


def _own_fields_first(model: type[BaseSettings]) -> list[tuple[str, FieldInfo]]:
    """Fields in ``--help`` order: the command's own first, then those of its base models."""
    order: list[str] = []
    for cls in model.__mro__:
        order += [n for n in vars(cls).get("__annotations__", {}) if n in model.model_fields]
    seen = dict.fromkeys(order)
    return [(name, model.model_fields[name]) for name in seen]


def _parameter(spec: OptionSpec) -> inspect.Parameter:
    decls = [f"{spec.flag}/--no-{spec.flag[2:]}"] if spec.kind == "flag" else [spec.flag]
    option = typer.Option(
        *decls,
        help=spec.help,
        show_default=False,  # in the help text, with the env var
        metavar=_METAVARS.get(spec.kind) or _METAVARS.get(spec.cli_type, "TEXT"),
    )
    cli_type = list[str] if spec.kind in ("list", "mapping") else spec.cli_type
    annotation = Annotated[cli_type | None, option]  # type: ignore[valid-type]
    return inspect.Parameter(
        spec.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


def settings_from_params(model: type[S], params: Mapping[str, Any]) -> S:
    """Build ``model`` from parsed command-line values: options not given (``None``) are left
    to the environment and the model's defaults.

    Raises:
        pydantic.ValidationError: a value (from the command line or the environment) is invalid.
        StartupError: a ``KEY:VALUE`` option without a colon (a usage error).
    """
    given: dict[str, Any] = {}
    for spec in option_specs(model):
        value = params.get(spec.name)
        if value is None or (spec.kind in ("list", "mapping") and not value):
            continue
        if spec.kind == "mapping":
            pairs = {}
            for item in value:
                key, sep, val = str(item).partition(":")
                if not sep or not key:
                    raise StartupError(f"{spec.flag} wants KEY:VALUE", "", USAGE)
                pairs[key] = val
            value = pairs
        given[spec.name] = value
    return model(**given)


def invalid_setting(exc: ValidationError, model: type[BaseSettings] | None = None) -> StartupError:
    """One operator line for an invalid setting: its flag (when ``model`` is a command's) and
    its env var, and what is wrong; never the value itself (it may be a secret).

    Example:
        >>> from pydantic_settings import BaseSettings, SettingsConfigDict
        >>> class Demo(BaseSettings):
        ...     model_config = SettingsConfigDict(env_prefix="COLLAB_")
        ...     port: int = 8000
        >>> try:
        ...     Demo(port="x")
        ... except ValidationError as exc:
        ...     print(invalid_setting(exc, Demo).line()[:49])
        error: invalid --port / COLLAB_PORT: Input should
    """
    first = exc.errors()[0]
    loc = first.get("loc", ())
    field = str(loc[0]) if loc else "setting"
    specs = {spec.name: spec for spec in option_specs(model)} if model is not None else {}
    spec = specs.get(field)
    env = spec.env if spec else f"COLLAB_{field.upper()}"
    where = f"{spec.flag} / {env}" if spec else env
    if first.get("type") == "missing":
        return StartupError(f"missing {where}", "see --help", USAGE)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return StartupError(f"invalid {where}: {message}", "", USAGE)


def settings_command(
    app: typer.Typer,
    name: str,
    model: type[S],
    *,
    guard: Callable[[typer.Context, Callable[[], None]], None],
    prepare: Callable[[S], None],
) -> Callable[[Callable[[S], None]], Callable[[S], None]]:
    """Register ``run(settings)`` as the ``name`` command, its options generated from
    ``model``'s fields; the command's help is ``run``'s docstring. ``guard(ctx, body)`` runs
    the body: build the settings (an invalid one is a :class:`StartupError`), ``prepare``
    them (e.g. configure logging), then ``run``.

    Example:
        >>> # @settings_command(app, "serve", ServeSettings, guard=_guarded, prepare=_logging)
        >>> # def serve_cmd(settings: ServeSettings) -> None: ...
    """

    def register(run: Callable[[S], None]) -> Callable[[S], None]:
        def body(params: dict[str, Any]) -> None:
            try:
                settings = settings_from_params(model, params)
            except ValidationError as exc:
                raise invalid_setting(exc, model) from exc
            prepare(settings)
            run(settings)

        def callback(ctx: typer.Context, **params: Any) -> None:
            guard(ctx, lambda: body(params))

        parameters = [
            inspect.Parameter(
                "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
            )
        ] + [_parameter(spec) for spec in option_specs(model)]
        callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        callback.__annotations__ = {p.name: p.annotation for p in parameters}
        callback.__doc__ = run.__doc__
        callback.__name__ = run.__name__
        app.command(name)(callback)
        return run

    return register
