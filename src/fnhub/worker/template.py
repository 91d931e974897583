"""What a worker's fork server imports once, before it forks every child (`spawning.FORK`).

Spawned, each worker child started a Python of its own and imported fnhub's runtime again
(pydantic-settings for `Settings`, redis-py, the executor: about 0.3 s of CPU), and so did each
replacement of a dead child. Forked from a process that imported them once, a child costs a
fork. That process is multiprocessing's fork server, started by the supervisor (an `exec` of
Python: it inherits no thread, connection or event loop of the supervisor's) with this module
as its only preload. Importing it must leave the process as it found it but for the modules:
no thread, no socket, no event loop (`check_clean`, run on import: the fork server stops at once
otherwise, and the supervisor with it). After the preload the fork server runs only its loop of
accept and `fork` on its main thread.

The fork server ignores SIGTERM, as the children do: systemd sends it to every process of the
service, and the supervisor decides when its children stop (`shutdown_grace_seconds`). It
exits with the supervisor (the "alive" pipe it reads ends; see `spawning.leave_fork_server`),
and its children, which die with their parent, with it.
"""

from __future__ import annotations

import os
import signal
import threading

from fnhub import heap

# it imports ~100,000 objects, then freezes them for every child (no timer: one thread only)
heap.pause_for_startup(safety_net=False)

import fnhub.worker.child  # noqa: E402, F401  # the child's runtime: Settings, redis-py, executor


def check_clean() -> None:
    """Raise unless this process has one thread, no event loop and no socket but the fork
    server's own listener (an AF_UNIX one) and its standard streams (journald's, under
    systemd): a fork copies neither another thread nor a connection safely, and a loop's
    selector and wake-up sockets would be shared."""
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1 or threading.active_count() != 1:
        raise RuntimeError(f"a worker's fork server must be single-threaded, has {threads}")
    open_files = _open_files()
    if any("eventpoll" in f for f in open_files):
        raise RuntimeError("a worker's fork server must have no event loop")
    sockets = [f for f in open_files if f.startswith("socket:")]
    with open("/proc/self/net/unix") as f:
        local = {f"socket:[{line.split()[6]}]" for line in f.readlines()[1:]}
    if len(sockets) > 1 or any(s not in local for s in sockets):
        raise RuntimeError(f"a worker's fork server must hold no connection: {sockets}")


def _open_files() -> list[str]:
    """What each file descriptor past the standard streams is ("socket:[inode]", "pipe:[...]",
    ...)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) <= 2:
            continue
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # (the listing's own descriptor, closed by now)
    return found


signal.signal(signal.SIGTERM, signal.SIG_IGN)
check_clean()
heap.freeze_startup_objects()  # forked children share these pages and start with them frozen
