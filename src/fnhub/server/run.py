"""Running the server with uvicorn (uvloop + httptools), standalone or inside `fnhub serve`.

uvicorn's own SIGINT/SIGTERM handling gives the graceful part: stop accepting, let in-flight
requests finish (up to `shutdown_grace_seconds`), then run the lifespan shutdown.
"""

from __future__ import annotations

import logging

import uvicorn

from fnhub.config import Settings
from fnhub.server.app import create_app


def build_server(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Server:
    # never-ending responses (the console's event streams) end once shutdown begins, rather
    # than holding it up for the whole grace period
    app = create_app(settings, url=url_of(settings, host, port), exiting=lambda: server.should_exit)
    config = uvicorn.Config(
        app,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,  # ours is structured (fnhub.access)
        log_level="warning",
        # JSON logs: uvicorn's own loggers go through the root logger's JSON handler
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
    server = uvicorn.Server(config)
    return server


def url_of(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    return f"http://{host or settings.host}:{port if port is not None else settings.port}"


def run_server(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """`fnhub server`: migrate the schema, then serve until SIGTERM/SIGINT."""
    from fnhub.store.db import Database

    db = Database(settings.resolved_db_url())
    db.migrate()
    db.dispose()
    log = logging.getLogger("fnhub.server")
    log.info("serving on %s", url_of(settings, host, port))
    if settings.http_processes == 1:
        build_server(settings, host=host, port=port).run()
        return
    from fnhub.heap import freeze_startup_objects
    from fnhub.server.processes import HttpProcesses

    freeze_startup_objects()  # this process supervises; each HTTP process freezes its own

    address = {"host": host or settings.host, "port": settings.port if port is None else port}
    settings = settings.model_copy(update=address)
    log.info("with %d HTTP processes", settings.http_processes)
    HttpProcesses(settings, settings.http_processes).run()
