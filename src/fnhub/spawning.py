"""Starting a process with multiprocessing (spawned: `fnhub serve`'s worker supervisor; forked
from a fork server: worker children) without running the parent's `__main__` again in it.

A spawned process first runs its parent's `__main__` module again (as `__mp_main__`), in case
its target was defined there. Ours never are: they live in fnhub's modules, which the child
imports anyway to unpickle its target. A role started as `fnhub ...` (the console script) or
`python -m fnhub.cli` has the command line as its `__main__`: typer, rich and every command's
options, about 0.1 s of CPU in each child for nothing, paid again by every replacement of a
dead child. `start` hides the parent's `__main__` while the child's start-up data is gathered,
as a parent started with `python -c` (which has no main module to run again) would. A child of
the fork server gets the same start-up data (`sys.path`, the working directory, `__main__`).

Worker children fork from a fork server (`FORK`, `fork_server`) that imported their modules
once (`fnhub.worker.template`). Their parent is that server, not the supervisor: they die with
it (`parent_death`), and it exits with the supervisor, once nobody else holds its "alive" pipe,
which multiprocessing hands every child it forks: `leave_fork_server` closes the child's.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import sys
import threading
import types
from multiprocessing.process import BaseProcess
from typing import Any

SPAWN = multiprocessing.get_context("spawn")
FORK = multiprocessing.get_context("forkserver")
_NO_MAIN = types.ModuleType("__main__")  # no file, no spec: nothing for a child to run
_lock = threading.Lock()  # two threads starting children do not restore each other's swap


def start(process: BaseProcess) -> None:
    """`process.start()` for a process of the spawn context whose target is not in
    `__main__`: the child imports what its target needs, not the parent's command line."""
    with _lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = _NO_MAIN
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main


def fork_server(preload: str) -> int:
    """The pid of this process's fork server, started (importing module `preload`) if it is
    not running: a child forked next has it as its parent."""
    FORK.set_forkserver_preload([preload])  # (read only when the server starts)
    server: Any = multiprocessing.forkserver._forkserver
    server.ensure_running()
    pid: int = server._forkserver_pid
    return pid


def leave_fork_server() -> None:
    """In a process forked by a fork server: close its copy of the server's "alive" pipe, so
    the server exits when the process that started it does, whoever else it forked."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        os.close(alive_fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]  # present: read above
