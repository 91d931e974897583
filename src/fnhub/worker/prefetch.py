"""Tasks a worker child has read but not started, and what the child does while a task is slow.

A child reads queue entries in batches (up to `prefetch` at once), and a bundle entry holds many
tasks, because one round trip for many trivial tasks is most of what makes them cheap. The risk
of a batch is a slow task at its head: the tasks behind it would wait for it even while other
children sit idle. A watchdog thread in the child therefore hands the unstarted tasks back to
the queue once the running task has run for `HAND_BACK_SECONDS`: in one MULTI it re-adds them
at the queue's tail and acknowledges and deletes the entries they came from, so another child
(or this one, later) runs each of them exactly once. A bundle whose first tasks already ran
here stays this child's: the hand back records in `keys.bundles` how many of its tasks it kept.
Sooner, after `CHECK_SECONDS`, the watchdog sends the results of the tasks that finished before
the slow one, which would otherwise wait for it, and names the slow one in the child's slot for
the supervisor's heartbeat (`fnhub cluster` shows which child runs what).

The child and the watchdog share one lock: the child takes a task, and clears its slot and
settles the task, under it, so a task is either started here or handed back, never both, and a
bundle is acknowledged by exactly one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import redis

from fnhub.keys import Keys
from fnhub.queue import add_ack, add_bundle, bundle_envelopes, bundle_field
from fnhub.supervised import RestartCounter, run_restarting
from fnhub.tasks import Task

log = logging.getLogger(__name__)

#: how long the running task may hold back the tasks read with it
HAND_BACK_SECONDS = 0.5
#: how often the watchdog looks at the running task; the results finished before a task that
#: runs this long are sent while it runs
CHECK_SECONDS = 0.1

Entry = tuple[str, str, dict[bytes, bytes]]  # stream, entry id, fields


@dataclass(slots=True, eq=False)
class Bundle:
    """A bundle entry this child runs: its tasks, how many it keeps, how many are settled."""

    stream: str
    entry_id: str
    envelopes: list[msgspec.Raw]
    end: int  # tasks kept here; the ones past it were handed back
    settled: int = 0  # tasks whose outcome is with the Finisher
    written: bool = False  # whether `keys.bundles` holds fields of this entry
    done_field: str = ""  # its `keys.bundles` field for the count of finished tasks

    def __post_init__(self) -> None:
        self.done_field = bundle_field("done", self.stream, self.entry_id)


class Item(NamedTuple):
    """One task to run: a plain entry (its fields, no bundle, index 0) or one task of a bundle
    entry (its envelope, the bundle and its index there)."""

    stream: str
    entry_id: str
    payload: Any  # the entry's fields, or the bundled task's envelope
    bundle: Bundle | None
    task_index: int  # not `index`: that is tuple.index
    task: Task | None = None  # decoded when it was taken ahead: not decoded again in its turn


def items_of(entries: list[Entry]) -> list[Item]:
    """The tasks of the entries read, in order; a malformed bundle stays one item with its
    fields, discarded when its turn comes (or handed back unchanged), like a malformed entry."""
    items: list[Item] = []
    for stream, entry_id, fields in entries:
        value = fields.get(b"b")
        if value is None:
            items.append(Item(stream, entry_id, fields, None, 0))
            continue
        try:
            envelopes = bundle_envelopes(value)
        except msgspec.DecodeError:
            envelopes = []
        if not envelopes:
            items.append(Item(stream, entry_id, fields, None, 0))
            continue
        bundle = Bundle(stream, entry_id, envelopes, len(envelopes))
        items.extend(Item(stream, entry_id, env, bundle, i) for i, env in enumerate(envelopes))
    return items


class Prefetch:
    """The unstarted tasks of the child's current batch.

    Some of them may be taken "ahead" (`take_ahead`): sent to the child's Node process before
    their turn, so that it never waits on Python between JavaScript tasks. They run next, in
    order, are out of the hand back's reach (Node may have started them), and come back with
    `give_back` when Node says it did not start them."""

    def __init__(self) -> None:
        self._items: deque[Item] = deque()
        self._ahead: deque[Item] = deque()
        self.lock = threading.Lock()

    def fill(self, entries: list[Entry]) -> int:
        """Take the tasks of the entries read; returns how many."""
        items = items_of(entries)
        with self.lock:
            self._items.extend(items)
        return len(items)

    def take(self) -> Item | None:
        """The next task to run here, or None when the batch is done (or was handed back)."""
        with self.lock:
            if self._ahead:
                return self._ahead.popleft()
            return self._items.popleft() if self._items else None

    def take_ahead(self, limit: int, accept: Callable[[Item], Task | None]) -> int:
        """Move up to `limit` of the next tasks, while `accept(item)` takes them, out of the
        hand back's reach (they run next, in order); returns how many. `accept` gives the
        item's decoded task (kept with it) or None to stop."""
        with self.lock:
            items = self._items
            ahead = self._ahead
            n = 0
            while n < limit and items:
                item = items[0]
                task = accept(item)
                if task is None:
                    break
                items.popleft()
                # (tuple.__new__: a NamedTuple's own constructor costs more, for every task)
                kept = (item[0], item[1], item[2], item[3], item[4], task)
                ahead.append(tuple.__new__(Item, kept))
                n += 1
            return n

    def give_back(self, n: int) -> None:
        """The last `n` tasks taken ahead were not started after all: unstarted again."""
        with self.lock:
            for _ in range(min(n, len(self._ahead))):
                self._items.appendleft(self._ahead.pop())

    def unstarted(self) -> int:
        """How many tasks of the batch are not started nor taken ahead. No lock: only the
        child's own thread adds tasks, so a count the watchdog's hand back makes stale is too
        high, never too low, and `take_ahead` (locked) then finds fewer."""
        return len(self._items)

    @property
    def ahead(self) -> int:
        """How many tasks taken ahead are still to run."""
        return len(self._ahead)

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def settle(item: Item) -> bool:
        """Count `item` as finished (call under `lock`); true when its entry is now done and
        is to be acknowledged."""
        bundle = item.bundle
        if bundle is None:
            return True
        bundle.settled += 1
        return bundle.settled == bundle.end

    def hand_back(
        self, client: redis.Redis, keys: Keys, due: Callable[[], bool] = lambda: True
    ) -> int:
        """Give every unstarted task back to its queue if `due()` still holds (it is asked
        under the lock, so the running task cannot finish meanwhile); returns how many went."""
        with self.lock:  # held across the MULTI: the child must not start one meanwhile
            if not self._items or not due():
                return 0
            pipe = client.pipeline(transaction=True)
            acks: dict[str, list[str]] = {}
            kept: list[tuple[Bundle, int]] = []
            rest: list[Any] = []
            items = list(self._items)
            for n, (stream, entry_id, payload, bundle, index, _) in enumerate(items):
                if bundle is None:
                    pipe.xadd(stream, payload)  # read with ">": never without fields
                    acks.setdefault(stream, []).append(entry_id)
                    continue
                rest.append(payload)
                if n + 1 < len(items) and items[n + 1].bundle is bundle:
                    continue  # the bundle's unstarted tasks are consecutive: gather them all
                add_bundle(pipe, keys, stream, [bytes(env) for env in rest])
                first = index + 1 - len(rest)
                if first == 0:  # none of it started here: the whole entry goes
                    acks.setdefault(stream, []).append(entry_id)
                    pipe.hincrby(keys.bundled, stream, -(bundle.end - 1))
                else:
                    pipe.hset(keys.bundles, bundle_field("end", stream, entry_id), first)
                    pipe.hincrby(keys.bundled, stream, -(bundle.end - first))
                    kept.append((bundle, first))
                rest = []
            for stream, ids in acks.items():
                add_ack(pipe, stream, *ids)
            pipe.execute()  # raises: the tasks stay here and run after the slow one
            for bundle, first in kept:
                bundle.end = first
                bundle.written = True
            self._items.clear()
            return len(items)


