"""asyncio helpers that hold under cancellation on Python 3.11.

`asyncio.wait_for` on 3.11 can lose a cancel that arrives as its inner wait completes (fixed in
3.12 by rebuilding it on `asyncio.timeout`); a service loop that lost its cancel never stops and
hangs the server's shutdown. `asyncio.timeout` keeps the cancel, so loops wait with it.

`start_default_executor` starts the threads of a loop's default executor at once, before a
server serves, rather than one by one on the event loop as its first requests need them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Iterable


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set or `timeout` seconds passed; True if it was set."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], timeout: float = 5.0) -> None:
    """Cancel tasks and wait for them to end, cancelling again the ones that ignored the first
    cancel (library code can lose one too), so a shutdown cannot hang on a task."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(3):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=timeout)


def default_threads() -> int:
    """How many threads `ThreadPoolExecutor` gets when given no number (Python 3.8+)."""
    return min(32, (os.cpu_count() or 1) + 4)


async def start_default_executor(threads: int | None = None) -> int:
    """Give the running loop a default executor (`asyncio.to_thread`, `run_in_executor(None)`)
    whose threads all run already; how many.

    An executor starts a thread when work arrives and none is idle, and `Thread.start` waits
    until the new thread runs: on a busy machine a wait for the scheduler, on the event loop,
    of up to 0.3 s each in the first requests of a server that just started (issue 23; one
    thread per lookup the first requests do at once, up to the executor's size). Started here,
    before the port opens, no request waits for one."""
    count = threads or default_threads()
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="fnhub-io")
    loop.set_default_executor(executor)
    gate = threading.Event()
    # every thread started so far waits at the gate, none is idle: each call starts one more
    waiting = [loop.run_in_executor(None, gate.wait) for _ in range(count)]
    gate.set()
    await asyncio.gather(*waiting)
    return count
