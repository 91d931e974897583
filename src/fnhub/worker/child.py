"""A worker child: read tasks from the queue, run them one at a time, acknowledge after each.

The child tells its supervisor what it runs through a shared-memory slot (entry, task index in
a bundle, deadline), so the supervisor can kill it past the deadline and knows which task was
running if it dies. Which task and function that is (`Slot.what`) is written only for a task
that runs past the watchdog's first look (`prefetch.CHECK_SECONDS`), by the watchdog: the
supervisor's heartbeat tells the cluster view, and nothing per task costs more than keeping a
reference to the task.

Finished tasks are acknowledged (XACK + XDEL + reply + record, in one atomic call,
`queue.FINISH`) a batch at a time by a `Finisher`; nothing is acknowledged before its task
finished.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawArray
from multiprocessing.synchronize import Event
from typing import Any, NamedTuple

import msgspec
import redis

from fnhub import concurrency, runtime, spawning, tracing
from fnhub.backoff import redis_retry
from fnhub.config import Settings
from fnhub.heap import freeze_startup_objects, pause_for_startup
from fnhub.keys import WORKER_GROUP, Keys
from fnhub.log_setup import configure_logging
from fnhub.node.executor import NodeDied
from fnhub.outage_log import OutageLog, short_reason
from fnhub.parent_death import die_with_parent
from fnhub.queue import (
    FINISH,
    ResultBatch,
    add_dead_letter,
    add_enqueue,
    add_result,
    add_retrying,
    bundle_field,
    ensure_groups,
)
from fnhub.redis_client import sync_redis
from fnhub.redis_lane import SyncLane, stream_reply
from fnhub.redis_replies import as_pending_streams
from fnhub.tasks import Status, Task, TaskResult, decode_task, encode, result_for
from fnhub.worker.execute import Executor
from fnhub.worker.loader import WorkerScripts
from fnhub.worker.prefetch import Bundle, Entry, Item, Prefetch, SlowTaskWatch
from fnhub.worker.processes import kill_session

log = logging.getLogger(__name__)

ENTRY_SIZE = 256
#: b"<started> <task id> <function> <started>": the started time twice, so a read torn by
#: the watchdog's next write is refused (the function name is cut to fit)
WHAT_SIZE = 256


class Running(NamedTuple):
    """The task a child runs: its entry, and its index there (0 unless a bundle's)."""

    stream: str
    entry_id: str
    task_index: int  # not `index`: that is tuple.index


#: Slot.times: the running task's deadline, start and index; when the child began reading
_DEADLINE, _STARTED, _INDEX, _READING = 0, 1, 2, 3


@dataclass
class Slot:
    """Shared memory between a child and its supervisor: [deadline, started, index in the
    entry] and the entry (written only when it changes: a bundle's tasks share one)."""

    times: Any  # RawArray('d', 4)
    entry: Any  # RawArray('c', ENTRY_SIZE): b"<stream> <entry id>"
    what: Any  # RawArray('c', WHAT_SIZE): which task runs, once it ran a while (`describe`)
    written: tuple[str, str] = ("", "")  # the stream and entry last written (child's copy)
    #: the running task (child's copy, for the watchdog's `describe`)
    current: Task | None = None

    @classmethod
    def create(cls) -> Slot:
        return cls(
            RawArray(ctypes.c_double, 4),
            RawArray(ctypes.c_char, ENTRY_SIZE),
            RawArray(ctypes.c_char, WHAT_SIZE),
        )

    def set(
        self,
        stream: str,
        entry_id: str,
        index: int,
        deadline: float,
        now: float | None = None,
        task: Task | None = None,
    ) -> None:
        """The task running from `now` (default: the time now) until `deadline`; `task`, kept
        for `describe`, says which one it is (kept before its start is written: `describe`
        pairs the two by that order, with no tuple made per task)."""
        self.current = task
        if (stream, entry_id) != self.written:  # ids are unique per stream only
            self.entry.value = f"{stream} {entry_id}".encode()[: ENTRY_SIZE - 1]
            self.written = (stream, entry_id)
        times = self.times
        times[_INDEX] = index
        times[_STARTED] = time.time() if now is None else now
        times[_DEADLINE] = deadline

    def describe(self) -> None:
        """Write which task runs into `what` (the watchdog's call, once a task runs a while):
        the supervisor's heartbeat reads it (`described`)."""
        task = self.current
        if task is None or self.times[_DEADLINE] <= 0:
            return
        started = float(self.times[_STARTED])
        # `set` keeps the task, then writes its start, and the child clears the slot between
        # tasks: a start read with a deadline set and the task read still kept is its own
        if self.current is not task:
            return
        stamp = repr(started)
        if self.what.value.startswith(stamp.encode()):
            return  # written already
        function = task.function[: WHAT_SIZE - 3 * len(stamp) - len(task.id)]
        self.what.value = f"{stamp} {task.id} {function} {stamp}".encode()[: WHAT_SIZE - 1]

    def described(self) -> tuple[float, str, str] | None:
        """(started, task id, function) of the running task when `describe` wrote it, else
        None (between tasks, a task that started a moment ago, or a read torn by a write)."""
        since = self.running_since()
        if since is None:
            return None
        parts = self.what.value.decode(errors="replace").split(" ")
        stamp = repr(since)
        if len(parts) != 4 or parts[0] != stamp or parts[3] != stamp:
            return None
        return since, parts[1], parts[2]

    def clear(self) -> None:
        self.times[_DEADLINE] = 0.0

    def for_new_child(self) -> None:
        """Cleared for the next child to use it: no task, not reading yet."""
        self.clear()
        self.times[_READING] = 0.0

    def mark_reading(self) -> None:
        """The child's start-up is over: it reads its queues from now on."""
        self.times[_READING] = time.time()

    @property
    def reading(self) -> bool:
        return bool(self.times[_READING] > 0)

    def running_since(self) -> float | None:
        """When the running task started (epoch seconds), or None between tasks."""
        return float(self.times[_STARTED]) if self.times[_DEADLINE] > 0 else None

    @property
    def deadline(self) -> float:
        return float(self.times[_DEADLINE])

    @property
    def started(self) -> float:
        return float(self.times[_STARTED])

    def running(self) -> Running | None:
        """Where the running task is, or None between tasks."""
        if self.times[_DEADLINE] <= 0:
            return None
        stream, _, entry_id = self.entry.value.decode().rpartition(" ")  # (ids hold no space)
        return Running(stream, entry_id, int(self.times[_INDEX]))


#: how often a child re-reads its own pending entries (those of a read whose reply was lost)
OWN_PENDING_SECONDS = 5.0


def consumer_name(worker_id: str, slot: int, pid: int) -> str:
    return f"{worker_id}.{slot}.{pid}"


class Retry(NamedTuple):
    """Run `task` again at `eta`: the same attempt (no concurrency slot was free; `failed` is
    None) or its next attempt (`failed`: the result of the one that failed, kept in the
    record)."""

    task: Task
    eta: float
    failed: TaskResult | None = None


#: what became of a task: its result, a `Retry`, or None (malformed: dropped)
Outcome = TaskResult | Retry | None


class Settled(NamedTuple):
    """A task whose outcome waits for the Finisher; `last` says it completes its entry."""

    stream: str
    entry_id: str
    task: Task
    outcome: Outcome
    bundle: Bundle | None
    task_index: int  # not `index`: that is tuple.index
    last: bool


class Finisher:
    """Gathers finished tasks and sends their acknowledgements, replies and records at once.

    The child sends a batch once its tasks ran, or sooner when a result has waited `max_wait`
    seconds. Doing this on the child's own thread, between reads, beats a flusher thread: two
    threads in one process hand the GIL back and forth on every socket call, which cost more
    than the round trip saved. Only while a task runs long does the child's watchdog flush
    (`prefetch.SlowTaskWatch`), so that task holds back none of the results before it; a lock
    keeps the two from sending the same results.
    """

    def __init__(self, client: redis.Redis, keys: Keys, max_wait: float = 0.004) -> None:
        # 4 ms: a read of trivial tasks is sent in one go (each FINISH costs the child, Redis
        # and the waiting server a round of work), and no result waits much longer than that
        self.redis = client
        self.keys = keys
        self.max_wait = max_wait
        self.pending: list[Settled] = []
        self.since = 0.0
        self._lock = threading.Lock()
        self._finish = client.register_script(FINISH)
        self._lane = SyncLane(client)  # FINISH on a connection of its own (`redis_lane`)

    def add(
        self,
        stream: str,
        entry_id: str,
        task: Task,
        outcome: Outcome,
        *,
        bundle: Bundle | None = None,
        index: int = 0,
        last: bool = True,
    ) -> None:
        """Take a settled task; `last` says its entry is done (a bundle's entry is acknowledged
        with its last task; before, only the count of its finished tasks is recorded)."""
        with self._lock:
            if not self.pending:
                self.since = time.monotonic()
            self.pending.append(Settled(stream, entry_id, task, outcome, bundle, index, last))

    def flush_if_due(self) -> None:
        if self.pending and time.monotonic() - self.since >= self.max_wait:
            self.flush()

    def flush(self) -> None:
        """Send what is pending; retries until Redis takes it (the results exist only here)."""
        if not self.pending:
            return
        with self._lock:
            backoff = redis_retry(0.05)
            while self.pending:
                try:
                    self._send(self.pending)
                    self.pending = []
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    n = len(self.pending)
                    log.warning("cannot reach Redis to finish %d task(s): %s", n, short_reason(exc))
                    time.sleep(backoff.next())

    def _send(self, batch: list[Settled]) -> None:
        """One FINISH call; inside a MULTI with the rarer commands (retries, status keys,
        concurrency slots, cron markers) when the batch has any, and with the reply and records
        entries when the results are large."""
        pipe = self.redis.pipeline(transaction=True)
        results = ResultBatch()
        acks: dict[str, list[str]] = {}
        for stream, entry_id, task, outcome, bundle, index, last in batch:
            if last:
                acks.setdefault(stream, []).append(entry_id)
            if bundle is not None:
                _count_bundle(results, bundle, index, last)
            if isinstance(outcome, Retry):
                concurrency.add_release(pipe, self.keys, task)
                add_enqueue(pipe, self.keys, outcome.task, eta=outcome.eta)
                if outcome.failed is not None:  # the attempt that failed is kept in the record
                    add_retrying(pipe, self.keys, task, outcome.failed, results)
            elif outcome is not None:
                add_result(pipe, self.keys, task, outcome, results)
        plan = results.finish_plan(pipe, self.keys, acks)
        if len(pipe):
            pipe.eval(FINISH, 0, plan)  # the script's text: no NOSCRIPT inside the MULTI
            pipe.execute()
        else:
            self._lane.evalsha(self._finish, (), [plan])  # EVAL when Redis lacks the script


def _count_bundle(results: ResultBatch, bundle: Bundle, index: int, last: bool) -> None:
    """Record a bundle's progress with this batch: how many of its tasks are done, or, with its
    last, that its fields go and its tasks no longer count in the queue's length."""
    done = bundle.done_field
    if not last:
        results.bundle_progress[done] = index + 1
        bundle.written = True
        return
    results.bundle_progress.pop(done, None)
    if bundle.written:
        results.bundle_forget += [done, bundle_field("end", bundle.stream, bundle.entry_id)]
    stream = bundle.stream
    results.bundled[stream] = results.bundled.get(stream, 0) - (bundle.end - 1)


class ReadSize:
    """How many tasks the child reads at once (at most `limit`, the `prefetch` setting): doubles
    while batches run quickly and halves when they do not, so trivial tasks go a hundred per round
    trip while slow ones come one or two at a time. A task that turns out slow in the middle of a
    batch hands the rest back to the queue (`prefetch.SlowTaskWatch`).

    XREADGROUP counts entries, and an entry may be a bundle of many tasks, so the count asked
    for is the size over the tasks per entry of the last read: a child takes its share of a
    burst's bundles, not all of them while the other children wait."""

    FAST_SECONDS = 0.005
    SLOW_SECONDS = 0.05

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.size = 1
        self.per_entry = 1.0

    @property
    def count(self) -> int:
        """The COUNT of the next XREADGROUP."""
        return max(1, round(self.size / self.per_entry))

    def update(self, entries: int, tasks: int, seconds: float) -> None:
        if entries:
            self.per_entry = tasks / entries
        if seconds < self.FAST_SECONDS:
            if tasks >= self.size:  # the queue had more: take more next time
                self.size = min(self.size * 2, self.limit)
        elif seconds > self.SLOW_SECONDS:
            self.size = max(self.size // 2, 1)


def _left_to_the_supervisor(signum: int, _frame: object) -> None:
    """A worker child stops when its supervisor says so (or dies), not on a signal."""


class ChildRuntime(NamedTuple):
    """What a worker child runs tasks with."""

    settings: Settings
    keys: Keys
    redis: redis.Redis
    executor: Executor


def begin_child(settings_json: str, parent_pid: int) -> ChildRuntime:
    """What every worker child (queue or direct) does first, in its own process, forked by the
    worker's fork server `parent_pid` (`fnhub.spawning`)."""
    # SIGKILLed with our parent, the fork server, which exits with the supervisor however it
    # dies (once we no longer hold its "alive" pipe): a child busy with a long task would
    # otherwise only notice at its next read, running on unsupervised until then
    spawning.leave_fork_server()
    pause_for_startup()  # until `child_main` (or the direct child) froze what start-up made
    die_with_parent(parent_pid)
    # a session of our own: what tasks start stays in it, for the supervisor to kill with us
    # (`worker.processes`); it also keeps the terminal's Ctrl-C for the supervisor, which
    # decides when we stop (through `stop`)
    os.setsid()
    # SIGINT and SIGTERM (e.g. systemd's, sent to every process of the service) are caught and
    # dropped, not ignored: an ignored signal stays ignored across exec, so every program a task
    # runs could then not be stopped with terminate() or Ctrl-C; a handler is reset by exec
    signal.signal(signal.SIGINT, _left_to_the_supervisor)
    signal.signal(signal.SIGTERM, _left_to_the_supervisor)
    settings = Settings.model_validate_json(settings_json)
    configure_logging(logging.WARNING, settings.log_format, "%(asctime)s %(name)s: %(message)s")
    tracing.configure(settings, "worker")
    keys = Keys(settings.key_prefix)
    client = sync_redis(settings)
    runtime.init(settings, client)
    executor = Executor(
        WorkerScripts(client, keys), settings.log_max_bytes, settings.result_max_bytes, settings
    )
    return ChildRuntime(settings, keys, client, executor)


def child_main(
    worker_id: str,
    index: int,
    settings_json: str,
    queues: list[str],
    slot: Slot,
    stop: Event,
    parent_pid: int,
) -> None:
    """Entry point of a worker child process (forked by the fork server `parent_pid`)."""
    settings, keys, client, executor = begin_child(settings_json, parent_pid)
    own_pid = os.getpid()
    finisher = Finisher(client, keys)
    consumer = consumer_name(worker_id, index, os.getpid())
    reads = SyncLane(client)  # the reads' own connection (`redis_lane`)
    streams = [keys.queue(q) for q in queues]
    read_tail: list[str | int] = ["BLOCK", 500, "STREAMS", *streams, *(">" for _ in streams)]
    # this consumer's own pending entries, re-read between batches (where it holds none)
    # after a failed read and every OWN_PENDING_SECONDS: a read whose reply was lost
    # (connection cut, timeout, and redis-py retrying the command unseen) left its entries
    # delivered to us, and nobody else releases the entries of a live worker
    own_tail: list[str | int] = ["STREAMS", *streams, *("0" for _ in streams)]
    recheck = False
    check_own_at = time.monotonic() + OWN_PENDING_SECONDS
    backoff = redis_retry()  # reading again within a second of Redis coming back
    outage = OutageLog(log, f"worker child {consumer} cannot read the queue")
    read_size = ReadSize(settings.prefetch)
    prefetch = Prefetch()
    watch = SlowTaskWatch(
        prefetch,
        client,
        keys,
        slot.running_since,
        send_results=finisher.flush,
        describe=slot.describe,
        alive=lambda: os.getppid() == parent_pid,
    )
    executor.lookahead(_ahead_taker(prefetch), prefetch.give_back, prefetch.unstarted)
    freeze_startup_objects()
    watch.start()
    slot.mark_reading()
    try:
        # a child whose supervisor died (SIGKILL, OOM) stops too, its fork server with it:
        # nobody would enforce its deadlines, and another supervisor is about to release
        # its entries
        while not stop.is_set() and os.getppid() == parent_pid:
            if os.getpid() != own_pid:  # a copy user code forked: only the child reads
                os._exit(1)
            own = recheck or time.monotonic() >= check_own_at
            try:
                count = read_size.count
                tail = own_tail if own else read_tail
                response = stream_reply(
                    reads.execute(
                        "XREADGROUP", "GROUP", WORKER_GROUP, consumer, "COUNT", count, *tail
                    )
                )
                backoff.reset()
                outage.ok()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                outage.failed(exc)
                recheck = True
                time.sleep(backoff.next())
                continue
            except redis.ResponseError as exc:  # a queue stream or its group was deleted
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                log.warning("queue stream of %s vanished (%s): recreating its group", consumer, exc)
                time.sleep(backoff.next())
                ensure_groups(client, keys, queues)
                continue
            started = time.monotonic()
            batch: list[Entry] = []
            # (re-read pending entries come back without fields once deleted: skipped)
            for raw_stream, entries in as_pending_streams(response):
                stream = raw_stream.decode()
                batch.extend(
                    (stream, raw_id.decode(), fields)
                    for raw_id, fields in entries
                    if fields is not None
                )
            if own:
                check_own_at = time.monotonic() + OWN_PENDING_SECONDS
                recheck = recheck and bool(batch)  # until nothing of ours is left pending
            tasks = prefetch.fill(batch)
            while (item := prefetch.take()) is not None:
                _run_item(executor, finisher, slot, prefetch, keys, item)
                finisher.flush_if_due()
                # (Event.is_set takes a lock: while tasks are quick, once per read will do)
                if (
                    time.monotonic() - started > ReadSize.SLOW_SECONDS
                    and not prefetch.ahead  # (those Node has: they run first)
                    and stop.is_set()
                ):
                    break  # the rest stays pending: the supervisor gives it back after we exit
            finisher.flush()
            read_size.update(len(batch), tasks, time.monotonic() - started)
    finally:
        watch.stop()
        finisher.flush()
        executor.close()
        tracing.shutdown()  # spans still buffered (OTLP) go out before the child exits
        # what our tasks started lives no longer than we do
        leftovers = kill_session(own_pid, spare=own_pid)
        if leftovers:
            log.warning("worker child %s killed %d leftover process(es)", own_pid, len(leftovers))


def _ahead_taker(prefetch: Prefetch) -> Callable[[int, Callable[[Task], bool]], int]:
    """How the executor takes the next tasks of the batch ahead (for its Node process): only
    tasks that start as they are, with nothing done at their start (no concurrency slot, no
    status key to mark running; Node checks their expiry when it starts them). Each keeps its
    decoded task, which `_outcome` then uses."""

    def take(limit: int, accept: Callable[[Task], bool]) -> int:
        def ok(item: Item) -> Task | None:
            _, _, payload, bundle, _, _ = item
            try:
                task = decode_task(payload if bundle is not None else payload[b"e"])
            except (KeyError, msgspec.DecodeError):
                return None
            if task.status_key:
                return None
            if task.meta and concurrency.limit_of(task):
                return None
            return task if accept(task) else None

        return prefetch.take_ahead(limit, ok)

    return take


def _run_item(
    executor: Executor, finisher: Finisher, slot: Slot, prefetch: Prefetch, keys: Keys, item: Item
) -> None:
    """Run one task and hand its outcome to the finisher."""
    stream, entry_id, _, bundle, index, _ = item
    task, outcome = _outcome(executor, finisher, slot, keys, item)
    with prefetch.lock:  # the hand back reads the slot and the bundle under it
        slot.clear()
        last = prefetch.settle(item)
    finisher.add(stream, entry_id, task, outcome, bundle=bundle, index=index, last=last)


def _outcome(
    executor: Executor, finisher: Finisher, slot: Slot, keys: Keys, item: Item
) -> tuple[Task, Outcome]:
    """Decode and run the task of `item` (a crash inside leaves the slot naming it)."""
    stream, entry_id, payload, bundle, index, task = item
    try:
        if task is None:  # (one taken ahead was decoded then)
            task = decode_task(payload if bundle is not None else payload[b"e"])
    except (KeyError, msgspec.DecodeError) as exc:
        log.error("discarding malformed task %s %s #%d: %s", stream, entry_id, index, exc)
        return Task(function="?"), None
    limit = concurrency.limit_of(task) if task.meta else None
    if limit:
        finisher.flush()  # finished tasks of this batch may hold the slots this one needs
    if limit and not concurrency.acquire(finisher.redis, keys, task, limit):
        eta = time.time() + concurrency.RETRY_SECONDS  # every slot is taken: back, same attempt
        return task, Retry(task, eta)
    deadline = time.time() + task.timeout + executor.deadline_slack(task)
    slot.set(stream, entry_id, index, deadline, task=task)
    if task.status_key:
        _mark_running(finisher.redis, task, task.status_key)
    try:
        hooks = tracing.hooks
        result = executor.run(task) if hooks is None else hooks.run(task, executor.run)
    except NodeDied as exc:  # killed from outside: as if this worker had died with the task
        return task, after_node_died(task, str(exc))
    if result.status == Status.FAILURE and task.attempt <= task.retries:
        eta = time.time() + task.retry_delay * (2 ** (task.attempt - 1))
        retry = msgspec.structs.replace(task, attempt=task.attempt + 1)
        return task, Retry(retry, eta, result)
    return task, result


def after_node_died(task: Task, why: str) -> Outcome:
    """The task whose Node process was killed runs again as its next attempt, the way a task
    of a dead worker child does (`queue._release_task`), until `max_attempts`."""
    if task.attempt >= task.max_attempts:
        return result_for(
            task,
            Status.FAILURE,
            end_time=time.time(),
            error_type="NodeDied",
            error_message=f"{why}; attempt {task.attempt} of {task.max_attempts} was the last",
        )
    died = result_for(
        task,
        Status.RETRYING,
        end_time=time.time(),
        error_type="NodeDied",
        error_message=f"{why} while attempt {task.attempt} of {task.max_attempts} ran; "
        "it runs again",
    )
    return Retry(msgspec.structs.replace(task, attempt=task.attempt + 1), time.time(), died)


def _mark_running(client: redis.Redis, task: Task, status_key: str) -> None:
    """Tell status readers the task started; XX so a finished (or expired) key is not revived."""
    running = result_for(task, Status.RUNNING, start_time=time.time())
    try:
        client.set(status_key, encode(running), xx=True, keepttl=True)
    except redis.RedisError as exc:
        log.warning("cannot mark task %s running: %s", task.id, exc)


__all__ = ["Slot", "add_dead_letter", "child_main", "consumer_name", "result_for"]
