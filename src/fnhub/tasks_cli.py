"""`fnhub tasks ...`: task records (list, show, follow) and dead letters (list, replay, discard).

Like the rest of the CLI it reads the project's database and Redis directly (`fnhub status`,
`fnhub cron`), through the same code as the API (`task_history`, `dead_letters`), so both
show the same thing. Tables wrap rather than cut: on a narrow terminal they drop the less
important columns; piped, they are as wide as they need (or `COLUMNS`). `--json` prints what
the API answers.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fnhub.cli_output import JsonOpt
from fnhub.cli_output import cell as _text
from fnhub.cli_output import out as _out
from fnhub.cli_output import print_json as _print_json
from fnhub.cli_output import show as _print
from fnhub.cli_settings import ProjectOpt, settings_or_exit
from fnhub.tasks import Origin

tasks_app = typer.Typer(
    help="Task records and dead letters. Without a command: list the newest records."
)
err = Console(stderr=True)

SinceOpt = Annotated[
    str | None, typer.Option(help="from this long ago (30s, 10m, 2h, 7d) or this time (ISO)")
]
UntilOpt = Annotated[str | None, typer.Option(help="before this long ago or this time (ISO)")]
FunctionOpt = Annotated[str | None, typer.Option("--function", "-f", help="only script.function")]
TextOpt = Annotated[str | None, typer.Option("--q", "--error", help="text in the error")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="how many (at most 500)")]
CursorOpt = Annotated[str | None, typer.Option(help="continue after a page (its next cursor)")]

STATUS_STYLES = {
    "success": "green",
    "failure": "red",
    "timeout": "yellow",
    "expired": "yellow",
    "dead": "magenta",
    "retrying": "cyan",
}
FOLLOW_POLL_SECONDS = 0.5
#: a record landing this long after its task ended (a recorder catching up) is still shown
FOLLOW_LAG_SECONDS = 5.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# -- helpers ---------------------------------------------------------------------------------
def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(Text("error: ", style="red") + Text(message), soft_wrap=True)
    return typer.Exit(code)


def parse_when(text: str) -> float:
    """Epoch seconds of `text`: a duration ago (90s, 10m, 2h, 7d, 1w), an ISO time (local time
    unless it names its zone) or epoch seconds."""
    match = _DURATION.match(text)
    if match:
        return time.time() - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (30s, 10m, 2h, 7d) nor an ISO time"
        ) from None


def _when(text: str | None) -> float | None:
    return None if text is None else parse_when(text)


def _settings(project: Path | None) -> Any:
    return settings_or_exit(project)


def _database(project: Path | None) -> Any:
    from fnhub.store.db import Database

    db = Database(_settings(project).resolved_db_url())
    db.migrate()
    return db


def _services(project: Path | None) -> Any:
    from fnhub.bootstrap import open_services

    return open_services(_settings(project))


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


def _iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds") if ts else "-"


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _error(row: dict[str, Any]) -> Text:
    if not row.get("error_type") and not row.get("error_message"):
        return Text("")
    return Text(f"{row.get('error_type') or 'error'}: {row.get('error_message') or ''}")


def _project_of(ctx: typer.Context, project: Path | None) -> Path | None:
    return project or (ctx.obj or {}).get("project")


# -- records ---------------------------------------------------------------------------------
@tasks_app.callback(invoke_without_command=True)
def tasks(
    ctx: typer.Context,
    project: ProjectOpt = None,
    function: FunctionOpt = None,
    status: Annotated[str | None, typer.Option("--status", "-s", help="only this status")] = None,
    origin: Annotated[
        str | None, typer.Option(help=f"only this origin ({', '.join(Origin)})")
    ] = None,
    origin_id: Annotated[str | None, typer.Option(help="only this origin id")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    q: TextOpt = None,
    limit: LimitOpt = 20,
    cursor: CursorOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="print records as they land (Ctrl-C stops)")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List task records newest first (or follow them as they land)."""
    from fnhub.task_history import BadCursor, RecordFilter, list_records
    from fnhub.tasks import Status

    ctx.obj = {"project": project}
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in set(Status):
        raise _fail(f"unknown status {status!r} (one of: {', '.join(Status)})", 2)
    where = RecordFilter(
        function=function,
        status=status,
        origin=origin,
        origin_id=origin_id,
        since=_when(since),
        until=_when(until),
        q=q,
    )
    db = _database(project)
    try:
        if follow:
            _follow(db, where, as_json)
            return
        try:
            page = list_records(db, where, cursor=cursor, limit=limit)
        except BadCursor as exc:
            raise _fail(str(exc), 2) from exc
    finally:
        db.dispose()
    if as_json:
        _print_json({"items": page.items, "next_cursor": page.next_cursor})
        return
    out = _out()
    _print(out, _records_table(page.items, out.width))
    if page.next_cursor:
        err.print(Text(f"more: --cursor {page.next_cursor}", style="dim"))


