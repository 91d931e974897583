"""`fnhub serve`: every role on one machine, on embedded defaults unless told otherwise.

Order matters: the embedded Redis starts first (queued tasks from the last run are still in its
append-only file), or a configured Redis and database are waited for (they may come up after
us), then the schema is migrated and the project applied, then the worker
supervisor starts in its own process, then the HTTP server runs in this process. On SIGTERM/SIGINT
the server stops accepting and finishes in-flight requests, then the supervisor gets its grace
period to finish running tasks, then Redis is shut down (which persists what is still queued).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time

from rich.console import Console

from fnhub.bootstrap import open_services, wait_for_services
from fnhub.config import Settings
from fnhub.embedded_redis import EmbeddedRedis
from fnhub.project import apply_project

log = logging.getLogger(__name__)
console = Console(stderr=True)


def _worker_process(settings_json: str) -> None:
    from fnhub.worker.supervisor import Supervisor

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    Supervisor(Settings.model_validate_json(settings_json)).run()


def _console_hint(settings: Settings, url: str) -> str:
    """Where the web console is and how to sign in to it."""
    password_file = settings.data_dir / "admin_password"
    who = (
        f"as [bold]admin[/bold] with the password in {password_file}"
        if password_file.exists()
        else "with a user from `fnhub users create`"
    )
    return f"web console: [bold]{url}/[/bold]; sign in {who}"


def serve(settings: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir)
        embedded.start()
        console.print(f"embedded Redis on [bold]{embedded.socket}[/bold] (persistent)")
    worker: multiprocessing.process.BaseProcess | None = None
    try:
        if not wait_for_services(settings, stop.is_set):  # a configured one may come up later
            return 0
        services = open_services(settings)
        services.scripts.sync_redis()
        try:
            published = apply_project(settings, services.scripts)
        finally:
            services.close()
        for p in published:
            names = ", ".join(f.ref for f in p.functions)
            console.print(f"script [bold]{p.script}[/bold] v{p.version}: {names}")
        worker = multiprocessing.get_context("spawn").Process(
            target=_worker_process, args=(settings.model_dump_json(),), name="fnhub-worker"
        )
        worker.start()
        if stop.is_set():
            return 0
        from fnhub.server.run import build_server, url_of

        server = build_server(settings)
        failed = threading.Event()

        def watch_worker() -> None:  # a dead supervisor ends the server (and so `serve`)
            while not server.should_exit:
                if not worker.is_alive():
                    log.error("worker supervisor exited with code %s", worker.exitcode)
                    failed.set()
                    server.should_exit = True
                    return
                time.sleep(0.5)

        threading.Thread(target=watch_worker, name="fnhub-watch", daemon=True).start()
        console.print(
            f"fnhub serving project [bold]{settings.project_dir.resolve()}[/bold] on "
            f"[bold]{url_of(settings)}[/bold] with {settings.processes} worker processes; "
            "Ctrl-C to stop"
        )
        console.print(_console_hint(settings, url_of(settings)))
        server.run()  # uvicorn handles SIGTERM/SIGINT: stop accepting, finish in-flight
        return 1 if failed.is_set() or not server.started else 0
    finally:
        if worker is not None and worker.is_alive():
            worker.terminate()
            worker.join(settings.shutdown_grace_seconds + 10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        if embedded is not None:
            embedded.stop()
