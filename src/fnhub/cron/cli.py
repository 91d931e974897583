"""`fnhub cron ...` (list, add, remove, run, pause, resume) and `fnhub beat`."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, fitted_table, out, print_json, show
from fnhub.cli_settings import DataDirOpt, ProjectOpt, settings_or_exit

cron_app = typer.Typer(no_args_is_help=True, help="Cron jobs: list, add, run, pause, resume.")
console = Console()
err = Console(stderr=True)
AllOpt = Annotated[bool, typer.Option("--all", help="every cron job (global pause)")]
SecondsOpt = Annotated[
    float | None, typer.Option("--seconds", help="pause for this long; default until resumed")
]


def _services(project: Path | None) -> Any:
    from fnhub.bootstrap import open_services

    return open_services(settings_or_exit(project))


def _fail(exc: Exception, code: int = 1) -> typer.Exit:
    err.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
    return typer.Exit(code)


def _bump(services: Any) -> None:
    """Tell running beats to reload the jobs."""
    from fnhub.revisions import bump

    bump(services.redis, services.keys.cron_revision)


def _active(services: Any) -> Any:
    from fnhub.calling.queue_client import QueueClient

    return QueueClient(services.settings, services.redis).active()


@cron_app.command("list")
def list_jobs(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Show cron jobs with the expression in force, state and next fire times."""
    from fnhub.cron.control import add_status_reads, iso, status_of
    from fnhub.cron.jobs import JobStore, row_json, spec_of

    services = _services(project)
    try:
        rows = JobStore(services.db).all()
        specs = [spec_of(r) for r in rows]
        pipe = services.redis.pipeline(transaction=False)
        add_status_reads(pipe, services.keys, [s.id for s in specs])
        paused_all, statuses = status_of(
            services.settings, _active(services), specs, pipe.execute()
        )
    finally:
        services.close()
    if as_json:  # every job, each as GET /api/v1/cron-jobs gives it (that pages: `items`)
        jobs = [{**row_json(r), "status": s} for r, s in zip(rows, statuses, strict=True)]
        print_json({"paused_all": paused_all, "jobs": jobs})
        return
    if paused_all:
        until = paused_all["until"]
        err.print(
            f"[yellow]all cron jobs are paused[/yellow] until {iso(until) if until else 'resumed'}"
        )
    table_rows = []
    for row, s in zip(rows, statuses, strict=True):
        state = Text("enabled", style="green") if s["enabled"] else Text("disabled", style="dim")
        if s["paused"]:
            until = s["paused"]["until"]
            state = Text("paused" + (f" until {iso(until)}" if until else ""), style="yellow")
        if s["error"]:
            state = Text(s["error"], style="red")
        expr = s["expr"] + ("" if s["source"] == "job" else f" ({s['source']})")
        job = s["id"] + (" (fnhub.yaml)" if row.provisioned else "")
        next_fires = ", ".join(_time(t) for t in s["next"][:2])
        table_rows.append(
            (job, s["function"], expr, s.get("timezone"), state, _time(s["last_tick"]), next_fires)
        )
    screen = out()
    columns = [
        Column("id"), Column("function"), Column("expression"), Column("timezone", 2),
        Column("state"), Column("last tick", 3), Column("next", 1),
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, table_rows))


def _time(ts: float | None) -> str:
    """A time in a table: short, local (`--json` has epoch seconds)."""
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


@cron_app.command()
def add(
    job_id: Annotated[str, typer.Argument(help="job id")],
    function: Annotated[str, typer.Argument(help="script.function")],
    expr: Annotated[
        str | None, typer.Argument(help="cron expression (5 fields, or 6 with seconds first)")
    ] = None,
    project: ProjectOpt = None,
    timezone: Annotated[str | None, typer.Option("--tz", help="IANA timezone")] = None,
    kwargs: Annotated[str, typer.Option(help="keyword arguments as a JSON object")] = "{}",
    queue: Annotated[str | None, typer.Option(help="queue (default: cron)")] = None,
    misfire: Annotated[str, typer.Option(help="skip | run_once")] = "skip",
    overlap: Annotated[str, typer.Option(help="skip | allow")] = "skip",
    expires: Annotated[str | None, typer.Option(help="no ticks after (ISO time)")] = None,
    record_limit: Annotated[int | None, typer.Option(help="task records kept")] = None,
    replace: Annotated[bool, typer.Option(help="overwrite an existing job")] = False,
) -> None:
    """Create (or with --replace, overwrite) a cron job."""
    from pydantic import ValidationError

    from fnhub import audit
    from fnhub.cron.jobs import CronJobError, CronJobSpec, JobStore, check

    try:
        spec = CronJobSpec.model_validate(
            {
                "id": job_id,
                "function": function,
                "expr": expr,
                "timezone": timezone,
                "kwargs": json.loads(kwargs),
                "queue": queue,
                "misfire": misfire,
                "overlap": overlap,
                "expires_at": expires,
                "record_limit": record_limit,
            }
        )
    except (ValidationError, json.JSONDecodeError) as exc:
        raise _fail(exc, 2) from exc
    services = _services(project)
    try:
        check(spec, _active(services), services.settings.cron_timezone)
        store = JobStore(services.db)
        save = store.replace if replace else store.create
        save(spec, actor=audit.CLI)
        _bump(services)
    except CronJobError as exc:
        raise _fail(exc, 2) from exc
    finally:
        services.close()
    console.print(f"cron job [bold]{job_id}[/bold] saved")


