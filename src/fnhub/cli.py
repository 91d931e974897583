"""The `fnhub` command line."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_lazy import LazyGroup
from fnhub.cli_output import Column, JsonOpt, cell, fitted_table, hide_flag_types, out, print_json
from fnhub.cli_output import show as show_table
from fnhub.cli_settings import DataDirOpt, ProjectOpt, settings_command, settings_or_exit
from fnhub.config import Settings, load_settings
from fnhub.feature import CliCommand, CliGroup
from fnhub.features import FEATURES
from fnhub.heap import pause_for_startup

TASKS_HELP = "Task records and dead letters. Without a command: list the newest records."
USERS_HELP = "Console users: create, list, passwd, remove."
CLUSTER_HELP = "Every server, beat and worker; Redis and the database."


class Commands(LazyGroup):
    """The root: the commands below, and these groups, each imported only when it runs."""

    entries = (
        CliGroup(
            "import", "fnhub.import_cli:import_app", "Import configurations of other systems."
        ),
        CliGroup("tasks", "fnhub.tasks_cli:tasks_app", TASKS_HELP),
        CliGroup("users", "fnhub.accounts.cli:users_app", USERS_HELP),
        CliCommand("cluster", "fnhub.cluster_cli:cluster", CLUSTER_HELP),
        # `fnhub cron ...`, `fnhub beat`, `fnhub websub ...`, ...
        *(entry for feature in FEATURES for entry in feature.cli),
    )


app = typer.Typer(cls=Commands, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
hide_flag_types()
console = Console()
err = Console(stderr=True)

VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="log debug messages")]
HostOpt = Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option(help="port to listen on (default 8090)")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"fnhub {version('fnhub')}")
        raise typer.Exit()


@app.callback()
def root(
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """The `fnhub` command line."""


def _settings(project: Path | None, *, role: bool = False, **overrides: Any) -> Settings:
    return settings_or_exit(project, role=role, **overrides)


def _logging(verbose: bool, settings: Settings) -> None:
    from fnhub.log_setup import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.INFO, settings.log_format)


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
    try:
        load_settings(folder)  # a misspelt FNHUB_* variable stops us before any file is made
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
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
    for made in created:
        console.print(f"created [bold]{made}[/bold]")
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
def apply(
    project: ProjectOpt = Path("."),
    wait: Annotated[
        float, typer.Option(help="seconds to wait for running servers to pick it up")
    ] = 5.0,
) -> None:
    """Publish the scripts and apply fnhub.yaml; say what changed and which servers took it."""
    from fnhub.apply_cli import apply_command

    raise typer.Exit(apply_command(_settings(project), console, err, wait))


def _run_worker(settings_json: str, queues: list[str] | None, processes: int | None) -> None:
    from fnhub.log_setup import configure_logging
    from fnhub.worker.supervisor import Supervisor

    settings = Settings.model_validate_json(settings_json)
    configure_logging(logging.INFO, settings.log_format)
    Supervisor(settings, queues, processes).run()


@app.command()
def worker(
    project: ProjectOpt = None,
    queues: Annotated[
        str | None, typer.Option(help="comma-separated queue names (default: all)")
    ] = None,
    processes: Annotated[int | None, typer.Option(help="child processes (default 2)")] = None,
    data_dir: DataDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run a worker: a supervisor and N child processes consuming the given queues."""
    settings = _settings(project, role=True, queues=queues, processes=processes, data_dir=data_dir)
    _logging(verbose, settings)
    from fnhub.worker.supervisor import Supervisor

    Supervisor(settings).run()


