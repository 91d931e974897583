"""Entries a worker child has read but not started, and handing them back when a task is slow.

A child reads queue entries in batches (up to `prefetch` at once), because one round trip for
many trivial tasks is most of what makes them cheap. The risk of a batch is a slow task at its
head: the entries behind it would wait for it even while other children sit idle. A watchdog
thread in the child therefore hands the unstarted entries back to the queue once the running
task has run for `HAND_BACK_SECONDS`: in one MULTI it re-adds them at the queue's tail and
acknowledges and deletes the originals, so another child (or this one, later) runs each of them
exactly once. The child and the watchdog take entries under one lock, so an entry is either
started here or handed back, never both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import redis

from fnhub.queue import add_ack

log = logging.getLogger(__name__)

#: how long the running task may hold back the entries read with it
HAND_BACK_SECONDS = 0.5
#: how often the watchdog looks at the running task
CHECK_SECONDS = 0.1

Entry = tuple[str, str, dict[bytes, bytes]]  # stream, entry id, fields


class Prefetch:
    """The unstarted entries of the child's current batch."""

    def __init__(self) -> None:
        self._entries: deque[Entry] = deque()
        self._lock = threading.Lock()

    def fill(self, entries: list[Entry]) -> None:
        with self._lock:
            self._entries.extend(entries)

    def take(self) -> Entry | None:
        """The next entry to run here, or None when the batch is done (or was handed back)."""
        with self._lock:
            return self._entries.popleft() if self._entries else None

    def __len__(self) -> int:
        return len(self._entries)

    def hand_back(self, client: redis.Redis) -> int:
        """Give every unstarted entry back to its queue; returns how many went back."""
        with self._lock:  # held across the MULTI: the child must not start one meanwhile
            if not self._entries:
                return 0
            pipe = client.pipeline(transaction=True)
            by_stream: dict[str, list[str]] = {}
            for stream, entry_id, fields in self._entries:  # read with ">": never without fields
                by_stream.setdefault(stream, []).append(entry_id)
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            for stream, ids in by_stream.items():
                add_ack(pipe, stream, *ids)
            pipe.execute()  # raises: the entries stay here and run after the slow task
            n = len(self._entries)
            self._entries.clear()
            return n


class HandBack(threading.Thread):
    """The child's watchdog: hands its prefetched entries back while a slow task runs.

    It stops for good once `alive()` is false (the supervisor died): another supervisor then
    releases the child's pending entries, and two releases of one entry would run it twice."""

    def __init__(
        self,
        prefetch: Prefetch,
        client: redis.Redis,
        running_since: Callable[[], float | None],
        alive: Callable[[], bool],
    ) -> None:
        super().__init__(name="fnhub-hand-back", daemon=True)
        self.prefetch = prefetch
        self.client = client
        self.running_since = running_since
        self.alive = alive
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(CHECK_SECONDS):
            if not self.alive():  # orphaned: another worker is about to release our entries
                return
            since = self.running_since()
            if since is None or not len(self.prefetch) or time.time() - since < HAND_BACK_SECONDS:
                continue
            try:
                n = self.prefetch.hand_back(self.client)
            except redis.RedisError as exc:
                log.warning("cannot hand back prefetched entries: %s", exc)
                continue
            if n:
                log.info("handed %d prefetched entries back to the queue behind a slow task", n)

    def stop(self) -> None:
        self.stopped.set()
