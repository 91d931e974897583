"""Processes that die with their parent: Linux's parent-death signal (`PR_SET_PDEATHSIG`).

A process killed with SIGKILL runs no clean-up, so the processes it started would live on,
orphaned: a worker child would keep running tasks nobody supervises, a second `fnhub serve`
would find the first one's embedded Redis still holding its socket. With the parent-death
signal the kernel signals the child itself when its parent goes, however the parent went.

The kernel ties the signal to the parent *thread* that started the child: a process must be
started from a thread that outlives it (the main thread, or a thread that joins it). Elsewhere
than on Linux this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: looked up now, not after a fork (where the dynamic loader's locks may be held)
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when its parent dies; if `parent_pid` (the
    parent it was started by) is already gone, exit at once (it died before we got here)."""
    if _prctl is None:
        return
    if _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:
        os._exit(1)


def parent_death_hook(sig: int) -> Callable[[], None]:
    """A `subprocess.Popen(preexec_fn=...)` that gives the new program `sig` when the process
    calling Popen dies (async-signal-safe enough: one prctl and one getppid after fork)."""
    parent_pid = os.getpid()
    return lambda: die_with_parent(parent_pid, sig)
