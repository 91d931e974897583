"""Calling functions from an asyncio process (the HTTP server and the subscriptions it runs):
check, enqueue, and wait for results on one reply stream.

Each server process owns one reply stream (`keys.reply(server_id)`) and one reader task that
blocks on it (`XREAD BLOCK`) and resolves the futures of waiting requests by task id, so a
waiting request costs no Redis round trip. What every call needs to decide before enqueueing
(the active functions, which queues have live workers, queue lengths) is kept in memory and
refreshed by a background loop about once a second, and at once when a call would be refused
because of it (a just-published script, a just-started worker). A call refused, or left
without a result, raises `CallError`; what it means to an HTTP client is the server's business.

The same loop watches the primary's replication id: after a failover the tasks of batches
(`call_many`, a subscription's messages) that the new primary never got are enqueued again
(`fnhub.calling.lost`), so their messages are handled instead of waiting for expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aredis

from fnhub.backoff import redis_retry
from fnhub.calling import lost
from fnhub.calling.errors import CallError
from fnhub.calling.maker import make_task
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.outage_log import OutageLog
from fnhub.queue import (
    ENQUEUE_MANY,
    ENQUEUE_MANY_CHUNK,
    QUEUE_LENGTHS,
    STATUS_TTL_SECONDS,
    add_enqueue,
    enqueue_many_args,
    iter_results,
)
from fnhub.redis_client import async_redis
from fnhub.redis_lane import AsyncLane, stream_reply
from fnhub.redis_replies import as_optional_bytes, as_streams
from fnhub.redis_wait import confirmer
from fnhub.scripts.registry import ActiveScripts, read_active_async
from fnhub.supervised import spawn
from fnhub.tasks import FINAL_STATUSES, Status, Task, TaskResult, decode_result, encode, result_for
from fnhub.worker.presence import live_workers_async

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
FORCED_REFRESH_MIN_SECONDS = 0.2
#: a sync caller waits this much longer than the task's timeout (time spent queued)
WAIT_MARGIN_SECONDS = 5.0
#: seconds a refused caller is asked to wait before calling again (no worker, queue full)
RETRY_AFTER_SECONDS = 5.0
#: async submissions per transaction: bounds how long one MULTI holds Redis
SUBMIT_CHUNK = 200
#: after a new primary, its tasks are looked for at once and once more this much later (a
#: connection that still reached the old primary may have enqueued on it meanwhile)
LOST_RECHECK_SECONDS = 5.0


def _no_result(fut: asyncio.Future[TaskResult], task_id: str, limit: float) -> None:
    if not fut.done():
        fut.set_exception(
            CallError(
                "no_result",
                f"no result for task {task_id} within {limit:g}s (it may still run)",
                task_id=task_id,
            )
        )


class CallBatch:
    """Calls enqueued and awaited together: one future and one timer for a burst instead of one
    of each per call, the per-message cost that dominated a subscription's hot path.

    `on_result(i, result)` runs in the reply reader as the result of `tasks[i]` arrives. The
    batch is done when every call has a result, or failed to enqueue (`unsent`, with `error`
    saying why, for the owner to retry)."""

    __slots__ = ("enqueued_at", "error", "future", "left", "on_result", "tasks", "unsent")

    def __init__(
        self,
        tasks: list[Task],
        on_result: Callable[[int, TaskResult], None],
        future: asyncio.Future[None],
    ) -> None:
        self.tasks = tasks
        self.on_result = on_result
        self.future = future
        self.left = len(tasks)
        self.unsent: list[int] = []
        self.error: BaseException | None = None
        #: when (monotonic) Redis last took tasks of this batch
        self.enqueued_at: float | None = None

    def resolve(self, i: int, result: TaskResult) -> None:
        try:
            self.on_result(i, result)
        except Exception:  # the owner's bug must not stop the reply reader
            log.exception("handling the result of task %s failed", result.id)
        self._one_done()

    def fail(self, i: int, exc: BaseException) -> None:
        self.unsent.append(i)
        self.error = exc
        self._one_done()

    def _one_done(self) -> None:
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(None)


#: who waits for a task's result: a single call's future, or a batch and the task's index in it
Waiter = asyncio.Future[TaskResult] | tuple[CallBatch, int]
#: an async submission waiting to be sent: the task, its eta, who waits for it to be queued
Submission = tuple[Task, float | None, asyncio.Future[None]]


class Caller:
    """One per process: `caller_id` names its reply stream (a server passes its server id)."""

    def __init__(
        self, settings: Settings, client: aredis.Redis, keys: Keys, caller_id: str
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.redis = client
        self.reply_stream = keys.reply(caller_id)
        self.active = ActiveScripts()
        self.queue_workers: dict[str, int] = {}
        self.queue_processes: dict[str, int] = {}  # worker processes reading each queue
        self.queue_lengths: dict[str, int] = {}
        self.workers: dict[str, dict[str, Any]] = {}
        self._waiting: dict[str, Waiter] = {}
        self._watchers: dict[str, list[asyncio.Future[TaskResult]]] = {}
        self._reader_redis: aredis.Redis | None = None
        self._reader_lane: AsyncLane | None = None
        # the enqueue's own connection (`redis_lane`); `_send_outbox` runs one at a time
        self._enqueue_lane = AsyncLane(client)
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshed_at = 0.0
        self._refresh_lock = asyncio.Lock()
        self._last_reply = "0-0"
        self._outbox: list[tuple[Task, Waiter]] = []
        self._outbox_sending = False
        # async submissions (`submit`): task, eta, who waits; `_send_submissions` runs one at
        # a time
        self._submissions: list[Submission] = []
        self._submitting = False
        self._stopping = False
        self._enqueue_many = self.redis.register_script(ENQUEUE_MANY)
        self._queue_lengths = self.redis.register_script(QUEUE_LENGTHS)
        self._replid: str | None = None  # the primary's replication id, as last seen
        self._lost_search: asyncio.Task[None] | None = None
        self.resent = 0  # tasks enqueued again after a failover lost them
        # replicas a submission waits for before it is acknowledged (`redis_wait`): None, none
        self.confirm = confirmer(settings)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh()
        await self._watch_primary()  # the replication id a later failover is told apart from
        # its reads block for 5 s: a socket timeout shorter than that would cut them off
        self._reader_redis = async_redis(self.settings, socket_timeout=30)
        self._reader_lane = AsyncLane(self._reader_redis, timeout=30)
        self._tasks = [spawn("replies", self._read_replies), spawn("refresh", self._refresh_loop)]

    async def stop(self) -> None:
        self._stopping = True
        if self._lost_search is not None:
            self._lost_search.cancel()
        for task in self._tasks:
            task.cancel()
        _done, pending = await asyncio.wait(self._tasks, timeout=0.5) if self._tasks else ((), ())
        if pending and self._reader_redis is not None:
            # a cancel that lands in redis-py's blocked XREAD can be lost (the read goes on for
            # its full BLOCK time); closing the reader's connection ends the read at once
            await self._reader_redis.connection_pool.disconnect()
            await asyncio.wait(pending, timeout=2)
        for waiter in self._waiting.values():
            fut = waiter[0].future if isinstance(waiter, tuple) else waiter
            if not fut.done():
                fut.cancel()
        with contextlib.suppress(redis.RedisError, OSError):
            await self._enqueue_lane.close()
        if self._reader_lane is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                await self._reader_lane.close()
        if self._reader_redis is not None:
            await self._reader_redis.aclose()
        with contextlib.suppress(redis.RedisError, OSError):
            await self.redis.delete(self.reply_stream)

    # -- cached state ------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Re-read the scripts (if their revision moved), live workers and queue lengths."""
        async with self._refresh_lock:
            self.active = await read_active_async(self.redis, self.keys, self.active)
            workers = await live_workers_async(self.redis, self.keys)
            counts: dict[str, int] = {}
            processes: dict[str, int] = {}
            for info in workers.values():
                for q in info.get("queues", ()):
                    counts[q] = counts.get(q, 0) + 1
                    processes[q] = processes.get(q, 0) + int(info.get("processes", 1))
            queues = sorted(set(counts) | set(self.settings.queues))
            lengths = await self._queue_lengths(
                keys=[self.keys.queue(q) for q in queues], args=[self.keys.bundled]
            )
            self.workers = workers
            self.queue_workers = counts
            self.queue_processes = processes
            self.queue_lengths = dict(zip(queues, lengths, strict=True))
            self._refreshed_at = time.monotonic()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
                await self._watch_primary()
            except (redis.RedisError, OSError) as exc:
                log.warning("cannot refresh scripts/workers from Redis: %s", exc)

    # -- tasks a failover lost ---------------------------------------------------------------
    async def _watch_primary(self) -> None:
        """Start a search for lost tasks when the primary's replication id changed (and tell
        `confirm` which primary has its replicas)."""
        if self.confirm is not None:
            await self.confirm.refresh(self.redis)
        replid = await lost.primary_replid(self.redis)
        if replid is None:
            return
        before, self._replid = self._replid, replid
        if before is None or before == replid:
            return
        log.warning("Redis has a new primary (replication id %s, was %s)", replid, before)
        if self._lost_search is not None:
            self._lost_search.cancel()
        self._lost_search = asyncio.ensure_future(self._search_lost(time.monotonic()))

    async def _search_lost(self, changed_at: float) -> None:
        """Look for the tasks waited for, now and once more a little later; each search takes
        the tasks Redis had taken before it began (later ones went to the new primary)."""
        backoff = redis_retry(0.5)
        until = changed_at
        while True:
            try:
                await self.resend_lost(until)
            except (redis.RedisError, OSError) as exc:  # the new primary not there yet
                log.warning("cannot look for tasks lost in a failover: %s", exc)
                await asyncio.sleep(backoff.next())
                continue
            if until > changed_at:
                return
            await asyncio.sleep(LOST_RECHECK_SECONDS)
            until = time.monotonic() - 1.0

    async def resend_lost(self, enqueued_before: float) -> int:
        """Enqueue again the tasks of batches waited for, enqueued before `enqueued_before`
        (monotonic), that are neither in their queue nor answered: what Redis lost. Returns
        how many; the same task ids, so their results resolve the same waiters."""
        after = self._last_reply  # replies read from here on are looked at below
        by_stream: dict[str, dict[str, tuple[Task, Waiter]]] = {}
        for task_id, waiter in self._waiting.items():
            if not isinstance(waiter, tuple):
                continue
            batch, i = waiter
            if batch.enqueued_at is None or batch.enqueued_at >= enqueued_before:
                continue
            task = batch.tasks[i]
            by_stream.setdefault(self.keys.queue(task.queue), {})[task_id] = (task, waiter)
        if not by_stream:
            return 0
        waited = {task_id for tasks in by_stream.values() for task_id in tasks}
        held = await lost.delayed(self.redis, self.keys.delayed_tasks, waited)
        missing: dict[str, tuple[Task, Waiter]] = {}
        for stream, tasks in by_stream.items():
            found = held | await lost.queued(self.redis, stream, set(tasks) - held)
            missing.update((i, item) for i, item in tasks.items() if i not in found)
        # moved to the delayed set while the stream was read, or finished and answered
        if missing:
            for task_id in await lost.delayed(self.redis, self.keys.delayed_tasks, set(missing)):
                del missing[task_id]
        if missing:
            for task_id in await lost.replied(self.redis, self.reply_stream, after, set(missing)):
                del missing[task_id]
        again = [
            (task, waiter)
            for task_id, (task, waiter) in missing.items()
            if self._waiting.get(task_id) is waiter
        ]
        if again:
            log.warning(
                "%d task(s) waited for were lost with the old Redis primary: enqueued again",
                len(again),
            )
            self.resent += len(again)
            self._outbox.extend(again)
            self._send()
        return len(again)

    async def _refresh_if_stale(self) -> bool:
        if time.monotonic() - self._refreshed_at < FORCED_REFRESH_MIN_SECONDS:
            return False
        await self.refresh()
        return True

    # -- making and enqueueing tasks ---------------------------------------------------------
    async def make(self, ref: str, kwargs: dict[str, Any] | None, **options: Any) -> Task:
        """A checked task (CallError if refused); an unknown function is looked up again once
        before it is refused."""
        try:
            return make_task(self.settings, self.active, ref, kwargs, **options)
        except CallError as exc:
            if exc.kind == "unknown_function" and await self._refresh_if_stale():
                return make_task(self.settings, self.active, ref, kwargs, **options)
            raise

    async def check_capacity(self, queue: str) -> None:
        """CallError when no live worker reads the queue or it is over `queue_max_length`."""
        if not self.queue_workers.get(queue):
            await self._refresh_if_stale()
            if not self.queue_workers.get(queue):
                raise CallError(
                    "no_worker",
                    f"no worker is listening on queue '{queue}'",
                    retry_after=RETRY_AFTER_SECONDS,
                )
        if self.queue_lengths.get(queue, 0) >= self.settings.queue_max_length:
            raise CallError(
                "queue_full",
                f"queue '{queue}' holds {self.queue_lengths[queue]} tasks, at its limit of "
                f"{self.settings.queue_max_length}",
                retry_after=RETRY_AFTER_SECONDS,
            )

    async def call(self, task: Task, wait: float | None = None) -> TaskResult:
        """Enqueue a task built with `reply_to=self.reply_stream` and wait for its result.

        Runs once per request, so it costs one future and one timer: the enqueue goes out with
        whatever else was called in the same loop iteration (one ENQUEUE_MANY per queue), and
        a failed enqueue fails the same future."""
        await self.check_capacity(task.queue)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[TaskResult] = loop.create_future()
        self._waiting[task.id] = fut
        limit = wait if wait is not None else task.timeout + WAIT_MARGIN_SECONDS
        timer = loop.call_later(limit, _no_result, fut, task.id, limit)
        self._send((task, fut))
        try:
            return await fut
        finally:
            timer.cancel()
            self._waiting.pop(task.id, None)

    async def call_many(
        self, tasks: list[Task], on_result: Callable[[int, TaskResult], None], wait: float
    ) -> CallBatch:
        """Enqueue tasks built with `reply_to=self.reply_stream`, pass each result to
        `on_result(i, result)` as it arrives, and return when all are accounted for: a call
        with no result after `wait` seconds gets an EXPIRED `NoResult` result, and calls whose
        enqueue failed are listed in the batch's `unsent`. CallError (no worker, queue full)
        like `call`."""
        loop = asyncio.get_running_loop()
        batch = CallBatch(tasks, on_result, loop.create_future())
        if not tasks:
            return batch
        await self.check_capacity(tasks[0].queue)
        waiting = self._waiting
        for i, task in enumerate(tasks):
            waiter = (batch, i)
            waiting[task.id] = waiter
            self._outbox.append((task, waiter))
        self._send()
        timer = loop.call_later(wait, self._expire, batch, wait)
        try:
            await batch.future
        except asyncio.CancelledError:
            for task in tasks:
                waiting.pop(task.id, None)
            raise
        finally:
            timer.cancel()
        return batch

    def _expire(self, batch: CallBatch, wait: float) -> None:
        for i, task in enumerate(batch.tasks):
            waiter = self._waiting.get(task.id)
            if isinstance(waiter, tuple) and waiter[0] is batch:
                del self._waiting[task.id]
                text = f"no result for task {task.id} within {wait:g}s (it may still run)"
                batch.resolve(
                    i, result_for(task, Status.EXPIRED, error_type="NoResult", error_message=text)
                )

    def _send(self, item: tuple[Task, Waiter] | None = None) -> None:
        """Queue a call (or calls already queued) for the next `_send_outbox`."""
        if item is not None:
            self._outbox.append(item)
        if not self._outbox_sending:
            self._outbox_sending = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._send_outbox()))

    def _fail(self, task: Task, waiter: Waiter, exc: BaseException) -> None:
        if isinstance(waiter, tuple):
            if self._waiting.pop(task.id, None) is waiter:
                waiter[0].fail(waiter[1], exc)
        elif not waiter.done():
            waiter.set_exception(exc)

    async def _send_outbox(self) -> None:
        """Enqueue everything called since the last send: one ENQUEUE_MANY per queue and
        chunk, holding the chunk's tasks in as many bundle entries as workers run processes."""
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                by_stream: dict[str, list[tuple[Task, Waiter]]] = {}
                for item in batch:
                    by_stream.setdefault(self.keys.queue(item[0].queue), []).append(item)
                for stream, items in by_stream.items():
                    entries = self.queue_processes.get(items[0][0].queue, 1)
                    for start in range(0, len(items), ENQUEUE_MANY_CHUNK):
                        chunk = items[start : start + ENQUEUE_MANY_CHUNK]
                        try:
                            args = enqueue_many_args([encode(task) for task, _ in chunk], entries)
                            await self._enqueue_lane.evalsha(
                                self._enqueue_many, [stream, self.keys.bundled], args
                            )
                            taken = time.monotonic()
                            for _task, waiter in chunk:
                                if isinstance(waiter, tuple):
                                    waiter[0].enqueued_at = taken
                        except BaseException as exc:
                            for task, waiter in chunk:
                                self._fail(task, waiter, exc)
                            if not isinstance(exc, Exception):
                                raise
        finally:
            self._outbox_sending = False

    async def submit(self, task: Task, *, eta: float | None = None) -> None:
        """Enqueue a task built with a status key; the key says `queued` from now on. Behind
        Sentinel, once enough replicas have it (CallError `not_replicated` if not
        in time: a failover may drop it).

        Submissions made in the same loop iteration go out together (`_send_submissions`): a
        burst (a backlog let loose after a failover) costs one round trip and one await per
        batch, not per request, as sync calls' `_send_outbox` does."""
        await self.check_capacity(task.queue)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submissions.append((task, eta, fut))
        if not self._submitting:
            self._submitting = True
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self._send_submissions())
            )
        await fut

    async def _send_submissions(self) -> None:
        """Every submission made since the last send: per queue (and one group for delayed
        tasks), SUBMIT_CHUNK at a time, each task's status key and entry in one MULTI,
        confirmed as `submit` says. Grouped so that a failure fails no more than it did one
        by one: Redis does not roll a transaction back, and a key of the wrong type (a queue
        clobbered by hand) breaks only the commands that touch it, so a transaction holds one
        queue's tasks (or the delayed ones, which share their keys)."""
        try:
            while self._submissions:
                batch, self._submissions = self._submissions, []
                groups: dict[str, list[Submission]] = {}
                now = time.time()
                for item in batch:
                    if item[2].done():
                        continue  # its request was cancelled before it was sent: not sent
                    task, eta, _fut = item
                    target = "" if eta is not None and eta > now else task.queue
                    groups.setdefault(target, []).append(item)
                for items in groups.values():
                    for start in range(0, len(items), SUBMIT_CHUNK):
                        await self._submit_chunk(items[start : start + SUBMIT_CHUNK])
        finally:
            self._submitting = False

    async def _submit_chunk(self, chunk: list[Submission]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for task, eta, _fut in chunk:
            if task.status_key:
                queued = encode(result_for(task, Status.QUEUED))
                pipe.set(task.status_key, queued, ex=STATUS_TTL_SECONDS)
            add_enqueue(pipe, self.keys, task, eta=eta)
        try:
            if self.confirm is not None:
                await self.confirm.execute(self.redis, pipe)
            else:
                await pipe.execute()
        except BaseException as exc:
            for _task, _eta, fut in chunk:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for _task, _eta, fut in chunk:
                if not fut.done():
                    fut.set_result(None)

    # -- status of submitted tasks -----------------------------------------------------------
    async def status(self, task_id: str) -> TaskResult | None:
        raw = as_optional_bytes(await self.redis.get(self.keys.task_status(task_id)))
        return decode_result(raw) if raw else None

    async def wait_final(self, task_id: str, seconds: float) -> TaskResult | None:
        """The task's status once final or after `seconds`; replies that come to this server
        resolve at once, tasks submitted elsewhere are polled with a growing interval."""
        deadline = time.monotonic() + seconds
        current = await self.status(task_id)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[TaskResult] = loop.create_future()
        self._watchers.setdefault(task_id, []).append(fut)
        interval = 0.05
        try:
            while current is not None and current.status not in FINAL_STATUSES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut), min(interval, left))
                interval = min(interval * 2, 0.5)
                current = await self.status(task_id)
            return current
        finally:
            watchers = self._watchers.get(task_id, [])
            if fut in watchers:
                watchers.remove(fut)
            if not watchers:
                self._watchers.pop(task_id, None)
            fut.cancel()

    # -- the reply reader --------------------------------------------------------------------
    async def _read_replies(self) -> None:
        lane = self._reader_lane
        assert lane is not None
        backoff = redis_retry()  # results come again within a second of Redis
        outage = OutageLog(log, f"reply reader cannot read {self.reply_stream}")
        read = 0
        while not self._stopping:
            try:
                stream, last = self.reply_stream, self._last_reply
                response = stream_reply(
                    await lane.execute(
                        "XREAD", "COUNT", 1000, "BLOCK", 5000, "STREAMS", stream, last
                    )
                )
                backoff.reset()
                outage.ok()
            except (redis.RedisError, OSError) as exc:
                if self._stopping:
                    return
                outage.failed(exc)
                await asyncio.sleep(backoff.next())
                continue
            for _stream, entries in as_streams(response):
                for entry_id, fields in entries:
                    self._last_reply = entry_id.decode()
                    read += 1
                    try:
                        results = list(iter_results(fields))
                    except Exception:  # a malformed reply must not stop the reader
                        log.exception("malformed reply %s", entry_id)
                        continue
                    for result in results:
                        self._resolve(result)
            if response:  # the callers answer before the next read is sent
                await asyncio.sleep(0)
            if read >= 1000:  # consumed entries are of no further use: trim them
                read = 0
                with contextlib.suppress(redis.RedisError, OSError):
                    await self.redis.xtrim(self.reply_stream, minid=self._last_reply)

    def _resolve(self, result: TaskResult) -> None:
        waiter = self._waiting.pop(result.id, None)
        if isinstance(waiter, tuple):
            waiter[0].resolve(waiter[1], result)
        elif waiter is not None and not waiter.done():
            waiter.set_result(result)
        for watcher in self._watchers.get(result.id, ()):
            if not watcher.done():
                watcher.set_result(result)