class SlowTaskWatch(threading.Thread):
    """The child's watchdog: while a task runs long, sends the results finished before it
    (`send_results`) and hands the prefetched tasks back.

    It stops for good once `alive()` is false (the supervisor died): another supervisor then
    releases the child's pending entries, and two releases of one entry would run it twice."""

    def __init__(
        self,
        prefetch: Prefetch,
        client: redis.Redis,
        keys: Keys,
        running_since: Callable[[], float | None],
        send_results: Callable[[], None],
        alive: Callable[[], bool],
        describe: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="fnhub-slow-task-watch", daemon=True)
        self.prefetch = prefetch
        self.client = client
        self.keys = keys
        self.running_since = running_since
        self.send_results = send_results
        self.alive = alive
        self.describe = describe
        self.stopped = threading.Event()
        self.restarts = RestartCounter(keys.loop_restarts, client)

    def _running_for(self, seconds: float) -> bool:
        since = self.running_since()
        return since is not None and time.time() - since >= seconds

    def _slow(self) -> bool:
        return self._running_for(HAND_BACK_SECONDS)

    def run(self) -> None:
        run_restarting(
            "slow-task-watch",
            self._watch,
            stopped=self.stopped.is_set,
            counter=self.restarts,
            max_delay=2.0,  # it holds results back while it is away
        )

    def _watch(self) -> None:
        while not self.stopped.wait(CHECK_SECONDS):
            if not self.alive():  # orphaned: another worker is about to release our entries
                return
            if not self._running_for(CHECK_SECONDS):
                continue
            self.describe()  # which task runs, for the cluster view (`child.Slot.describe`)
            self.send_results()
            if not len(self.prefetch) or not self._slow():
                continue
            try:
                n = self.prefetch.hand_back(self.client, self.keys, self._slow)
            except redis.RedisError as exc:
                log.warning("cannot hand back prefetched tasks: %s", exc)
                continue
            if n:
                log.info("handed %d prefetched tasks back to the queue behind a slow task", n)

    def stop(self) -> None:
        self.stopped.set()