def _records_table(rows: list[dict[str, Any]], width: int) -> Table:
    """The records as a table fitting `width`: past 130 columns everything, from 100 without
    origin and wait, below that id, function, status, time and error."""
    wide, medium = width >= 130, width >= 100
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=24)
    table.add_column("function", overflow="fold")
    table.add_column("status", no_wrap=True)
    if medium:
        table.add_column("try", justify="right", no_wrap=True)
    if wide:
        table.add_column("origin", overflow="fold")
    table.add_column("triggered", no_wrap=True)
    if wide:
        table.add_column("wait ms", justify="right", no_wrap=True)
    if medium:
        table.add_column("run ms", justify="right", no_wrap=True)
    table.add_column("error", overflow="fold")
    for row in rows:
        cells: list[Text] = [_text(row["id"]), _text(row["function"]), _status(row["status"])]
        if medium:
            cells.append(_text(row["attempt"]))
        if wide:
            origin = row["origin"] + (f":{row['origin_id']}" if row["origin_id"] else "")
            cells.append(_text(origin))
        cells.append(_text(_time(row["trigger_time"])))
        if wide:
            cells.append(_text(_ms(row["wait_ms"])))
        if medium:
            cells.append(_text(_ms(row["run_ms"])))
        cells.append(_error(row))
        table.add_row(*cells)
    return table


def _follow(db: Any, where: Any, as_json: bool) -> None:
    """Print records as they land until Ctrl-C or SIGTERM: those of tasks ending from now on (a
    record lands within about a second of its task's end; up to FOLLOW_LAG_SECONDS late is
    shown). The signals only set a flag the loop waits on, so a stop never lands inside a query
    or a half-printed line, and the command exits at once."""
    from fnhub.task_history import MAX_LIMIT, landed_since

    stop = _stop_on_signals()
    err.print(Text("following task records (Ctrl-C to stop)", style="dim"))
    out = _out()
    mark = time.time() - 1.0  # end times already printed up to here (or started from)
    seen: dict[tuple[str, int, str], float] = {}
    while not stop.is_set():
        rows = landed_since(db, mark - FOLLOW_LAG_SECONDS, where)
        for row in rows:
            key = (row["id"], row["attempt"], row["status"])
            if key in seen:
                continue
            seen[key] = row["end_time"]
            mark = max(mark, row["end_time"])
            if as_json:
                _print_json(row)
            else:
                out.print(_follow_line(row), soft_wrap=True)
        for key, ended in list(seen.items()):
            if ended < mark - 2 * FOLLOW_LAG_SECONDS:
                del seen[key]
        if len(rows) < MAX_LIMIT:  # a full page: read on at once
            stop.wait(FOLLOW_POLL_SECONDS)


def _stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set (also where the shell started us with SIGINT ignored,
    as `cmd &` does in a script)."""
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    return stop


def _follow_line(row: dict[str, Any]) -> Text:
    line = Text(_time(row["end_time"]) + "  ")
    line += Text(row["id"] + "  ") + Text(row["function"] + "  ") + _status(row["status"])
    line += Text(f"  try {row['attempt']}  {_ms(row['run_ms'])} ms  ") + _error(row)
    line.rstrip()
    return line


@tasks_app.command("show")
def show(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(help="the task's id")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything recorded about one task: kwargs, result, logs, traceback, timings, attempts."""
    from fnhub.task_history import record_detail

    db = _database(_project_of(ctx, project))
    try:
        record = record_detail(db, task_id)
    finally:
        db.dispose()
    if record is None:
        raise _fail(f"no record of task {task_id!r} (still running, or pruned)")
    if as_json:
        _print_json(record)
        return
    _print_record(_out(), record)


def _print_record(out: Console, record: dict[str, Any]) -> None:
    fields = Table(box=None, show_header=False, pad_edge=False)
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    origin = record["origin"] + (f" {record['origin_id']}" if record["origin_id"] else "")
    for name, value in (
        ("task", _text(record["id"])),
        ("function", _text(record["function"])),
        ("version", _text(record["version"])),
        ("status", _status(record["status"])),
        ("attempts", _text(record["attempt"])),
        ("origin", _text(origin)),
        ("queue", _text(record["queue"])),
        ("triggered", _text(_iso(record["trigger_time"]))),
        ("started", _text(_iso(record["start_time"]))),
        ("ended", _text(_iso(record["end_time"]))),
        ("waited", _text(f"{_ms(record['wait_ms'])} ms")),
        ("ran", _text(f"{_ms(record['run_ms'])} ms")),
    ):
        fields.add_row(name, value)
    if record["replay_of"]:
        fields.add_row("replay of", _text(record["replay_of"]))
    _print(out, fields)
    _section(out, "kwargs", json.dumps(record["kwargs"], indent=2, default=str))
    if record["status"] == "success":
        _section(out, "result", json.dumps(record["result"], indent=2, default=str))
    attempts = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    for name in ("attempt", "status", "started", "run ms", "error"):
        attempts.add_column(name, overflow="fold")
    for attempt in record["attempts"]:
        attempts.add_row(
            _text(attempt["attempt"]),
            _status(attempt["status"]),
            _text(_time(attempt["start_time"])),
            _text(_ms(attempt["run_ms"])),
            _error(attempt),
        )
    out.print(Text("\nattempts", style="bold"))
    _print(out, attempts)
    for attempt in record["attempts"]:
        n = attempt["attempt"]
        if attempt["logs"]:
            _section(out, f"attempt {n} logs", attempt["logs"].rstrip())
        if attempt["traceback"]:
            _section(out, f"attempt {n} traceback", attempt["traceback"].rstrip())


