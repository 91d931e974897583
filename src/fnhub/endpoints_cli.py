"""`fnhub endpoints ...` (list, add, remove): the endpoints at `/e/<name>` from the command line.

Definitions are checked by the API's own model (`server/endpoint_store.py`) and written to the
database directly, so these commands work whether or not a server runs; running servers are
told through Redis when it is up (they reload within a second).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import redis
import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, fitted_table, out, print_json, show
from fnhub.cli_settings import ProjectOpt, fail, settings_or_exit
from fnhub.config import Settings

endpoints_app = typer.Typer(
    no_args_is_help=True, help="HTTP endpoints at /e/<name>: list, add, remove."
)
console = Console()
err = Console(stderr=True)


@endpoints_app.command("list")
def list_endpoints(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Show every endpoint: function, mode, auth, limits, and whether fnhub.yaml declares it."""
    from sqlalchemy import select

    from fnhub.server.endpoint_store import endpoint_out
    from fnhub.server.models import Endpoint
    from fnhub.store.db import Database

    db = Database(settings_or_exit(project).resolved_db_url())
    try:
        db.migrate()
        with db.session() as session:
            rows = [endpoint_out(r) for r in session.scalars(select(Endpoint).order_by("name"))]
    finally:
        db.dispose()
    if as_json:  # every endpoint, each as GET /api/v1/endpoints gives it (a page: `items`)
        print_json(rows)
        return
    table_rows = []
    for row in rows:
        throttle = ", ".join(f"{n}/{unit}" for unit, n in row["throttle"].items())
        state = Text("enabled", style="green") if row["enabled"] else Text("disabled", style="dim")
        if row["expires_at"] is not None:
            state.append(f", expires {_time(row['expires_at'])}")
        table_rows.append(
            (
                row["url"],
                row["function"],
                row["mode"],
                row["auth"].get("type", "none"),
                throttle,
                state,
                "fnhub.yaml" if row["provisioned"] else "API/CLI",
            )
        )
    screen = out()
    columns = [
        Column("endpoint"), Column("function"), Column("mode"), Column("auth", 2),
        Column("throttle", 1), Column("state"), Column("declared in", 3),
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, table_rows))


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _json_option(text: str | None, option: str) -> Any:
    from fnhub import env_refs

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{option} is not valid JSON: {exc}", 2) from exc
    try:
        return env_refs.expand(value, option)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc


def _throttle(text: str | None) -> dict[str, Any] | None:
    """`minute=60,second=5` → {"minute": 60, "second": 5} (the model checks names and values)."""
    if text is None:
        return None
    limits: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        unit, sep, count = part.partition("=")
        if not sep:
            raise fail(f"--throttle: expected unit=count (e.g. minute=60), got {part!r}", 2)
        limits[unit.strip()] = int(count) if count.strip().isdigit() else count.strip()
    return limits


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise fail(f"--expires-at: expected epoch seconds or an ISO time, got {text!r}", 2) from exc


def _active_scripts(client: redis.Redis, settings: Settings) -> Any:
    from fnhub.calling.queue_client import QueueClient

    return QueueClient(settings, client).active()


def _tell_servers(client: redis.Redis, settings: Settings) -> None:
    from fnhub.keys import Keys
    from fnhub.revisions import bump

    try:
        bump(client, Keys(settings.key_prefix).endpoints_revision)
    except (redis.RedisError, OSError):
        err.print("[dim]no server is reachable: servers load endpoints as they start[/dim]")


