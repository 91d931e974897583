"""A subscription's delivery window: how many of its notifications are in flight at once, and
how far its cursor may move.

One notification at a time made a subscription's rate one callback round trip per notification
(a 50 ms callback: 20/s, whatever the hub could do). The window lets `size` notifications be
delivered at once, each with its own attempts and backoff. Two things keep what held before:

- **The cursor** moves only over a finished prefix: notifications finish out of order, and the
  cursor is the last position before which everything is delivered or dead-lettered. A hub killed
  mid-window resends what was in flight (at most `size` notifications), never skips one.
- **Attempts** go out `size` at a time only while the callback answers 2xx; after a failure one
  attempt at a time until one succeeds, so a dead or failing callback holds one connection and
  one slot of `websub_concurrency`, as it did with no window, and cannot crowd out the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator


class Window:
    def __init__(self, size: int, cursor: str) -> None:
        if size < 1:
            raise ValueError("websub_delivery_window must be at least 1")
        self.size = size
        self.cursor = cursor  # everything up to here is finished
        self._open: OrderedDict[str, bool] = OrderedDict()  # position → finished, in read order
        self._attempt_limit = size
        self._attempting = 0
        self._changed = asyncio.Condition()

    def free(self) -> int:
        """Notifications that may start now."""
        return self.size - len(self._open)

    def start(self, position: str) -> None:
        """A notification (the next in read order) is in flight from now on."""
        self._open[position] = False

    def finish(self, position: str) -> str:
        """A notification is delivered or dead-lettered; returns the cursor (moved over the
        finished prefix, or where it was while an earlier one is still in flight)."""
        self._open[position] = True
        while self._open:
            first, done = next(iter(self._open.items()))
            if not done:
                break
            del self._open[first]
            self.cursor = first
        return self.cursor

    @contextlib.asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        """Hold one of the attempts allowed now (`size` while healthy, 1 while failing)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._attempting < self._attempt_limit)
            self._attempting += 1
        try:
            yield
        finally:
            async with self._changed:
                self._attempting -= 1
                self._changed.notify_all()

    async def succeeded(self) -> None:
        async with self._changed:
            self._attempt_limit = self.size
            self._changed.notify_all()

    def failed(self) -> None:
        self._attempt_limit = 1
