"""Long-lived loops that outlive their own bugs: run, log what escaped with its traceback,
restart after a backoff with jitter, and count the restart by loop name.

Every platform loop (recorder, worker supervisor, reply reader, area services, subscription
runners, broker readers...) handles the errors it expects (Redis or the database away) itself.
These helpers are for everything else, which would otherwise end the loop for good while its
process looks healthy. A loop that returns is done; cancelling (asyncio) or `stopped()`
(threads) ends it at once, even during a backoff.

Restarts are counted in `keys.loop_restarts` in Redis, so `/metrics` on any server shows every
server's and worker's restarts (`fnhub_loop_restarts_total{loop=...}`). asyncio loops find their
counter in the `restart_counter` context variable, which the server sets in its lifespan so that
every task it starts (and every task those start) inherits it; threads are handed theirs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fnhub.backoff import Backoff
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_client import sync_redis

log = logging.getLogger(__name__)

MIN_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0
#: a loop that ran this long before failing is restarted after the shortest delay again
HEALTHY_SECONDS = 60.0
_COUNT_TIMEOUT_SECONDS = 2.0


class RestartCounter:
    """One process's loop restarts by loop name: kept here (`counts`) and added to the Redis
    hash `key` through `client` (sync for `add`, asyncio for `add_async`). Counts Redis did not
    take are kept and added with the next restart. Without a client it only counts here."""

    def __init__(self, key: str = "", client: Any = None) -> None:
        self.key = key
        self.client = client
        self.counts: Counter[str] = Counter()
        self._unsent: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _take(self, loop: str) -> Counter[str]:
        with self._lock:
            self.counts[loop] += 1
            if self.client is None:
                return Counter()
            self._unsent[loop] += 1
            unsent, self._unsent = self._unsent, Counter()
            return unsent

    def _keep(self, unsent: Counter[str], exc: BaseException) -> None:
        with self._lock:
            self._unsent.update(unsent)
        log.warning("cannot count loop restarts in Redis now (kept for later): %s", exc)

    def add(self, loop: str) -> None:
        unsent = self._take(loop)
        if not unsent:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for name, n in unsent.items():
                pipe.hincrby(self.key, name, n)
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._keep(unsent, exc)

    async def add_async(self, loop: str) -> None:
        unsent = self._take(loop)
        if not unsent:
            return
        try:
            async with asyncio.timeout(_COUNT_TIMEOUT_SECONDS):
                pipe = self.client.pipeline(transaction=False)
                for name, n in unsent.items():
                    pipe.hincrby(self.key, name, n)
                await pipe.execute()
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._keep(unsent, exc)


def thread_counter(settings: Settings) -> RestartCounter:
    """A counter for threads, on a client of its own that fails at once (no retries, short
    timeouts): counting must not hold up the restart of, say, the loop that enforces task
    deadlines while Redis is away. The counts it missed go with the next restart."""
    client = sync_redis(
        settings, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
    )
    return RestartCounter(Keys(settings.key_prefix).loop_restarts, client)


#: the counter asyncio loops started in this context report to (set by the server's lifespan)
restart_counter: contextvars.ContextVar[RestartCounter | None] = contextvars.ContextVar(
    "fnhub_restart_counter", default=None
)
_unreported = RestartCounter()  # where no counter was set: counted in this process only


def current_counter() -> RestartCounter:
    return restart_counter.get() or _unreported


class _RestartDelays:
    """Doubling delays from MIN_DELAY_SECONDS up to `cap`, with jitter so loops that failed
    together (Redis came back odd) restart apart; a loop that ran HEALTHY_SECONDS before it
    failed starts from the shortest delay again."""

    def __init__(self, cap: float) -> None:
        self.backoff = Backoff(initial=min(MIN_DELAY_SECONDS, cap), cap=cap)

    def next(self, ran_for: float) -> float:
        if ran_for >= HEALTHY_SECONDS:
            self.backoff.reset()
        return self.backoff.next()


def _name(loop: str, label: str) -> str:
    return f"{loop} ({label})" if label else loop


async def supervise(
    loop: str,
    factory: Callable[[], Awaitable[object]],
    *,
    label: str = "",
    max_delay: float = MAX_DELAY_SECONDS,
    counter: RestartCounter | None = None,
) -> None:
    """Await `factory()` until it returns; after an exception, log it, count a restart of
    `loop` (the metric's label: a kind of loop, not one per subscription), wait, and await a
    new `factory()`. `label` names the instance in logs. Cancelling this task passes straight
    through; a CancelledError the loop raised while nobody cancelled it is a failure like any."""
    backoff = _RestartDelays(max_delay)
    task = asyncio.current_task()
    while True:
        started = time.monotonic()
        try:
            await factory()
            return
        except asyncio.CancelledError:
            if task is None or task.cancelling():
                raise
            delay = backoff.next(time.monotonic() - started)
            log.exception("loop %s was cancelled from within; restarting", _name(loop, label))
        except Exception:
            delay = backoff.next(time.monotonic() - started)
            log.exception("loop %s failed; restarting in %.1fs", _name(loop, label), delay)
        await (counter or current_counter()).add_async(loop)
        await asyncio.sleep(delay)


def spawn(
    loop: str, factory: Callable[[], Awaitable[object]], *, label: str = ""
) -> asyncio.Task[None]:
    """An asyncio task running `supervise(loop, factory)`."""
    return asyncio.create_task(
        supervise(loop, factory, label=label), name=f"fnhub-{_name(loop, label)}"
    )


def run_restarting(
    loop: str,
    target: Callable[[], object],
    *,
    stopped: Callable[[], bool],
    counter: RestartCounter,
    max_delay: float = MAX_DELAY_SECONDS,
) -> None:
    """The thread twin of `supervise`: call `target()` until it returns or `stopped()`;
    backoffs end early once `stopped()` (checked every 0.1 s)."""
    backoff = _RestartDelays(max_delay)
    while not stopped():
        started = time.monotonic()
        try:
            target()
            return
        except Exception:
            delay = backoff.next(time.monotonic() - started)
            log.exception("loop %s failed; restarting in %.1fs", loop, delay)
        counter.add(loop)
        until = time.monotonic() + delay
        while not stopped() and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))


def start_thread(
    loop: str,
    target: Callable[[], object],
    *,
    stopped: Callable[[], bool],
    counter: RestartCounter,
) -> threading.Thread:
    """A daemon thread running `run_restarting(loop, target)`."""
    thread = threading.Thread(
        target=run_restarting,
        args=(loop, target),
        kwargs={"stopped": stopped, "counter": counter},
        name=f"fnhub-{loop}",
        daemon=True,
    )
    thread.start()
    return thread


def end_process(process: BaseProcess, grace: float) -> None:
    """SIGTERM a supervised child process, give it `grace` (+10 s) to finish what it runs,
    then SIGKILL it; returns once it is gone."""
    if not process.is_alive():
        return
    process.terminate()
    process.join(grace + 10)
    if process.is_alive():
        process.kill()
        process.join()
