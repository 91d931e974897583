"""Settings as the command line loads and shows them.

Every command loads settings through `settings_or_exit`: a bad setting (an unknown name, a value
of the wrong kind) is one clear line and exit code 2, never a traceback. Outside a project (a
folder with neither `fnhub.yaml` nor `scripts/`) a command that would keep files (embedded
Redis, SQLite, a generated secret key) refuses, rather than making `./.fnhub/` wherever it was
run, unless `FNHUB_DATA_DIR` says where files go or the configured services need none.

`fnhub settings` prints the effective settings, where each came from, secrets masked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, fitted_table, out, print_json, show
from fnhub.config import PROJECT_FILE, Settings, load_settings, setting_origins

err = Console(stderr=True)

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar="FNHUB_PROJECT_DIR",
        show_envvar=True,
        help="project folder (default: the current one)",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="where embedded Redis, SQLite and keys live (default: .fnhub in the project)",
    ),
]

MASK = "*****"
#: settings whose whole value is secret (besides URL passwords and secret-named fields)
SECRET_SETTINGS = frozenset({"secret_key", "websub_publisher_tokens"})
_SECRET_WORDS = ("password", "secret", "token", "key")
#: the flag that sets a setting, where it is not `--<name>`
FLAG_NAMES = {"project_dir": "--project"}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: <message>` (as plain text, never markup) and give the exit to raise."""
    err.print(Text("error: ", style="red") + Text(message), soft_wrap=True)
    return typer.Exit(code)


def settings_or_exit(project: Path | None, *, role: bool = False, **overrides: Any) -> Settings:
    """The project's settings with `overrides` (flags left unset are None); exit 2 with a clear
    message for a bad setting or, when files would land outside a project, for that."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        settings = load_settings(project, **given)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if not settings.in_project:
        _refuse_outside_project(settings, project, given, role)
    return settings


def _refuse_outside_project(
    settings: Settings, project: Path | None, given: dict[str, Any], role: bool
) -> None:
    """Refuse when this command would keep files in a data folder nobody chose."""
    if setting_origins(project, given)["data_dir"] != "default":
        return  # FNHUB_DATA_DIR / --data-dir: the files go where the user said
    needs = [name for name in ("redis_url", "db_url") if not getattr(settings, name)]
    if role and not settings.secret_key:
        needs.append("secret_key")
    if not needs:
        return  # remote Redis and database: nothing is written here
    folder = settings.project_dir.resolve()
    raise fail(
        f"no fnhub project here (no {PROJECT_FILE} in {folder}); run `fnhub init` or pass "
        f"--project (or set FNHUB_DATA_DIR, or {', '.join('FNHUB_' + n.upper() for n in needs)})"
    )


def settings_command(
    ctx: typer.Context, project: ProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """Show the effective settings and where each came from, secrets masked.

    Each value's source is `default`, `fnhub.yaml`, `env FNHUB_<NAME>` or `flag`. Works in
    any folder and writes nothing."""
    try:
        settings = load_settings(project)
        origins = setting_origins(project)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if getattr(ctx.get_parameter_source("project"), "name", "") == "ENVIRONMENT":
        origins["project_dir"] = "env FNHUB_PROJECT_DIR"
    values = settings.model_dump(mode="json")
    rows = {
        name: {"value": masked(name, values[name]), "source": _source(name, origins[name])}
        for name in Settings.model_fields
    }
    if as_json:
        print_json(rows)
        return
    console = out()
    columns = [Column("setting"), Column("value"), Column("source")]
    table = fitted_table(
        console,
        columns,
        [(name, _shown(row["value"]), row["source"]) for name, row in rows.items()],
    )
    show(console, table)
    if not settings.in_project:
        err.print(Text(f"(no {PROJECT_FILE} in {settings.project_dir.resolve()})", style="dim"))


def _source(name: str, origin: str) -> str:
    if origin == "flag":
        return f"flag {FLAG_NAMES.get(name, '--' + name.replace('_', '-'))}"
    return origin


def _shown(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value)


def masked(name: str, value: Any) -> Any:
    """`value` as it may be shown: secrets as `*****`, passwords in URLs too
    (`redis://:*****@host`)."""
    if name in SECRET_SETTINGS:
        if isinstance(value, dict):
            return {key: MASK for key in value}
        return MASK if value else value
    if isinstance(value, dict):
        return {
            key: MASK if _secret_name(str(key)) and item else masked(str(key), item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked(name, item) for item in value]
    if isinstance(value, str):
        return mask_url(value)
    return value


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_url(text: str) -> str:
    """A URL with its password (and secret-named query values) masked; other text as is."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or not parts.netloc:
        return text
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(key) for key, _ in pairs):
            query = urlencode([(k, MASK if _secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
