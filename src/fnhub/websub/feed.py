"""One reader per topic and server: the fan-out reads the topic's store once per batch and hands
the notifications to every local deliverer of that topic, instead of each deliverer polling the
store (500 subscribers would mean 500 reads per publish).

The feed keeps a window of recent notifications in memory. A deliverer whose cursor is inside the
window reads from it; one that is behind (after a restart, or held up by retries) reads the store
itself until it catches up. Positions are compared with the store's `order` key.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from fnhub.aio import wait_event
from fnhub.supervised import spawn
from fnhub.websub.store import Notification, NotificationStore

log = logging.getLogger("fnhub.websub")

FEED_READ = 500
FEED_WINDOW = 2_000  # notifications kept in memory per topic
FEED_WINDOW_BYTES = 32_000_000
FEED_POLL_SECONDS = 5.0  # re-read even without a wake-up event (covers lost pub/sub messages)


class TopicFeed:
    def __init__(
        self, store: NotificationStore, topic_hash: str, on_new: Callable[[], None]
    ) -> None:
        self.store = store
        self.topic_hash = topic_hash
        self.on_new = on_new  # wakes the topic's deliverers
        self.notes: list[Notification] = []
        self.keys: list[Any] = []  # store order keys of `notes`
        self.size = 0
        self.base: Any = None  # order key of the position just before `notes[0]`
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = spawn("websub-feed", self._run, label=self.topic_hash[:8])

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        # (re)started: what the window held may be followed by a gap, so it starts empty
        self.notes, self.keys, self.size, self.base = [], [], 0, None
        last = await self.store.end(self.topic_hash)
        self.base = self.store.order(last)
        self.on_new()  # deliverers that started before the window existed read again
        while True:
            await wait_event(self.wake, FEED_POLL_SECONDS)
            self.wake.clear()
            try:
                got = False
                while True:
                    batch = await self.store.read(self.topic_hash, last, FEED_READ)
                    if batch:
                        self._extend(batch)
                        last = batch[-1].id
                        got = True
                    if len(batch) < FEED_READ:
                        break
                if got:
                    self.on_new()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis/Kafka hiccup: the next wake-up or poll retries
                log.warning("websub feed of %s failed to read: %s", self.topic_hash[:8], exc)
                await asyncio.sleep(0.5)

    def _extend(self, batch: list[Notification]) -> None:
        for note in batch:
            self.notes.append(note)
            self.keys.append(self.store.order(note.id))
            self.size += len(note.body)
        drop = 0
        while len(self.notes) - drop > FEED_WINDOW or (
            self.size > FEED_WINDOW_BYTES and len(self.notes) - drop > 1
        ):
            self.size -= len(self.notes[drop].body)
            drop += 1
        if drop:
            self.base = self.keys[drop - 1]
            del self.notes[:drop]
            del self.keys[:drop]

    def window(self, cursor: str, count: int) -> list[Notification] | None:
        """Notifications after `cursor` from memory; None when the cursor is behind the window."""
        if self.base is None:
            return None
        key = self.store.order(cursor)
        if key < self.base:
            return None
        i = bisect.bisect_right(self.keys, key)
        return self.notes[i : i + count]
