"""`fnhub users ...`: console users from the server's machine (audited with the actor `cli`).

Works on the database directly, like `fnhub keys`, so it needs no running server: it is how an
admin who lost their password gets back in (`fnhub users passwd NAME`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, fitted_table, out, print_json, show
from fnhub.cli_settings import ProjectOpt, settings_or_exit
from fnhub.store.db import Database

users_app = typer.Typer(no_args_is_help=True, help="Console users: create, list, passwd, remove.")
console = Console()
err = Console(stderr=True)

RoleOpt = Annotated[str, typer.Option("--role", help="viewer, developer or admin")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
]


@contextmanager
def _db(project: Path | None) -> Iterator[Database]:
    settings = settings_or_exit(project)
    db = Database(settings.resolved_db_url())
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


def _fail(exc: Exception) -> typer.Exit:
    err.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
    return typer.Exit(2 if getattr(exc, "kind", "") == "invalid" else 1)


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="username")],
    role: RoleOpt = "viewer",
    password_stdin: StdinOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Create a user (the password is prompted for, or read with --password-stdin)."""
    from fnhub import audit
    from fnhub.accounts.users import UserError, create_user

    password = _password(password_stdin)
    with _db(project) as db:
        try:
            create_user(db, name, password, role, actor=audit.CLI)
        except UserError as exc:
            raise _fail(exc) from exc
    console.print(f"created user [bold]{name}[/bold] ({role})")


@users_app.command("list")
def list_(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List users with their role and state."""
    from fnhub.accounts.users import list_users, user_json

    with _db(project) as db:
        rows = [user_json(r) for r in list_users(db)]
    if as_json:
        print_json(rows)
        return
    screen = out()
    columns = [Column("username"), Column("role"), Column("state")]
    columns += [Column("created", 2), Column("changed", 1)]
    table_rows = [
        (
            u["username"],
            u["role"],
            Text("disabled", style="red") if u["disabled"] else Text("enabled"),
            _time(u["created_at"]),
            _time(u["updated_at"]),
        )
        for u in rows
    ]
    show(screen, fitted_table(screen, columns, table_rows))


@users_app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="username")],
    password_stdin: StdinOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Set a user's password; their sessions end."""
    from fnhub import audit
    from fnhub.accounts.users import UserError, update_user

    password = _password(password_stdin)
    with _db(project) as db:
        try:
            update_user(db, name, password=password, actor=audit.CLI)
        except UserError as exc:
            raise _fail(exc) from exc
    console.print(f"password of [bold]{name}[/bold] changed; their sessions ended")


@users_app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="username")],
    role: Annotated[str | None, typer.Option("--role", help="viewer, developer or admin")] = None,
    disabled: Annotated[
        bool | None, typer.Option("--disabled/--enabled", help="refuse or allow sign-in")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Change a user's role, or disable / enable them (a disable ends their sessions)."""
    from fnhub import audit
    from fnhub.accounts.users import UserError, update_user

    with _db(project) as db:
        try:
            row = update_user(db, name, role=role, disabled=disabled, actor=audit.CLI)
        except UserError as exc:
            raise _fail(exc) from exc
    state = "disabled" if row.disabled else "enabled"
    console.print(f"user [bold]{name}[/bold]: {row.role}, {state}")


@users_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="username")], project: ProjectOpt = None
) -> None:
    """Remove a user and end their sessions (the last enabled admin stays)."""
    from fnhub import audit
    from fnhub.accounts.users import UserError, remove_user

    with _db(project) as db:
        try:
            remove_user(db, name, actor=audit.CLI)
        except UserError as exc:
            raise _fail(exc) from exc
    console.print(f"removed user [bold]{name}[/bold]")


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"
