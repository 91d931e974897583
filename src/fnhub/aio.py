"""asyncio helpers that hold under cancellation on Python 3.11.

`asyncio.wait_for` on 3.11 can lose a cancel that arrives as its inner wait completes (fixed in
3.12 by rebuilding it on `asyncio.timeout`); a service loop that lost its cancel never stops and
hangs the server's shutdown. `asyncio.timeout` keeps the cancel, so loops wait with it.
"""

from __future__ import annotations

import asyncio
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
