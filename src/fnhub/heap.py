"""Keep the garbage collector off the hot path of long-running processes.

A server or worker allocates a few container objects per message, so with CPython's default
thresholds (700, 10, 10) it collects every few hundred messages, and every tenth and hundredth
time it also scans the older generations: every object that survived so far, which in a server
is all of FastAPI, SQLAlchemy, pydantic and the users' modules, alive as long as the process.

- `gc.freeze()` once start-up is done moves those objects where the collector never looks, so
  its scans cover what the hot path made. On the subscription bench it took a fifth off the
  server's CPU per message.
- Higher thresholds then keep the collector from scanning the in-flight work over and over:
  a message's objects live for a few milliseconds, which at 700 allocations per young
  collection is long enough to be scanned several times, promoted, and scanned again by a full
  collection of everything in flight. Measured with `gc.callbacks` in the server on the
  subscription bench (150,000 messages): about 2.2 µs of collector CPU per message with the
  defaults, 0.5 µs with `GC_THRESHOLDS`.
- Cyclic garbage still goes: young cycles within 5,000 allocations, the rest at the next full
  collection, which CPython also runs only once the survivors grew by a quarter.
- A role (`fnhub server`, `worker`, `beat`) starts with the collector paused
  (`pause_for_startup`): while it imports and builds its ~300,000 objects, each collection
  rescans all that survived so far, and what it finds is garbage of a few thousand objects
  (2,700 of 310,000 in a server). Paused, the server's imports and app took 0.25-0.5 s less
  (load 7-9), and the final collection before freezing (0.17-0.35 s) is skipped: those few
  thousand objects are frozen with the rest, once. The pause starts as `fnhub.cli.main` does
  (every role's command line, before its settings), and in the worker's fork server before
  it imports the children's runtime (`fnhub.worker.template`, frozen there, so the children
  it forks share those pages and start frozen).
- Paused is `gc.disable()` with a safety net: a timer thread turns the collector back on after
  `SAFETY_SECONDS` if the role has not frozen by then (an exception path, a role that forgot
  to), so no long-lived process stays without it. Out-of-reach thresholds instead of disabling
  needed no thread, but cost a server ~0.13 s more CPU to `/healthz` (`bench/startup.py`,
  3 runs of 7-9 rounds; not understood). The fork servers (`worker/template.py`,
  `server/preload.py`) pause without the timer: they must stay single-threaded, and freeze
  in the same import that paused, or die.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

GC_THRESHOLDS = (5000, 20, 100)
#: the collector comes back on by then, frozen or not
SAFETY_SECONDS = 60.0

_paused = False
_safety: threading.Timer | None = None
_collections_at_pause = 0


def _collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


def pause_for_startup(*, safety_net: bool = True) -> None:
    """No collections until `freeze_startup_objects` (or `resume`, at the latest
    `SAFETY_SECONDS` from now unless `safety_net` is off): the start-up of a role."""
    global _paused, _safety, _collections_at_pause
    if not _paused:
        _paused = True
        _collections_at_pause = _collections()
    gc.disable()
    if safety_net and _safety is None:
        _safety = threading.Timer(SAFETY_SECONDS, resume)
        _safety.daemon = True
        _safety.name = "gc-safety-net"
        _safety.start()


def _end_pause() -> None:
    global _paused, _safety
    _paused = False
    if _safety is not None:
        _safety.cancel()
        _safety = None


def resume() -> None:
    """The collector on again, for a process that will not call `freeze_startup_objects` (or
    has not yet: the safety net)."""
    if _paused:
        _end_pause()
    gc.enable()


def freeze_startup_objects() -> None:
    """Collect once (unless start-up ran with the collector paused), exempt everything alive
    now from future collections, and collect the objects made from now on less often
    (`GC_THRESHOLDS`)."""
    was_paused = _paused
    if not was_paused and gc.isenabled():
        gc.collect()
    _end_pause()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()
    # (tests read this line to see that a role froze its start-up from outside)
    log.debug(
        "start-up objects frozen: %d; collector on: %s, thresholds %s; collections while "
        "paused: %s",
        gc.get_freeze_count(),
        gc.isenabled(),
        gc.get_threshold(),
        _collections() - _collections_at_pause if was_paused else "not paused",
    )