@endpoints_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the endpoint's name: it answers at /e/<name>")],
    function: Annotated[str, typer.Argument(help="script.function")],
    project: ProjectOpt = None,
    mode: Annotated[str, typer.Option(help="sync (answer with the result) | async (202)")] = "sync",
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    kwargs: Annotated[
        str | None,
        typer.Option(help='fixed kwargs as a JSON object; "$caller" = filled by the caller'),
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            help='auth as JSON, e.g. \'{"type": "token", "token": "${MY_TOKEN}"}\' '
            "(${NAME} is read from the environment)"
        ),
    ] = None,
    throttle: Annotated[
        str | None, typer.Option(help="most requests per window, e.g. minute=60,second=5")
    ] = None,
    cache_result: Annotated[float | None, typer.Option(help="seconds to cache results")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds the function may run")] = None,
    show_traceback: Annotated[
        bool, typer.Option("--show-traceback", help="failed calls answer with the traceback")
    ] = False,
    show_logs: Annotated[
        bool, typer.Option("--show-logs", help="async pollers see the function's output")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="create it switched off")] = False,
    expires_at: Annotated[
        str | None, typer.Option(help="answer 410 from then on (epoch seconds or ISO time)")
    ] = None,
    record_limit: Annotated[int | None, typer.Option(help="task records kept")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="overwrite an existing one")] = False,
) -> None:
    """Publish a function at /e/<name> (checked like the API's PUT /api/v1/endpoints/<name>)."""
    from fnhub import audit
    from fnhub.redis_client import sync_redis
    from fnhub.secret_box import SecretBox, resolve_secret_key
    from fnhub.server.endpoint_store import (
        EndpointSpecError,
        check_functions,
        parse_endpoint,
        save_endpoint,
    )
    from fnhub.server.models import Endpoint
    from fnhub.store.db import Database

    given: dict[str, Any] = {
        "function": function,
        "mode": mode,
        "description": description,
        "kwargs": _json_option(kwargs, "--kwargs"),
        "auth": _json_option(auth, "--auth"),
        "throttle": _throttle(throttle),
        "cache_result": cache_result,
        "timeout": timeout,
        "show_traceback": show_traceback,
        "show_logs": show_logs,
        "enabled": not disabled,
        "expires_at": _epoch(expires_at),
        "record_limit": record_limit,
    }
    data = {k: v for k, v in given.items() if v is not None}
    settings = settings_or_exit(project)
    try:
        spec = parse_endpoint(name, data)
    except EndpointSpecError as exc:
        raise fail(str(exc), 2) from exc
    client = sync_redis(settings, socket_connect_timeout=3)
    db = Database(settings.resolved_db_url())
    try:
        try:
            check_functions(name, spec, _active_scripts(client, settings))
        except EndpointSpecError as exc:
            raise fail(str(exc), 2) from exc
        except (redis.RedisError, OSError):
            err.print("[dim]functions not checked: no server is reachable[/dim]")
        db.migrate()
        box = SecretBox(resolve_secret_key(settings))
        with db.session() as session, session.begin():
            existing = session.get(Endpoint, name)
            if existing is not None and not replace:
                raise fail(f"endpoint '{name}' exists; add --replace to overwrite it", 1)
            declared = existing is not None and existing.provisioned
            _row, change = save_endpoint(session, box, name, spec, actor=audit.CLI)
        _tell_servers(client, settings)
    finally:
        client.close()
        db.dispose()
    console.print(f"endpoint [bold]/e/{name}[/bold] {change}: {spec.function} ({spec.mode})")
    if declared:
        _declared_warning(name)


def _declared_warning(name: str) -> None:
    err.print(
        f"[yellow]note:[/yellow] endpoint '{name}' is declared in fnhub.yaml: the next "
        "`fnhub apply` (or `fnhub serve` start) puts it back as declared",
        soft_wrap=True,
    )


@endpoints_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="endpoint name")],
    project: ProjectOpt = None,
) -> None:
    """Delete an endpoint (it answers 404 from then on)."""
    from fnhub import audit
    from fnhub.redis_client import sync_redis
    from fnhub.secret_box import SecretBox, resolve_secret_key
    from fnhub.server.endpoint_store import delete_endpoint
    from fnhub.server.models import Endpoint
    from fnhub.store.db import Database

    settings = settings_or_exit(project)
    db = Database(settings.resolved_db_url())
    try:
        db.migrate()
        box = SecretBox(resolve_secret_key(settings))
        with db.session() as session, session.begin():
            row = session.get(Endpoint, name)
            declared = row is not None and row.provisioned
            if not delete_endpoint(session, box, name, actor=audit.CLI):
                raise fail(f"no endpoint '{name}'", 1)
    finally:
        db.dispose()
    client = sync_redis(settings, socket_connect_timeout=3)
    try:
        _tell_servers(client, settings)
    finally:
        client.close()
    console.print(f"removed endpoint [bold]/e/{name}[/bold]")
    if declared:
        _declared_warning(name)
