"""A broker that lives in the process: named topics, durable consumer groups, ack after done.

It behaves like the reliable brokers fnhub connects to, so the subscription runner can be
tested without one: a group exists from its first subscription on and queues what is published
to its topics from then on; each message goes to one member of the group; a message that was
not acked (handler failed, or the source stopped first) goes back to the head of the queue,
marked redelivered. Publishing is thread-safe (scripts publish from other threads).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from dataclasses import dataclass, field

_lock = threading.Lock()
_brokers: dict[str, MemoryBroker] = {}


@dataclass(slots=True)
class Entry:
    id: int
    topic: str
    payload: bytes
    at: float
    redelivered: bool = False


@dataclass(slots=True)
class Group:
    topics: set[str]
    queue: collections.deque[Entry] = field(default_factory=collections.deque)
    unacked: dict[int, Entry] = field(default_factory=dict)
    wakers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)


class MemoryBroker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.groups: dict[str, Group] = {}
        self._ids = itertools.count(1)

    def subscribe(self, group: str, topics: list[str], event: asyncio.Event) -> None:
        """Join (or create) `group` for `topics`; `event` is set when there is something to read."""
        loop = asyncio.get_running_loop()
        with _lock:
            g = self.groups.setdefault(group, Group(set()))
            g.topics.update(topics)
            g.wakers.append((loop, event))
            if g.queue:
                event.set()

    def leave(self, group: str, event: asyncio.Event) -> None:
        with _lock:
            g = self.groups.get(group)
            if g is not None:
                g.wakers = [(lp, ev) for lp, ev in g.wakers if ev is not event]

    def publish(self, topic: str, payload: bytes) -> None:
        with _lock:
            entry_id = next(self._ids)
            targets = [g for g in self.groups.values() if topic in g.topics]
            for g in targets:
                g.queue.append(Entry(entry_id, topic, payload, time.time()))
            wake = [w for g in targets for w in g.wakers]
        for loop, event in wake:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def take(self, group: str, n: int) -> list[Entry]:
        """Up to `n` entries for one member; they stay unacked until `ack` or `give_back`."""
        with _lock:
            g = self.groups[group]
            out: list[Entry] = []
            while g.queue and len(out) < n:
                entry = g.queue.popleft()
                g.unacked[entry.id] = entry
                out.append(entry)
            return out

    def ack(self, group: str, entry_id: int) -> None:
        with _lock:
            self.groups[group].unacked.pop(entry_id, None)

    def give_back(self, group: str, ids: list[int]) -> None:
        """Unacked entries go back to the head of the queue, in order, marked redelivered."""
        with _lock:
            g = self.groups[group]
            back = [g.unacked.pop(i) for i in sorted(ids) if i in g.unacked]
            for entry in reversed(back):
                entry.redelivered = True
                g.queue.appendleft(entry)
            wake = list(g.wakers) if back else []
        for loop, event in wake:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def pending(self, group: str) -> tuple[int, int]:
        """(queued, unacked) of `group`."""
        with _lock:
            g = self.groups.get(group)
            return (len(g.queue), len(g.unacked)) if g else (0, 0)


def broker(name: str) -> MemoryBroker:
    with _lock:
        found = _brokers.get(name)
        if found is None:
            found = _brokers[name] = MemoryBroker(name)
        return found
