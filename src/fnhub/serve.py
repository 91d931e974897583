"""`fnhub serve`: every role on one machine, on embedded defaults unless told otherwise.

Order matters: the embedded Redis starts first (queued tasks from the last run are still in its
append-only file), or a configured Redis and database are waited for (they may come up after
us), then the schema is migrated and the project applied, then the worker supervisor starts in
its own process (started again if it dies, `serve_worker.py`), then the HTTP server runs in this
process. On SIGTERM/SIGINT the server stops accepting and finishes in-flight requests, then the
supervisor gets its grace period to finish running tasks, then Redis is shut down (which
persists what is still queued). Redis and the supervisor (and so its children) die with `serve`
even when it is SIGKILLed (`parent_death.py`).

While it runs, the console shows each failed task (rate-limited, `serve_console.py`) and, with
`--reload`, what publishing a changed script did (`script_reload.py`); the last line says how
many tasks finished and failed.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading

from rich.console import Console

from fnhub.bootstrap import open_services, wait_for_services
from fnhub.config import Settings
from fnhub.embedded_redis import EmbeddedRedis
from fnhub.features import FEATURES
from fnhub.heap import freeze_startup_objects
from fnhub.keys import Keys
from fnhub.log_setup import LogLines
from fnhub.project import PartlyApplied, apply_project
from fnhub.redis_client import sync_redis
from fnhub.script_reload import ScriptReloader
from fnhub.serve_worker import ServeWorker
from fnhub.supervised import start_thread, thread_counter

log = logging.getLogger(__name__)
console = Console(stderr=True)


def _console_hint(settings: Settings, url: str, *, when: str = "") -> str:
    """Where the web console is and how to sign in to it (`when`: while it is there, for the
    line that ends a run)."""
    password_file = settings.data_dir / "admin_password"
    who = (
        f"as [bold]admin[/bold] with the password in {password_file}"
        if password_file.exists()
        else "with a user from `fnhub users create`"
    )
    return f"web console{when}: [bold]{url}/[/bold]; sign in {who}"


def _say(line: str) -> None:
    """One console line, never wrapped (a failure line stays one line in a narrow terminal)."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _javascript_without_node(
    settings: Settings, active: dict[str, tuple[str, str, str]]
) -> str | None:
    """What to tell when JavaScript scripts are published but this machine has no usable Node
    (their tasks would fail here one by one), or None."""
    from fnhub.node.locate import NodeNotFound, find_node
    from fnhub.scripts.languages import JAVASCRIPT

    scripts = sorted(name for name, (_, _, lang) in active.items() if lang == JAVASCRIPT)
    if not scripts:
        return None
    try:
        find_node(settings.node_path)
    except NodeNotFound as exc:
        return (
            f"JavaScript scripts are published ({', '.join(scripts)}) but this machine cannot "
            f"run them: {exc}. Their tasks fail here with NodeUnavailable."
        )
    return None


def serve(settings: Settings, *, reload: bool = False) -> int:
    """Run until SIGTERM/SIGINT; `reload`: publish scripts/ whenever a file in it changes."""
    from fnhub.apply_cli import refusal_lines, report_lines
    from fnhub.scripts.inspect import ScriptError
    from fnhub.serve_console import FailureFeed, Tally

    if settings.log_format == "json":  # its lines for people become log records too, unwrapped
        console.file = LogLines(log)
        console.soft_wrap = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir)
        try:
            embedded.start()
        except RuntimeError as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            return 1
        console.print(f"embedded Redis on [bold]{embedded.socket}[/bold] (persistent)")
    worker: ServeWorker | None = None
    watching = threading.Event()  # set: the console threads stop
    threads: list[threading.Thread] = []
    tally: Tally | None = None
    last_line = "fnhub stopped"
    try:
        if not wait_for_services(settings, stop.is_set):  # a configured one may come up later
            return 0
        services = open_services(settings)
        services.scripts.sync_redis()
        try:
            report = apply_project(settings, services.scripts, FEATURES)
            without_node = _javascript_without_node(settings, services.scripts.active_code())
        except (ScriptError, ValueError) as exc:
            lines = (
                refusal_lines(exc)
                if isinstance(exc, PartlyApplied)
                else [f"[red]error:[/red] {exc}"]
            )
            for line in lines:
                console.print(line, soft_wrap=True, highlight=False)
            console.print("fix it, then start `fnhub serve` again")
            return 1
        finally:
            services.close()
        if without_node:
            console.print(f"[yellow]warning:[/yellow] {without_node}", soft_wrap=True)
        for line in report_lines(report):
            console.print(line, soft_wrap=True, highlight=False)
        feed_redis = sync_redis(settings, socket_timeout=30)
        tally = Tally(feed_redis, Keys(settings.key_prefix))
        tally.start()
        feed = FailureFeed(feed_redis, Keys(settings.key_prefix), _say)
        feed.start_at_end()
        counter = thread_counter(settings)
        loops = {"serve-failures": functools.partial(feed.run, watching)}
        if reload:
            loops["serve-reload"] = functools.partial(ScriptReloader(settings, _say).run, watching)
        for loop, target in loops.items():
            threads.append(start_thread(loop, target, stopped=watching.is_set, counter=counter))
        from fnhub.server.processes import HttpProcesses
        from fnhub.server.run import build_server, url_of

        server = build_server(settings) if settings.http_processes == 1 else None
        processes = None if server else HttpProcesses(settings, settings.http_processes, counter)

        def stop_serving() -> None:
            if server is not None:
                server.should_exit = True
            if processes is not None:
                processes.stop_soon()

        # a supervisor told to stop (Ctrl-C reaches the whole process group) stops us too
        worker = ServeWorker(settings, counter, on_stopped=stop_serving)
        worker.start()
        if stop.is_set():
            return 0
        reloading = "; publishing scripts/ as files change" if reload else ""
        http = f" ({settings.http_processes} HTTP processes)" if processes else ""
        console.print(
            f"fnhub serving project [bold]{settings.project_dir.resolve()}[/bold] on "
            f"[bold]{url_of(settings)}[/bold]{http} with {settings.processes} worker processes"
            f"{reloading}; failed tasks show here; Ctrl-C to stop",
            soft_wrap=True,
        )
        console.print(_console_hint(settings, url_of(settings)), soft_wrap=True)
        if processes is not None:
            freeze_startup_objects()  # (one HTTP process: its lifespan does, `fnhub.heap`)
            processes.run()  # SIGTERM/SIGINT: each process finishes its requests
            return 0
        assert server is not None
        server.run()  # uvicorn handles SIGTERM/SIGINT: stop accepting, finish in-flight
        return 0 if server.started else 1
    finally:
        if worker is not None:
            worker.stop()
        watching.set()  # the feed prints what the worker's last tasks left, then ends
        for thread in threads:
            thread.join(5)
        if tally is not None:
            last_line = tally.summary()
        if embedded is not None:
            embedded.stop()
        _say(last_line)
        if tally is not None:  # it served: say where to come back to
            hint = _console_hint(settings, url_of(settings), when=" (while `fnhub serve` runs)")
            console.print(hint, soft_wrap=True)
