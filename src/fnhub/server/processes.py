"""`fnhub server --workers N`: N HTTP processes on one port, since one process is the ceiling.

Each process is a whole server, as if N `fnhub server`s ran on the machine: its own app,
caller (reply stream), presence entry and background services. Every service is already made
for many servers: the cron beat fires only while it holds the leadership lease, `single`
subscriptions only while their lease is held, the WebSub hub shares subscriptions by claims,
presence lets `fnhub apply` wait for each process to reload, metrics are counted per process
and added to the cluster-wide `<prefix>:stats`, and the store purge is idempotent. So nothing
runs twice; what differs per process is only its name: process `i` (slot) of a machine is node
`<node>` for slot 0 and `<node>-<i>` for the others, so `multiple` subscriptions get one broker
client id (MQTT session, Redis Streams consumer) per slot, kept by the slot's next process.

The supervisor binds one SO_REUSEPORT listening socket per slot and keeps them all open: the
kernel spreads connections over the slots evenly, and connections that arrive for a slot whose
process died wait in its backlog for the replacement instead of being refused. A process that
dies is started again after a backoff (logged, counted as loop `http-process` in
`fnhub_loop_restarts_total`); SIGTERM/SIGINT stop them all (each finishes its requests within
`shutdown_grace_seconds`, then is killed); they get SIGTERM if the supervisor dies
(`parent_death`, through the fork server they are forked from, which exits with the
supervisor).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import socket
import threading
from multiprocessing.process import BaseProcess

from fnhub import spawning
from fnhub.config import Settings
from fnhub.heap import pause_for_startup
from fnhub.parent_death import die_with_parent
from fnhub.supervised import RestartCounter, end_process, start_thread, thread_counter

log = logging.getLogger(__name__)

#: processes fork from a server that imported the app once (about 2 s of CPU per process
#: otherwise), so a replacement serves within a second of its start rather than after an
#: interpreter start-up and every import; the fork server is single-threaded, so forking is safe
_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(["fnhub.server.preload"])
_WATCH_SECONDS = 0.2
BACKLOG = 2048
STARTUP_FAILURE = 3


class HttpProcessDied(RuntimeError):
    """An HTTP process ended while nobody asked it to."""


def slot_settings(settings: Settings, slot: int) -> Settings:
    """The settings of slot `slot`'s process: its own node name past slot 0."""
    if slot == 0:
        return settings
    node = settings.node_name or socket.gethostname()
    return settings.model_copy(update={"node_name": f"{node}-{slot}"})


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address (SO_REUSEPORT); OSError if it is taken."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _http_process(settings_json: str, sock: socket.socket) -> None:
    pause_for_startup()  # until the lifespan froze what start-up made
    from fnhub.log_setup import configure_logging
    from fnhub.server.run import build_server

    # our parent is the fork server, which exits when the supervisor does (however it died),
    # once no process holds its "supervisor alive" pipe: ours, which multiprocessing hands every
    # child for starting processes of its own, is closed. Then: finish requests, leave
    # presence, exit
    spawning.leave_fork_server()
    die_with_parent(os.getppid(), signal.SIGTERM)
    settings = Settings.model_validate_json(settings_json)
    configure_logging(logging.INFO, settings.log_format)
    server = build_server(settings)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


class HttpProcesses:
    """Keeps `count` HTTP processes serving `settings.host:port` until `stop()` or a signal."""

    def __init__(
        self, settings: Settings, count: int, counter: RestartCounter | None = None
    ) -> None:
        self.settings = settings
        self.count = count
        self.counter = counter or thread_counter(settings)
        self.sockets: list[socket.socket] = []
        self.processes: dict[int, BaseProcess] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Bind (OSError if the port is taken) and start every slot's process."""
        self.sockets = bind_sockets(self.settings.host, self.settings.port, self.count)
        for slot in range(self.count):
            self._threads.append(
                start_thread(
                    "http-process",
                    functools.partial(self._run_one, slot),
                    stopped=self._stopping.is_set,
                    counter=self.counter,
                )
            )

    def run(self) -> None:
        """`start()`, then wait for SIGTERM/SIGINT (or `stop()` from elsewhere), then stop all."""
        previous = {
            sig: signal.signal(sig, lambda *_: self._stopping.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            while not self._stopping.wait(1.0):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run_one(self, slot: int) -> None:
        """Start slot `slot`'s process and watch it; raises HttpProcessDied if it ends."""
        settings = slot_settings(self.settings, slot)
        process = _ctx.Process(
            target=_http_process,
            args=(settings.model_dump_json(), self.sockets[slot]),
            name=f"fnhub-http-{slot}",
        )
        process.start()
        self.processes[slot] = process
        log.info("HTTP process %d started (pid %s)", slot, process.pid)
        try:
            while not self._stopping.is_set():
                process.join(_WATCH_SECONDS)
                if process.exitcode is not None:
                    raise HttpProcessDied(
                        f"HTTP process {slot} (pid {process.pid}) exited with code "
                        f"{process.exitcode}"
                    )
        finally:
            self._end(process)

    def _end(self, process: BaseProcess) -> None:
        """SIGTERM: it stops accepting and finishes its requests within the grace; then
        SIGKILL."""
        end_process(process, self.settings.shutdown_grace_seconds)

    def stop_soon(self) -> None:
        """Have `run()` stop them all (from any thread)."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop every process (each within its grace period) and wait for them."""
        self._stopping.set()
        for process in list(self.processes.values()):  # all at once, not one grace each
            if process.is_alive():
                process.terminate()
        for thread in self._threads:
            thread.join()
        for sock in self.sockets:
            sock.close()
        self.sockets = []
