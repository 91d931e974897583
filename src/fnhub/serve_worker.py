"""`fnhub serve`'s worker supervisor, in a process of its own that is started again if it dies.

A supervisor that dies (SIGKILL, the OOM killer, a crash) takes its children with it (they die
with their parent, `fnhub.parent_death`) and is started again under
`fnhub.supervised.run_restarting` (logged, backed off, counted as loop `serve-worker` in
`fnhub_loop_restarts_total`); the new one's dead-worker release hands the tasks they held back
to the queue once the old heartbeat expires. One that exits with code 0 was told to stop
(SIGTERM, or Ctrl-C, which reaches the whole process group): `on_stopped` is called and it is
not started again. The supervisor dies with `serve` in turn.

One thread starts, watches and stops every supervisor process: the kernel's parent-death
signal follows the thread that started a process, so that thread must outlive it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from fnhub import spawning
from fnhub.config import Settings
from fnhub.heap import pause_for_startup
from fnhub.parent_death import die_with_parent
from fnhub.supervised import RestartCounter, end_process, start_thread

log = logging.getLogger(__name__)

_ctx = spawning.SPAWN
_WATCH_SECONDS = 0.2


class SupervisorDied(RuntimeError):
    """The worker supervisor process ended while nobody asked it to."""


def _worker_process(settings_json: str, serve_pid: int, level: int) -> None:
    pause_for_startup()  # until the supervisor froze what start-up made
    from fnhub.log_setup import configure_logging
    from fnhub.worker.supervisor import Supervisor

    die_with_parent(serve_pid)
    settings = Settings.model_validate_json(settings_json)
    configure_logging(level, settings.log_format)  # serve's own (`log_setup.serve_level`)
    Supervisor(settings).run()


class ServeWorker:
    """Keeps one worker supervisor process running until `stop()`."""

    def __init__(
        self, settings: Settings, counter: RestartCounter, on_stopped: Callable[[], object]
    ) -> None:
        self.settings = settings
        self.counter = counter
        self.on_stopped = on_stopped
        self.process: BaseProcess | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = start_thread(
            "serve-worker", self._run_one, stopped=self._stopping.is_set, counter=self.counter
        )

    def _run_one(self) -> None:
        """Start a supervisor and watch it; raises SupervisorDied if it dies."""
        process = _ctx.Process(
            target=_worker_process,
            args=(self.settings.model_dump_json(), os.getpid(), logging.getLogger().level),
            name="fnhub-worker",
        )
        spawning.start(process)
        self.process = process
        try:
            while not self._stopping.is_set():
                process.join(_WATCH_SECONDS)
                if process.exitcode == 0:
                    log.info("worker supervisor %s stopped: stopping", process.pid)
                    self.on_stopped()
                    return
                if process.exitcode is not None and not self._stopping.is_set():
                    # (a stop that raced the join: a signal to the whole group can end a
                    # supervisor still starting, before its own handler is in place)
                    raise SupervisorDied(
                        f"worker supervisor {process.pid} exited with code {process.exitcode}"
                    )
        finally:
            self._end(process)

    def _end(self, process: BaseProcess) -> None:
        """SIGTERM: its running tasks get the grace period; then SIGKILL."""
        end_process(process, self.settings.shutdown_grace_seconds)

    def stop(self) -> None:
        """Stop the supervisor (after its grace period) and wait for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
