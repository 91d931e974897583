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
    console.print(f"next: [bold]cd {folder} && fnhub serve[/bold]")


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


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


@app.command()
def tasks(
    project: ProjectOpt = Path("."),
    limit: Annotated[int, typer.Option(help="how many records")] = 20,
    function: Annotated[str | None, typer.Option(help="only this script.function")] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    origin: Annotated[str | None, typer.Option(help="only this origin")] = None,
) -> None:
    """Show recent task records."""
    from sqlalchemy import select

    from fnhub.store.db import Database
    from fnhub.store.models import TaskRecord

    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    query = select(TaskRecord).order_by(TaskRecord.trigger_time.desc()).limit(limit)
    if function:
        query = query.where(TaskRecord.function == function)
    if status:
        query = query.where(TaskRecord.status == status)
    if origin:
        query = query.where(TaskRecord.origin == origin)
    with db.session() as session:
        rows = list(session.execute(query).scalars())
    table = Table(
        "id",
        "function",
        "status",
        "origin",
        "try",
        "triggered",
        "wait ms",
        "run ms",
        "result / error",
    )
    colors = {"success": "green", "failure": "red", "timeout": "yellow", "dead": "magenta"}
    for row in rows:
        outcome = (
            json.dumps(row.result)
            if row.status == "success"
            else f"{row.error_type or ''}: {row.error_message or ''}"
        )
        color = colors.get(row.status, "white")
        table.add_row(
            row.id,
            row.function,
            f"[{color}]{row.status}[/{color}]",
            row.origin,
            str(row.attempt),
            _time(row.trigger_time),
            f"{row.wait_ms:.1f}" if row.wait_ms is not None else "-",
            f"{row.run_ms:.1f}" if row.run_ms is not None else "-",
            outcome[:60],
        )
    console.print(table)
    db.dispose()


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


if __name__ == "__main__":
    main()
