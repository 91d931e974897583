"""Starting a process with multiprocessing's spawn (worker children, `fnhub serve`'s worker
supervisor) without running the parent's `__main__` again in it.

A spawned process first runs its parent's `__main__` module again (as `__mp_main__`), in case
its target was defined there. Ours never are: they live in fnhub's modules, which the child
imports anyway to unpickle its target. A role started as `fnhub ...` (the console script) or
`python -m fnhub.cli` has the command line as its `__main__`: typer, rich and every command's
options, about 0.1 s of CPU in each child for nothing, paid again by every replacement of a
dead child. `start` hides the parent's `__main__` while the child's start-up data is gathered,
as a parent started with `python -c` (which has no main module to run again) would.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import types
from multiprocessing.process import BaseProcess

SPAWN = multiprocessing.get_context("spawn")
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
