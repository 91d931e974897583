"""The `fnhub` command line."""

from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fnhub.config import Settings, load_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
console = Console()
err = Console(stderr=True)

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="project folder")]


def _settings(project: Path, **overrides: Any) -> Settings:
    try:
        return load_settings(project, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


HELLO_SCRIPT = '''"""An example script: every function decorated with @fnhub.api can be called."""

import fnhub


@fnhub.api("Say hello", timeout=10)
def greet(name: str = "world") -> dict:
    """Greet someone and count how often we did."""
    count = fnhub.cache.incr("greetings")
    print(f"greeting {name} (greeting number {count})")
    return {"message": f"hello, {name}!", "count": count}


@fnhub.api("Add two numbers")
def add(a: float, b: float) -> float:
    return a + b
'''

PROJECT_FILE = """# fnhub project: scripts/ are published on `fnhub serve` and `fnhub apply`.
settings:
  processes: 2
"""


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="where to create the project")] = Path("."),
) -> None:
    """Create a project folder with an example script."""
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    created = []
    for path, text in (
        (folder / "fnhub.yaml", PROJECT_FILE),
        (folder / "scripts" / "hello.py", HELLO_SCRIPT),
        (folder / ".gitignore", ".fnhub/\n"),
    ):
        if not path.exists():
            path.write_text(text)
            created.append(str(path))
    for path in created:
        console.print(f"created [bold]{path}[/bold]")
    settings = _settings(folder)
    _first_api_key(settings)
    _first_admin(settings)
    console.print(f"next: [bold]cd {folder} && fnhub serve[/bold]")


def _first_api_key(settings: Settings) -> None:
    """Create the project's first admin API key (only if it has none) and show it once."""
    from fnhub import audit
    from fnhub.private_file import write_private
    from fnhub.server.auth import create_key, list_keys
    from fnhub.store.db import Database

    db = Database(settings.resolved_db_url())
    try:
        db.migrate()
        if list_keys(db):
            return
        _row, token = create_key(db, "init", actor=audit.CLI)
    finally:
        db.dispose()
    key_file = settings.data_dir / "api_key"
    write_private(key_file, token + "\n")
    console.print(f"admin API key (shown once; also in {key_file}): [bold]{token}[/bold]")


def _first_admin(settings: Settings) -> None:
    """Create the console's first user, `admin`, with a random password (only if there is no
    user yet): shown once and kept in `<data_dir>/admin_password` (0600)."""
    from fnhub import audit
    from fnhub.accounts.passwords import random_password
    from fnhub.accounts.roles import Role
    from fnhub.accounts.users import create_user, has_users
    from fnhub.private_file import write_private
    from fnhub.store.db import Database

    db = Database(settings.resolved_db_url())
    try:
        db.migrate()
        if has_users(db):
            return
        password = random_password()
        password_file = settings.data_dir / "admin_password"
        password_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(password_file, password + "\n")
        create_user(db, "admin", password, Role.ADMIN, actor=audit.CLI)
    finally:
        db.dispose()
    console.print(
        f"console: [bold]http://127.0.0.1:{settings.port}/[/bold] (once `fnhub serve` runs); "
        f"sign in as [bold]admin[/bold] with the password [bold]{password}[/bold] "
        f"(shown once; also in {password_file})"
    )


