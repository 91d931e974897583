"""`fnhub serve`: every role on one machine, on embedded defaults unless told otherwise.

Order matters: the embedded Redis starts first (queued tasks from the last run are still in its
append-only file), then the schema is migrated and the project applied, then the worker
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

from fnhub.apply_cli import report_lines
from fnhub.bootstrap import open_services
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
        services = open_services(settings)
        services.scripts.sync_redis()
        try:
            report = apply_project(settings, services.scripts)
        finally:
            services.close()
        for line in report_lines(report):
            console.print(line, soft_wrap=True, highlight=False)
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