@app.command()
def serve(
    project: ProjectOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    processes: Annotated[
        int | None, typer.Option(help="worker child processes (default 2)")
    ] = None,
    http_processes: Annotated[
        int | None, typer.Option("--http-processes", help="HTTP server processes (default 1)")
    ] = None,
    data_dir: DataDirOpt = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="publish scripts/ whenever a file in it changes")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run everything on one machine: embedded Redis (if none configured), workers, records."""
    settings = _settings(
        project,
        role=True,
        host=host,
        port=port,
        processes=processes,
        http_processes=http_processes,
        data_dir=data_dir,
    )
    from fnhub.log_setup import configure_logging, serve_level
    from fnhub.serve import serve as run_serve

    configure_logging(serve_level(settings.log_format, verbose), settings.log_format)

    sys.exit(run_serve(settings, reload=reload))


@app.command()
def server(
    project: ProjectOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "--http-processes", help="HTTP processes on the port (default 1)"
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the HTTP server only (API, endpoints, metrics); workers run apart."""
    settings = _settings(
        project, role=True, host=host, port=port, http_processes=workers, data_dir=data_dir
    )
    _logging(verbose, settings)
    from fnhub.bootstrap import wait_for_services
    from fnhub.server.run import run_server, url_of

    wait_for_services(settings)  # they may come up after us
    if settings.log_format == "text":  # JSON logs: stderr holds JSON lines only
        err.print(f"fnhub server on [bold]{url_of(settings)}[/bold]")
    run_server(settings)


keys_app = typer.Typer(no_args_is_help=True, help="API keys (each with a role).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="what the key is for")] = "",
    role: Annotated[
        str, typer.Option("--role", help="viewer, developer or admin", show_default=True)
    ] = "admin",
    project: ProjectOpt = None,
) -> None:
    """Create an API key with a role and print its token (shown only once)."""
    from fnhub import audit
    from fnhub.accounts.roles import Role
    from fnhub.server.auth import create_key
    from fnhub.store.db import Database

    if role not in Role.__members__.values():
        raise _fail(f"unknown role {role!r} (viewer, developer, admin)", 2)
    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    row, token = create_key(db, name, role=role, actor=audit.CLI)
    db.dispose()
    err.print(f"created {role} API key [bold]{row.id}[/bold]; its token is shown only once:")
    console.print(token)


