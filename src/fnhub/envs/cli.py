"""`fnhub env ...` (list, get, set, delete): env variables from the command line.

Written to the database directly through `envs.repo` (checked, sealed, audited as `cli`), so
they work whether or not a server runs; running workers are told through Redis when it is up.
A password is never printed: `*****`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, fitted_table, out, print_json, show
from fnhub.cli_settings import ProjectOpt, fail, settings_or_exit
from fnhub.config import Settings

env_app = typer.Typer(
    no_args_is_help=True, help="Env variables scripts read with fnhub.env: list, get, set, delete."
)
console = Console()
err = Console(stderr=True)


def _database(settings: Settings) -> Any:
    from fnhub.store.db import Database

    db = Database(settings.resolved_db_url())
    db.migrate()
    return db


def _tell_workers(settings: Settings) -> None:
    import redis

    from fnhub.keys import Keys
    from fnhub.redis_client import sync_redis
    from fnhub.revisions import bump

    client = sync_redis(settings, socket_connect_timeout=3)
    try:
        bump(client, Keys(settings.key_prefix).envs_revision)
    except (redis.RedisError, OSError):
        err.print("[dim]Redis is not reachable: workers read env variables as they start[/dim]")
    finally:
        client.close()


def _rows(project: Path | None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from fnhub.envs.models import EnvVar
    from fnhub.envs.repo import env_out

    db = _database(settings_or_exit(project))
    try:
        with db.session() as session:
            return [env_out(r) for r in session.scalars(select(EnvVar).order_by(EnvVar.name))]
    finally:
        db.dispose()


@env_app.command("list")
def list_envs(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Show every env variable: type, value (a password as *****), where it is declared."""
    rows = _rows(project)
    if as_json:  # every variable, each as GET /api/v1/envs gives it (a page: `items`)
        print_json(rows)
        return
    table_rows = [
        (
            r["name"],
            r["type"],
            Text(r["value"]),
            r["description"],
            "fnhub.yaml" if r["provisioned"] else "API/CLI",
        )
        for r in rows
    ]
    screen = out()
    columns = [
        Column("name"), Column("type"), Column("value", 1), Column("description", 3),
        Column("declared in", 2),
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, table_rows))


@env_app.command("get")
def get_env(
    name: Annotated[str, typer.Argument(help="env variable name")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one env variable's value as stored (a password as *****)."""
    found = [r for r in _rows(project) if r["name"] == name]
    if not found:
        raise fail(f"no env variable '{name}'", 1)
    if as_json:
        print_json(found[0])
        return
    sys.stdout.write(found[0]["value"] + "\n")


@env_app.command("set")
def set_env(
    name: Annotated[str, typer.Argument(help="env variable name")],
    value: Annotated[
        str | None, typer.Argument(help="the value (leave out with --stdin)", show_default=False)
    ] = None,
    type_: Annotated[
        str,
        typer.Option(
            "--type", help="string, password, integer, float, boolean, json, list (a,b,c)"
        ),
    ] = "string",
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    stdin: Annotated[
        bool, typer.Option("--stdin", help="read the value from stdin (keeps it out of history)")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace an env variable (checked like PUT /api/v1/envs/<name>)."""
    from fnhub import audit
    from fnhub.envs.repo import env_out, save_env, spec_of
    from fnhub.envs.values import InvalidEnv, check_name
    from fnhub.secret_box import SecretBox, resolve_secret_key

    if stdin == (value is not None):
        raise fail("give the value as an argument or with --stdin (one of them)", 2)
    text = sys.stdin.read().rstrip("\n") if value is None else value
    try:
        check_name(name)
        spec = spec_of(type_, text, description)
    except InvalidEnv as exc:
        raise fail(str(exc), 2) from exc
    settings = settings_or_exit(project)
    db = _database(settings)
    try:
        box = SecretBox(resolve_secret_key(settings))
        with db.session() as session, session.begin():
            try:
                row, change = save_env(session, box, name, spec, actor=audit.CLI)
            except InvalidEnv as exc:
                raise fail(str(exc), 2) from exc
            shown = env_out(row)
    finally:
        db.dispose()
    _tell_workers(settings)
    if as_json:
        print_json(shown)
        return
    console.print(f"env [bold]{name}[/bold] ({shown['type']}) {change}")
    if shown["provisioned"]:
        err.print(
            f"[yellow]note:[/yellow] env '{name}' is declared in fnhub.yaml: the next "
            "`fnhub apply` (or `fnhub serve` start) puts it back as declared",
            soft_wrap=True,
        )


@env_app.command("delete")
def delete_env(
    name: Annotated[str, typer.Argument(help="env variable name")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete an env variable (scripts reading it get UnknownEnv, or their default)."""
    from fnhub import audit
    from fnhub.envs.repo import delete_env as remove

    settings = settings_or_exit(project)
    db = _database(settings)
    try:
        with db.session() as session, session.begin():
            if not remove(session, name, actor=audit.CLI):
                raise fail(f"no env variable '{name}'", 1)
    finally:
        db.dispose()
    _tell_workers(settings)
    if as_json:  # as DELETE /api/v1/envs/<name> answers
        print_json({"deleted": True})
        return
    console.print(f"deleted env [bold]{name}[/bold]")