def _section(out: Console, title: str, body: str) -> None:
    out.print(Text(f"\n{title}", style="bold"))
    out.print(Text(body), soft_wrap=True)


# -- dead letters ----------------------------------------------------------------------------
@tasks_app.command("dead")
def dead(
    ctx: typer.Context,
    project: ProjectOpt = None,
    function: FunctionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    q: Annotated[str | None, typer.Option("--q", help="text in the reason or task id")] = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters newest first: tasks that exhausted their attempts, or failed or timed
    out in a function with `dead_letter=True`."""
    from fnhub.dead_letters import DeadFilter, list_page

    where = DeadFilter(function=function, since=_when(since), until=_when(until), q=q)
    services = _services(_project_of(ctx, project))
    try:
        letters, next_cursor = list_page(
            services.redis, services.keys, where, cursor=cursor, limit=limit
        )
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    finally:
        services.close()
    if as_json:
        _print_json({"items": [x.summary() for x in letters], "next_cursor": next_cursor})
        return
    out = _out()
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("task", no_wrap=True, min_width=24)
    table.add_column("function", overflow="fold")
    table.add_column("died", no_wrap=True)
    if out.width >= 100:
        table.add_column("try", justify="right", no_wrap=True)
        table.add_column("entry", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for letter in letters:
        summary = letter.summary()
        cells = [_text(letter.task_id), _text(letter.function), _text(_time(letter.dead_at))]
        if out.width >= 100:
            cells += [_text(summary["attempt"]), _text(letter.entry_id)]
        table.add_row(*cells, _text(letter.reason))
    _print(out, table)
    if next_cursor:
        err.print(Text(f"more: --cursor {next_cursor}", style="dim"))


def _chosen(
    services: Any, letter_id: str | None, every: bool, function: str | None, since: str | None
) -> list[Any]:
    """The dead letters a replay or discard takes: one by id, or with --all those matching."""
    from fnhub.dead_letters import DeadFilter, get, scan

    if bool(letter_id) == every:
        raise _fail("give a dead letter's task id (or entry id), or --all", 2)
    if (function or since) and not every:
        raise _fail("--function and --since go with --all", 2)
    if letter_id:
        letter = get(services.redis, services.keys, letter_id)
        if letter is None:
            raise _fail(f"no dead letter {letter_id!r}")
        return [letter]
    where = DeadFilter(function=function, since=_when(since))
    return list(scan(services.redis, services.keys, where))


@tasks_app.command("replay")
def replay(
    ctx: typer.Context,
    letter_id: Annotated[str | None, typer.Argument(help="task id or entry id")] = None,
    every: Annotated[bool, typer.Option("--all", help="every dead letter (or matching)")] = False,
    function: FunctionOpt = None,
    since: SinceOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run dead letters again, each as a new task (attempt 1) with the function's active
    version; one that cannot run (function gone, kwargs no longer fit) stays."""
    from fnhub import dead_letters

    services = _services(_project_of(ctx, project))
    try:
        letters = _chosen(services, letter_id, every, function, since)
        done = dead_letters.replay(services.redis, services.keys, services.settings, letters)
    finally:
        services.close()
    if as_json:
        _print_json({"replayed": done.done, "task_ids": done.task_ids, "skipped": done.skipped})
    else:
        _out().print(Text(f"replayed {done.done} dead letter(s)"))
        for task_id in done.task_ids:
            _out().print(Text(f"  new task {task_id}"))
        _report_skipped(done.skipped)
    if letter_id and not done.done:
        raise typer.Exit(1)


@tasks_app.command("discard")
def discard(
    ctx: typer.Context,
    letter_id: Annotated[str | None, typer.Argument(help="task id or entry id")] = None,
    every: Annotated[bool, typer.Option("--all", help="every dead letter (or matching)")] = False,
    function: FunctionOpt = None,
    since: SinceOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete dead letters for good."""
    from fnhub import dead_letters

    services = _services(_project_of(ctx, project))
    try:
        letters = _chosen(services, letter_id, every, function, since)
        done = dead_letters.discard(services.redis, services.keys, letters)
    finally:
        services.close()
    if as_json:
        _print_json({"discarded": done.done, "skipped": done.skipped})
    else:
        _out().print(Text(f"discarded {done.done} dead letter(s)"))
        _report_skipped(done.skipped)
    if letter_id and not done.done:
        raise typer.Exit(1)


def _report_skipped(skipped: list[dict[str, str]]) -> None:
    for item in skipped:
        name = item["task_id"] or item["id"]
        err.print(Text(f"skipped {name}: {item['reason']}", style="yellow"))