@keys_app.command("list")
def keys_list(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys with their role (their tokens are not stored)."""
    from fnhub.server.auth import key_state, list_keys
    from fnhub.store.db import Database

    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    rows = list_keys(db)
    db.dispose()
    if as_json:
        print_json([key_state(r) for r in rows])
        return
    screen = out()
    columns = [Column("id"), Column("name"), Column("role"), Column("created", 2)]
    columns.append(Column("expires", 1))
    table = fitted_table(
        screen,
        columns,
        [(r.id, r.name, r.role, _time(r.created_at), _time(r.expires_at)) for r in rows],
    )
    show_table(screen, table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, project: ProjectOpt = None) -> None:
    """Delete an API key (servers forget it within seconds)."""
    from fnhub import audit
    from fnhub.server.auth import revoke_key
    from fnhub.store.db import Database

    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    found = revoke_key(db, key_id, actor=audit.CLI)
    db.dispose()
    if not found:
        raise _fail(f"no API key '{key_id}'")
    console.print(f"revoked {key_id}")


@app.command()
def call(
    function: Annotated[str, typer.Argument(help="script.function")],
    project: ProjectOpt = None,
    kwargs: Annotated[str, typer.Option(help="keyword arguments as a JSON object")] = "{}",
    timeout: Annotated[float | None, typer.Option(help="seconds to wait for the result")] = None,
    queue: Annotated[str | None, typer.Option(help="run on this queue")] = None,
    wait_worker: Annotated[
        float,
        typer.Option(help="seconds to wait for a worker on the queue if none is listening yet"),
    ] = 30.0,
) -> None:
    """Call a function through the queue and print its result (exit code 1 if it failed)."""
    from fnhub.calling.queue_client import QueueClient

    try:
        parsed = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise _fail(f"--kwargs is not valid JSON: {exc}", 2) from exc
    client = QueueClient(_settings(project))
    try:
        result = _call_when_a_worker_listens(client, function, parsed, timeout, queue, wait_worker)
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


def _call_when_a_worker_listens(
    client: Any, function: str, kwargs: Any, timeout: float | None, queue: str | None, wait: float
) -> Any:
    """The call's result; while no worker listens on its queue (a `fnhub serve` still starting
    its workers), it tries again for up to `wait` seconds. Nothing is queued until one does."""
    from fnhub.calling.errors import CallError

    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            return client.call(function, kwargs, timeout=timeout, queue=queue)
        except CallError as exc:
            if exc.kind != "no_worker" or time.monotonic() >= deadline:
                raise _fail(str(exc), 2) from exc
            if not said:
                err.print(f"[dim]{exc}: waiting up to {wait:g} s for one[/dim]")
                said = True
            time.sleep(0.25)


@app.command()
def status(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
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
        print_json(data)
        return
    screen = out()
    workers = [
        (w["id"], w.get("host"), ",".join(w.get("queues", [])), w.get("processes"),
         _time(w.get("beat")))
        for w in data["workers"]
    ]  # fmt: skip
    columns = [Column("worker"), Column("host", 2), Column("queues", 1)]
    columns += [Column("processes", 3, "right"), Column("last beat")]
    show_table(screen, fitted_table(screen, columns, workers, "workers"))
    queues = [(q["queue"], q["tasks"], q["held"]) for q in data["queues"]]
    columns = [Column("queue"), Column("tasks", 0, "right"), Column("held by workers", 1, "right")]
    show_table(screen, fitted_table(screen, columns, queues, "queues"))
    if data["subscriptions"]:
        show_table(screen, _subscriptions_table(screen, data["subscriptions"]))


def _subscriptions_table(screen: Console, subscriptions: list[dict[str, Any]]) -> Any:
    """One row per subscription and server running it; on a narrow terminal the counters go
    first, then mode and node; name, state and last error stay."""
    rows = []
    for sub in subscriptions:
        for view in sub["servers"] or [{}]:
            source = view.get("source") or {}
            state = source.get("state", "not running" if sub["enabled"] else "disabled")
            if view and not view.get("subscribed"):
                state = "standby (holder elsewhere)" if sub["mode"] == "single" else state
            if view.get("path") == "direct":  # one row per worker child consuming it
                state = f"{state} (direct)"
            rows.append(
                (
                    sub["name"], sub["mode"], view.get("node"), state, view.get("processed"),
                    view.get("rate_per_minute"), source.get("in_flight"), source.get("lag"),
                    source.get("dropped"), cell(view.get("last_error"), "red"),
                )
            )  # fmt: skip
    columns = [
        Column("subscription"), Column("mode", 5), Column("node", 2), Column("state"),
        Column("processed", 4, "right"), Column("per min", 3, "right"),
        Column("in flight", 7, "right"), Column("lag", 6, "right"),
        Column("dropped", 8, "right"), Column("last error"),
    ]  # fmt: skip
    return fitted_table(screen, columns, rows, "subscriptions")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(Text("error: ", style="red") + Text(message), soft_wrap=True)
    return typer.Exit(code)


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


app.command("settings")(settings_command)


def main() -> None:  # pragma: no cover - console script entry
    # every role starts here: no collections until it froze what start-up made (`fnhub.heap`);
    # a short command ends paused
    pause_for_startup()
    multiprocessing.freeze_support()
    # SIGPIPE stays ignored (Python's default): with the default action back, a server or worker
    # writing to a connection its peer dropped would die instead of failing that one write.
    # A reader of our output that left (`fnhub tasks | head`) ends the command quietly through
    # click's own EPIPE handling.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C before a role installed its own handler (e.g. waiting)
        sys.exit(130)
    except Exception as exc:
        # A command that never touched Redis cannot fail on it: the client is imported only
        # by the commands that use it (~0.1 s off `fnhub --help`).
        redis = sys.modules.get("redis")
        if redis is None or not isinstance(exc, redis.ConnectionError):
            raise
        err.print(f"[red]error:[/red] cannot reach Redis ({exc}); is `fnhub serve` running?")
        sys.exit(3)


if __name__ == "__main__":
    main()