@app.command()
def apply(project: ProjectOpt = Path(".")) -> None:
    """Publish the project's scripts and apply fnhub.yaml."""
    from fnhub.bootstrap import open_services
    from fnhub.project import apply_project
    from fnhub.scripts.inspect import ScriptError

    settings = _settings(project)
    services = open_services(settings)
    try:
        with console.status("publishing scripts..."):
            published = apply_project(settings, services.scripts)
    except (ScriptError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        services.close()
    for p in published:
        state = "[green]published[/green]" if p.changed else "unchanged"
        names = ", ".join(f.name for f in p.functions)
        console.print(f"{p.script} v{p.version} {state}: {names}")


def _run_worker(settings_json: str, queues: list[str] | None, processes: int | None) -> None:
    from fnhub.worker.supervisor import Supervisor

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    Supervisor(Settings.model_validate_json(settings_json), queues, processes).run()


@app.command()
def worker(
    project: ProjectOpt = Path("."),
    queues: Annotated[str | None, typer.Option(help="comma-separated queue names")] = None,
    processes: Annotated[int | None, typer.Option(help="child processes")] = None,
    verbose: bool = False,
) -> None:
    """Run a worker: a supervisor and N child processes consuming the given queues."""
    _logging(verbose)
    settings = _settings(project)
    from fnhub.worker.supervisor import Supervisor

    queue_list = [q.strip() for q in queues.split(",")] if queues else None
    Supervisor(settings, queue_list, processes).run()


@app.command()
def serve(
    project: ProjectOpt = Path("."),
    processes: Annotated[int | None, typer.Option(help="worker child processes")] = None,
    verbose: bool = False,
) -> None:
    """Run everything on one machine: embedded Redis (if none configured), workers, records."""
    _logging(verbose)
    settings = _settings(project, processes=processes)
    from fnhub.serve import serve as run_serve

    sys.exit(run_serve(settings))


@app.command()
def server(
    project: ProjectOpt = Path("."),
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    verbose: bool = False,
) -> None:
    """Run the HTTP server only (API, endpoints, metrics); workers run apart."""
    _logging(verbose)
    settings = _settings(project)
    from fnhub.bootstrap import wait_for_services
    from fnhub.server.run import run_server, url_of

    wait_for_services(settings)  # they may come up after us
    err.print(f"fnhub server on [bold]{url_of(settings, host, port)}[/bold]")
    run_server(settings, host=host, port=port)


keys_app = typer.Typer(no_args_is_help=True, help="API keys (each with a role).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="what the key is for")] = "",
    role: Annotated[
        str, typer.Option("--role", help="viewer, developer or admin", show_default=True)
    ] = "admin",
    project: ProjectOpt = Path("."),
) -> None:
    """Create an API key with a role and print its token (shown only once)."""
    from fnhub import audit
    from fnhub.accounts.roles import Role
    from fnhub.server.auth import create_key
    from fnhub.store.db import Database

    if role not in Role.__members__.values():
        err.print(f"[red]error:[/red] unknown role {role!r} (viewer, developer, admin)")
        raise typer.Exit(2)
    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    row, token = create_key(db, name, role=role, actor=audit.CLI)
    db.dispose()
    err.print(f"created {role} API key [bold]{row.id}[/bold]; its token is shown only once:")
    console.print(token)


@keys_app.command("list")
def keys_list(
    project: ProjectOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List API keys with their role (their tokens are not stored)."""
    from fnhub.server.auth import key_state, list_keys
    from fnhub.store.db import Database

    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    rows = list_keys(db)
    db.dispose()
    if as_json:
        print(json.dumps([key_state(r) for r in rows]))
        return
    table = Table("id", "name", "role", "created", "expires")
    for row in rows:
        table.add_row(row.id, row.name, row.role, _time(row.created_at), _time(row.expires_at))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, project: ProjectOpt = Path(".")) -> None:
    """Delete an API key (servers forget it within seconds)."""
    from fnhub import audit
    from fnhub.server.auth import revoke_key
    from fnhub.store.db import Database

    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    found = revoke_key(db, key_id, actor=audit.CLI)
    db.dispose()
    if not found:
        err.print(f"[red]error:[/red] no API key '{key_id}'")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command()
def call(
    function: Annotated[str, typer.Argument(help="script.function")],
    project: ProjectOpt = Path("."),
    kwargs: Annotated[str, typer.Option(help="keyword arguments as a JSON object")] = "{}",
    timeout: Annotated[float | None, typer.Option(help="seconds to wait for the result")] = None,
    queue: Annotated[str | None, typer.Option(help="run on this queue")] = None,
) -> None:
    """Call a function through the queue and print its result (exit code 1 if it failed)."""
    from fnhub.calls import CallError
    from fnhub.client import Client

    try:
        parsed = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] --kwargs is not valid JSON: {exc}")
        raise typer.Exit(2) from exc
    client = Client(_settings(project))
    try:
        result = client.call(function, parsed, timeout=timeout, queue=queue)
    except CallError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        client.close()
    if result.logs:
        err.print(f"[dim]{result.logs.rstrip()}[/dim]")
    if result.ok:
        console.print_json(json.dumps(result.result))
        return
    err.print(f"[red]{result.status}:[/red] {result.error_type}: {result.error_message}")
    if result.traceback:
        err.print(result.traceback.rstrip())
    raise typer.Exit(1)


@app.command()
def status(
    project: ProjectOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Live workers, queue depths and every subscription's state (connected, holder, rate...)."""
    from fnhub.bootstrap import open_services
    from fnhub.status import gather

    settings = _settings(project)
    services = open_services(settings)
    try:
        data = gather(services.redis, services.keys, services.db, list(settings.queues))
    finally:
        services.close()
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    workers = Table("worker", "host", "queues", "processes", "last beat")
    for w in data["workers"]:
        workers.add_row(
            w["id"],
            w.get("host", ""),
            ",".join(w.get("queues", [])),
            str(w.get("processes", "")),
            _time(w.get("beat")),
        )
    console.print(workers)
    queues = Table("queue", "tasks", "entries held by workers")
    for q in data["queues"]:
        queues.add_row(q["queue"], str(q["tasks"]), str(q["held"]))
    console.print(queues)
    subs = Table(
        "subscription",
        "mode",
        "node",
        "state",
        "processed",
        "per min",
        "in flight",
        "lag",
        "dropped",
        "last error",
    )
    for sub in data["subscriptions"]:
        views = sub["servers"] or [{}]
        for view in views:
            source = view.get("source") or {}
            state = source.get("state", "not running" if sub["enabled"] else "disabled")
            if view and not view.get("subscribed"):
                state = "standby (holder elsewhere)" if sub["mode"] == "single" else state
            subs.add_row(
                sub["name"],
                sub["mode"],
                view.get("node", "-"),
                state,
                str(view.get("processed", "-")),
                str(view.get("rate_per_minute", "-")),
                str(source.get("in_flight", "-")),
                str(source.get("lag", "-")),
                str(source.get("dropped", "-")),
                (view.get("last_error") or "")[:60],
            )
    console.print(subs)


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


from fnhub.cron.cli import beat as _beat  # noqa: E402
from fnhub.cron.cli import cron_app  # noqa: E402

app.add_typer(cron_app, name="cron")
app.command("beat")(_beat)

from fnhub.websub.cli import websub_app  # noqa: E402

app.add_typer(websub_app, name="websub")

from fnhub.rules.cli import import_app  # noqa: E402

app.add_typer(import_app, name="import")

from fnhub.tasks_cli import tasks_app  # noqa: E402

app.add_typer(tasks_app, name="tasks")

from fnhub.accounts.cli import users_app  # noqa: E402

app.add_typer(users_app, name="users")


def main() -> None:  # pragma: no cover - console script entry
    import redis

    multiprocessing.freeze_support()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()
    except redis.ConnectionError as exc:
        err.print(f"[red]error:[/red] cannot reach Redis ({exc}); is `fnhub serve` running?")
        sys.exit(3)
    except KeyboardInterrupt:  # Ctrl-C before a role installed its own handler (e.g. waiting)
        sys.exit(130)


if __name__ == "__main__":
    main()