@cron_app.command()
def remove(job_id: str, project: ProjectOpt = None) -> None:
    """Delete a cron job (one declared in fnhub.yaml comes back with the next apply)."""
    from fnhub import audit
    from fnhub.cron.control import add_forget
    from fnhub.cron.jobs import CronJobError, JobStore

    services = _services(project)
    try:
        store = JobStore(services.db)
        declared = store.get(job_id).provisioned
        store.delete(job_id, actor=audit.CLI)
        pipe = services.redis.pipeline(transaction=False)
        add_forget(pipe, services.keys, job_id)
        pipe.execute()
        _bump(services)
    except CronJobError as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(f"cron job [bold]{job_id}[/bold] removed")
    if declared:
        err.print(
            Text(
                f"warning: {job_id} is declared in fnhub.yaml (cron_jobs:); the next "
                "`fnhub apply` (or start of `fnhub serve`) brings it back; remove it there to "
                "drop it for good",
                style="yellow",
            )
        )


@cron_app.command()
def run(job_id: str, project: ProjectOpt = None) -> None:
    """Queue one run of a job now (ignores schedule, pause and overlap)."""
    from fnhub import audit
    from fnhub.calling.errors import CallError
    from fnhub.cron.control import audited, refused_run, run_now
    from fnhub.cron.jobs import CronJobError, JobStore, spec_of
    from fnhub.redis_wait import run_confirmed_sync

    services = _services(project)
    try:
        spec = spec_of(JobStore(services.db).get(job_id))
        pipe = services.redis.pipeline(transaction=False)
        task = run_now(services.settings, _active(services), spec, pipe)
        queued = {"task_id": task.id, "queue": task.queue}
        try:
            run_confirmed_sync(services.settings, services.redis, pipe, "the run")
        except CallError as exc:  # refused, yet it may run: audited as "not confirmed"
            refused = refused_run(exc, queued)
            if refused is not None:
                audited(services.db, audit.CLI, job_id, "run", refused)
            raise
        audited(services.db, audit.CLI, job_id, "run", queued)
    except (CronJobError, CallError) as exc:
        raise _fail(exc) from exc
    finally:
        services.close()
    console.print(f"queued task [bold]{task.id}[/bold] on {task.queue}")


def _pause(
    job_id: str | None, every: bool, seconds: float | None, project: Path | None, on: bool
) -> None:
    from fnhub import audit
    from fnhub.cron.control import add_pause, add_resume, audited
    from fnhub.cron.jobs import CronJobError, JobStore

    if bool(job_id) == every:
        raise _fail(ValueError("give a job id or --all"), 2)
    services = _services(project)
    try:
        if job_id:
            JobStore(services.db).get(job_id)
        pipe = services.redis.pipeline(transaction=False)
        if on:
            add_pause(pipe, services.keys, job_id, seconds)
        else:
            add_resume(pipe, services.keys, job_id)
        pipe.execute()
        if on:
            audited(services.db, audit.CLI, job_id, "pause", {"seconds": seconds})
        else:
            audited(services.db, audit.CLI, job_id, "resume")
    except (CronJobError, ValueError) as exc:
        raise _fail(exc, 2) from exc
    finally:
        services.close()
    what = f"cron job {job_id}" if job_id else "all cron jobs"
    how = "paused" if on else "resumed"
    console.print(f"{what} {how}" + (f" for {seconds:g}s" if on and seconds else ""))


@cron_app.command()
def pause(
    job_id: Annotated[str | None, typer.Argument(help="job id")] = None,
    every: AllOpt = False,
    seconds: SecondsOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Pause one job or, with --all, every job (optionally for --seconds)."""
    _pause(job_id, every, seconds, project, True)


@cron_app.command()
def resume(
    job_id: Annotated[str | None, typer.Argument(help="job id")] = None,
    every: AllOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Resume one job or, with --all, end the global pause."""
    _pause(job_id, every, None, project, False)


def beat(
    project: ProjectOpt = None,
    data_dir: DataDirOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log debug messages")] = False,
) -> None:
    """Run a cron beat; any number may run, the leader fires each tick once."""
    import asyncio
    import signal

    from fnhub import tracing
    from fnhub.bootstrap import wait_for_services
    from fnhub.cron.beat import Beat, new_beat_id
    from fnhub.heap import freeze_startup_objects
    from fnhub.holders import connection_name, name_connections
    from fnhub.keys import Keys
    from fnhub.log_setup import configure_logging
    from fnhub.redis_client import async_redis
    from fnhub.store.db import Database
    from fnhub.supervised import RestartCounter, supervise

    settings = settings_or_exit(project, role=True, data_dir=data_dir)
    configure_logging(logging.DEBUG if verbose else logging.INFO, settings.log_format)
    tracing.configure(settings, "beat")
    wait_for_services(settings)  # they may come up after us

    async def main() -> None:
        db = Database(settings.resolved_db_url())
        await asyncio.to_thread(db.migrate)
        client = async_redis(settings)
        beat_id = new_beat_id()
        await name_connections(client, connection_name("beat", beat_id))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        counter = RestartCounter(Keys(settings.key_prefix).loop_restarts, client)
        freeze_startup_objects()
        try:
            await supervise(
                "cron", lambda: Beat(settings, client, db, beat_id).run(stop), counter=counter
            )
        finally:
            await client.aclose()
            db.dispose()

    asyncio.run(main())
