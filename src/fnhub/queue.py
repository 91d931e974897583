"""The durable task queue over Redis Streams: the semantics that make fnhub at-least-once.

- A task is an entry `{e: <msgpack envelope>}` in stream `<prefix>:q:<queue>`, read through the
  consumer group `workers`; each worker child is its own consumer. Tasks a server enqueues
  together (a subscription's batch, the calls of one loop iteration) share a *bundle* entry
  `{b: <msgpack array of envelopes>}`: per entry, not per task, is where Redis spends its time
  (XADD, XREADGROUP, XACK, XDEL). The child that reads a bundle runs its tasks in order and
  acknowledges the entry once all of them finished; their results go out as they come, and
  `keys.bundles` says how many are done, so a crash repeats none of those. `keys.bundled` keeps
  queue lengths in tasks.
- An entry is acknowledged (XACK + XDEL, so the stream only holds unfinished work) in the same
  atomic call as its reply and its record (`FINISH`, or a MULTI where the batch needs more), and
  only after the task finished.
- Entries left pending by a dead consumer are released: the one that was running is retried with
  `attempt + 1` (or dead-lettered past `max_attempts`), the ones merely prefetched go back as they
  were. Releasing copies the envelope to the stream tail and acks the old entry atomically.
- Delayed tasks wait in a sorted set and are moved into their stream by an atomic Lua script, so
  any number of movers may run.

The `add_*` helpers only queue commands on a pipeline, so the same code serves redis-py's sync
and asyncio clients; the caller executes the pipeline.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast

import msgspec
import redis
from redis.typing import StreamIdT

from fnhub.concurrency import add_release
from fnhub.keys import WORKER_GROUP, Keys
from fnhub.minute_stats import BUCKET_LABELS, MINUTE_TTL_SECONDS, RUN_BOUNDS
from fnhub.redis_replies import as_claimed, as_optional_list, pending_ids
from fnhub.tasks import Status, Task, TaskResult, decode_task, encode, result_for

log = logging.getLogger(__name__)

REPLY_TTL_SECONDS = 3600
RECORDS_MAXLEN = 2_000_000
DEAD_MAXLEN = 100_000
STATUS_TTL_SECONDS = 86400
#: upper bounds (seconds) of the run-time histogram buckets kept per queue in `keys.stats`
RUN_BUCKETS = RUN_BOUNDS[5:]  # 0.005 ... 300.0
#: a `RUN_BOUNDS` index → the `keys.stats` bucket it counts in
_QUEUE_BUCKET = (
    *(str(RUN_BUCKETS[max(i - 5, 0)]) for i in range(len(RUN_BOUNDS))),
    "+Inf",
)

_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local queue = string.sub(member, 1, sep - 1)
  local id = string.sub(member, sep + 1)
  local envelope = redis.call('HGET', KEYS[2], id)
  if envelope then redis.call('XADD', ARGV[3] .. queue, '*', 'e', envelope) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


#: XADD of many entries to one queue stream in one command (a pipeline of XADDs costs the
#: asyncio client an await per reply). KEYS: the stream, `keys.bundled`; ARGV: how many more
#: tasks than entries this adds, then field and value of each entry.
ENQUEUE_MANY = """
for i = 2, #ARGV, 2 do redis.call('XADD', KEYS[1], '*', ARGV[i], ARGV[i + 1]) end
if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[2], KEYS[1], ARGV[1]) end
return #ARGV
"""
#: envelopes per ENQUEUE_MANY call: bounds how long one call holds Redis
ENQUEUE_MANY_CHUNK = 200

#: Each queue's length in tasks: XLEN plus what bundles hold beyond one task each. A queue
#: stream that is empty holds no bundle, so its count is reset there (a stream deleted by hand,
#: or a bundle too malformed to know its size, would otherwise leave it wrong for good).
QUEUE_LENGTHS = """
local out = {}
for i = 1, #KEYS do
  local n = redis.call('XLEN', KEYS[i])
  local extra = tonumber(redis.call('HGET', ARGV[1], KEYS[i]) or '0')
  if n == 0 and extra ~= 0 then redis.call('HDEL', ARGV[1], KEYS[i]) end
  if n > 0 and extra > 0 then n = n + extra end
  out[i] = n
end
return out
"""

_bundle_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])


def bundle_value(envelopes: list[bytes]) -> bytes:
    """The `b` field of a bundle entry: the envelopes as one msgpack array."""
    return _raw_list_encoder.encode([msgspec.Raw(data) for data in envelopes])


def bundle_envelopes(value: bytes) -> list[msgspec.Raw]:
    """The envelopes of a bundle entry, undecoded; raises msgspec.DecodeError if malformed."""
    return _bundle_decoder.decode(value)


def bundle_field(kind: str, stream: str, entry_id: str) -> str:
    """A field of `keys.bundles`: kind "done" (tasks finished) or "end" (tasks kept)."""
    return f"{kind}|{stream}|{entry_id}"


class Entry(NamedTuple):
    """A new entry of a queue stream: the one definition of what a queue entry holds.

    Every writer puts tasks on a queue through one of these (`add_entry`, `add_enqueue`, the
    server's ENQUEUE_MANY, the cron beat's fire script), so the layout lives here only."""

    field: str  # "e": one envelope, "b": a bundle of them (`bundle_value`)
    value: bytes
    extra: int  # tasks beyond one, counted in `keys.bundled` (queue lengths in tasks)


class Delayed(NamedTuple):
    """A task waiting for `due` (epoch seconds) in the delayed set, moved to its queue then
    (`move_due`)."""

    due: float
    member: str  # in `keys.delayed`: "<queue>|<task id>", scored by `due`
    task_id: str  # field of `keys.delayed_tasks` holding the envelope
    envelope: bytes


def queue_entry(envelopes: list[bytes]) -> Entry:
    """The entry holding these envelopes (one or more), in order."""
    if len(envelopes) == 1:
        return Entry("e", envelopes[0], 0)
    return Entry("b", bundle_value(envelopes), len(envelopes) - 1)


def delayed_entry(task: Task, envelope: bytes, due: float) -> Delayed:
    return Delayed(due, f"{task.queue}|{task.id}", task.id, envelope)


def enqueue_many_args(envelopes: list[bytes], entries: int) -> list[bytes | str]:
    """ENQUEUE_MANY's arguments for `envelopes` as `entries` entries of nearly equal size: as
    many as there are worker processes, so a burst of slow tasks still spreads over all."""
    n = len(envelopes)
    entries = max(1, min(entries, n))
    args: list[bytes | str] = [str(n - entries)]
    for k in range(entries):
        entry = queue_entry(envelopes[k * n // entries : (k + 1) * n // entries])
        args += [entry.field, entry.value]
    return args


def add_entry(pipe: Any, keys: Keys, stream: str, entry: Entry) -> None:
    """Queue the commands that add `entry` to `stream`."""
    pipe.xadd(stream, {entry.field: entry.value})
    if entry.extra:
        pipe.hincrby(keys.bundled, stream, entry.extra)


def add_delayed(pipe: Any, keys: Keys, delayed: Delayed) -> None:
    pipe.hset(keys.delayed_tasks, delayed.task_id, delayed.envelope)
    pipe.zadd(keys.delayed, {delayed.member: delayed.due})


def add_bundle(pipe: Any, keys: Keys, stream: str, envelopes: list[bytes]) -> None:
    """Queue the commands that add these envelopes to `stream` as one entry."""
    add_entry(pipe, keys, stream, queue_entry(envelopes))


def add_enqueue(pipe: Any, keys: Keys, task: Task, *, eta: float | None = None) -> None:
    """Queue the commands that put `task` on its queue now, or at `eta` (epoch seconds)."""
    data = encode(task)
    if eta is not None and eta > time.time():
        add_delayed(pipe, keys, delayed_entry(task, data, eta))
    else:
        add_entry(pipe, keys, keys.queue(task.queue), queue_entry([data]))


class ResultBatch:
    """What a batch of finished tasks sends, gathered so that the whole batch costs a handful of
    commands: one reply entry per waiting caller, one records entry, each counter and TTL once.

    A worker finishing many tasks at once would otherwise send two XADDs and several counters
    per task, and on a busy machine those commands are most of the cost of a trivial task."""

    def __init__(self) -> None:
        # counted per queue (`keys.stats`) and per function and minute (`keys.stats_minute`):
        # (queue, function, status, minute) → tasks, (queue, function, bucket, minute) → tasks
        # with `bucket` an index into RUN_BOUNDS; summed per queue or function once per batch
        self.outcomes: dict[tuple[str, str, str, int], int] = {}
        self.buckets: dict[tuple[str, str, int, int], int] = {}
        self.run_seconds: dict[str, float] = {}  # queue → seconds
        self.function_seconds: dict[str, float] = {}  # function → run seconds
        # queue wait (trigger → start) per function: (function, RUN_BOUNDS index) → tasks
        self.wait_buckets: dict[tuple[str, int], int] = {}
        self.wait_seconds: dict[str, float] = {}  # function → wait seconds
        # final outcomes other than success and skipped, per (function, `failure_kind`)
        self.failure_kinds: dict[tuple[str, str], int] = {}
        self.replies: dict[str, list[bytes]] = {}
        self.records: list[bytes] = []
        # records still as results (`add_successes`): encoded with `records`, in one call
        self.record_results: list[TaskResult] = []
        # bundle entries: `keys.bundles` fields to set (tasks done) and to delete (entry
        # acknowledged), and the change of each queue's `keys.bundled` count
        self.bundle_progress: dict[str, int] = {}
        self.bundle_forget: list[str] = []
        self.bundled: dict[str, int] = {}

    def flush(self, pipe: Any, keys: Keys) -> None:
        self.add_entries(pipe, keys)
        counts, seconds = self.counters()
        for field, n in counts.items():
            pipe.hincrby(keys.stats, field, n)
        for field, value in seconds.items():
            pipe.hincrbyfloat(keys.stats, field, value)
        for key, fields in self.minute_counters(keys).items():
            for field, n in fields.items():
                pipe.hincrby(key, field, n)
            pipe.expire(key, MINUTE_TTL_SECONDS)

    def add_entries(self, pipe: Any, keys: Keys, records: bytes | None = None) -> None:
        """The reply entries (one per waiting caller) and the records entry, as plain XADDs;
        `records`: `records_value()`, if the caller has it already."""
        for stream, results in self.replies.items():
            # never trimmed here: a caller with many tasks out would lose replies; callers trim
            # what they have read, and the TTL removes the stream of a caller that went away
            pipe.xadd(stream, results_entry(results))
            pipe.expire(stream, REPLY_TTL_SECONDS)
        if records is None and (self.records or self.record_results):
            records = self.records_value()
        if records:
            pipe.xadd(
                keys.records,
                {"rs": records},
                maxlen=RECORDS_MAXLEN,
                approximate=True,
            )

    def records_value(self) -> bytes:
        """The records as one msgpack array (`results_value`): the results not encoded yet
        and the encoded ones in one call, which costs half of encoding each result apart."""
        results: list[Any] = self.record_results
        if self.records:
            results = [*results, *(msgspec.Raw(data) for data in self.records)]
        return _raw_list_encoder.encode(results)

    def counters(self) -> tuple[dict[str, int], dict[str, float]]:
        """The `keys.stats` fields to add to: task counts and run-time buckets per queue
        (`n|`, `b|`) and per function (`fn|`, `fb|`), queue-wait buckets per function (`fw|`),
        failures per function and kind (`fk|`) and the seconds summed for each histogram (`s|`,
        `fs|`, `fws|`)."""
        counts: dict[str, int] = {}
        for (queue, function, status, _minute), n in self.outcomes.items():
            for name in (f"n|{queue}|{status}", f"fn|{function}|{status}"):
                counts[name] = counts.get(name, 0) + n
        for (queue, function, index, _minute), n in self.buckets.items():
            bound = _QUEUE_BUCKET[index]
            for name in (f"b|{queue}|{bound}", f"fb|{function}|{bound}"):
                counts[name] = counts.get(name, 0) + n
        for (function, index), n in self.wait_buckets.items():
            name = f"fw|{function}|{_QUEUE_BUCKET[index]}"
            counts[name] = counts.get(name, 0) + n
        for (function, kind), n in self.failure_kinds.items():
            counts[f"fk|{function}|{kind}"] = n
        seconds = {f"s|{q}": value for q, value in self.run_seconds.items()}
        seconds.update((f"fs|{f}", value) for f, value in self.function_seconds.items())
        seconds.update((f"fws|{f}", value) for f, value in self.wait_seconds.items())
        return counts, seconds

    def minute_counters(self, keys: Keys) -> dict[str, dict[str, int]]:
        """The per-minute hashes to add to (`fnhub.minute_stats`): key → field → tasks."""
        hashes: dict[str, dict[str, int]] = {}
        for (_queue, function, status, minute), n in self.outcomes.items():
            fields = hashes.setdefault(keys.stats_minute(minute), {})
            name = f"n|{function}|{status}"
            fields[name] = fields.get(name, 0) + n
        for (_queue, function, index, minute), n in self.buckets.items():
            fields = hashes.setdefault(keys.stats_minute(minute), {})
            name = f"b|{function}|{BUCKET_LABELS[index]}"
            fields[name] = fields.get(name, 0) + n
        return hashes

    def finish_plan(self, pipe: Any, keys: Keys, acks: dict[str, list[str]]) -> bytes:
        """The argument of FINISH: the entries to acknowledge, the counters and the reply and
        records entries; past `FINISH_INLINE_BYTES` of results those entries go on `pipe` as
        plain XADDs instead, and the plan leaves them out."""
        records = self.records_value() if self.records or self.record_results else b""
        size = len(records)
        size += sum(len(data) for results in self.replies.values() for data in results)
        inline = size <= FINISH_INLINE_BYTES
        if not inline:
            self.add_entries(pipe, keys, records)
        counts, seconds = self.counters()
        return _raw_list_encoder.encode(
            [
                acks,
                {stream: lua_str(results_value(rs)) for stream, rs in self.replies.items()}
                if inline
                else {},
                lua_str(records) if inline and records else "",
                counts,
                {field: repr(value) for field, value in seconds.items()},
                keys.stats,
                keys.records,
                WORKER_GROUP,
                REPLY_TTL_SECONDS,
                RECORDS_MAXLEN,
                self.bundle_progress,
                self.bundle_forget,
                self.bundled,
                keys.bundles,
                keys.bundled,
                self.minute_counters(keys),
                MINUTE_TTL_SECONDS,
            ]
        )


def lua_str(data: bytes) -> msgspec.Raw:
    """Bytes as a msgpack *str*, for arguments that Lua scripts unpack with cmsgpack: Redis's
    cmsgpack cannot read the bin type, and Lua strings hold any bytes."""
    n = len(data)
    if n < 32:
        head = bytes([0xA0 | n])
    elif n < 0x100:
        head = b"\xd9" + n.to_bytes(1, "big")
    elif n < 0x10000:
        head = b"\xda" + n.to_bytes(2, "big")
    else:
        head = b"\xdb" + n.to_bytes(4, "big")
    return msgspec.Raw(head + data)


#: What a worker sends when a batch of tasks finished, as one atomic command: acknowledge and
#: delete the entries, add one reply entry per waiting caller and one records entry, count
#: (per queue in `keys.stats`, per function in the minute's `keys.stats_minute`).
#: Ten commands in a MULTI cost redis-py a reply to parse each; this is one. Past
#: `FINISH_INLINE_BYTES` of results, though, handing them to Lua costs Redis more than plain
#: XADDs do (Lua copies every argument into a string of its own), so a large batch sends its
#: entries beside FINISH in a MULTI and FINISH only acknowledges and counts. ARGV[1] is
#: `ResultBatch.finish_plan` (msgpack); keys are named in it, not in KEYS (no Redis Cluster).
FINISH = """
local plan = cmsgpack.unpack(ARGV[1])
for stream, ids in pairs(plan[1]) do
  redis.call('XACK', stream, plan[8], unpack(ids))
  redis.call('XDEL', stream, unpack(ids))
end
for stream, data in pairs(plan[2]) do
  redis.call('XADD', stream, '*', 'rs', data)
  redis.call('EXPIRE', stream, plan[9])
end
if plan[3] ~= '' then
  redis.call('XADD', plan[7], 'MAXLEN', '~', plan[10], '*', 'rs', plan[3])
end
for field, n in pairs(plan[4]) do redis.call('HINCRBY', plan[6], field, n) end
for field, x in pairs(plan[5]) do redis.call('HINCRBYFLOAT', plan[6], field, x) end
for field, n in pairs(plan[11]) do redis.call('HSET', plan[14], field, n) end
if #plan[12] > 0 then redis.call('HDEL', plan[14], unpack(plan[12])) end
for stream, n in pairs(plan[13]) do redis.call('HINCRBY', plan[15], stream, n) end
for key, fields in pairs(plan[16]) do
  for field, n in pairs(fields) do redis.call('HINCRBY', key, field, n) end
  redis.call('EXPIRE', key, plan[17])
end
return 1
"""
FINISH_INLINE_BYTES = 16_384


_raw_list_encoder = msgspec.msgpack.Encoder()
_results_decoder = msgspec.msgpack.Decoder(list[TaskResult])


def results_value(results: list[bytes]) -> bytes:
    """Encoded results as one msgpack array: the `rs` field of a reply or records entry."""
    return _raw_list_encoder.encode([msgspec.Raw(data) for data in results])


def results_entry(results: list[bytes]) -> dict[str, bytes]:
    """A stream entry carrying results in one field `rs` (one field, however many results:
    each field is two more arguments to pack per XADD)."""
    return {"rs": results_value(results)}


def iter_results(fields: dict[bytes, bytes]) -> Iterator[TaskResult]:
    """The results in a reply or records entry; raises msgspec.DecodeError on a malformed one."""
    yield from _results_decoder.decode(results_data(fields))


def results_data(fields: dict[bytes, bytes]) -> bytes:
    """The `rs` field of a reply or records entry (msgspec.DecodeError if it has none)."""
    data = fields.get(b"rs")
    if data is None:
        raise msgspec.DecodeError("entry has no results field 'rs'")
    return data


def add_result(
    pipe: Any, keys: Keys, task: Task, result: TaskResult, batch: ResultBatch | None = None
) -> None:
    """Queue the reply to the waiting caller (if any), the status key, the record and counters.

    With `batch`, replies, records and counters are gathered there for the caller to flush once;
    without, they are queued on `pipe` right away."""
    data = encode(result)
    sums = ResultBatch() if batch is None else batch
    add_release(pipe, keys, task)
    marker = task.meta.get("running_marker")
    if isinstance(marker, str) and marker.startswith(keys.running_marker_prefix):
        pipe.delete(marker)  # the trigger's "still running" flag (cron overlap) ends with the task
    if task.status_key:
        pipe.set(task.status_key, data, ex=STATUS_TTL_SECONDS)
    add_stats(sums, result)
    if task.reply_to:
        sums.replies.setdefault(task.reply_to, []).append(data)
    if task.record:
        sums.records.append(data)
    if task.dead_letter and result.status in DEAD_LETTER_STATUSES:
        reason = f"{result.status}: {result.error_type}: {result.error_message}"
        add_dead_letter_entry(pipe, keys, task, reason)
    if batch is None:
        sums.flush(pipe, keys)


def add_retrying(
    pipe: Any, keys: Keys, task: Task, result: TaskResult, batch: ResultBatch | None = None
) -> None:
    """Record an attempt that runs again (status `retrying`): the record keeps every attempt
    before the last, and the status key says why the task is not done. No reply and no
    counters: callers and metrics see the final outcome only."""
    data = encode(msgspec.structs.replace(result, status=Status.RETRYING))
    if task.status_key:
        pipe.set(task.status_key, data, ex=STATUS_TTL_SECONDS)
    if not task.record:
        return
    if batch is not None:
        batch.records.append(data)
    else:
        pipe.xadd(keys.records, results_entry([data]), maxlen=RECORDS_MAXLEN, approximate=True)


def add_stats(batch: ResultBatch, result: TaskResult) -> None:
    """Count the outcome and its run time's bucket, per queue, function and the minute it
    ended in (one key each: the sums per queue and per function are made once per batch), and
    the function's queue wait."""
    add_stats_many(batch, (result,))


def add_successes(batch: ResultBatch, results: Sequence[TaskResult]) -> None:
    """`add_result` for successes of one task template (one function, one queue) whose tasks
    need nothing but their record and counters: no caller waiting (`reply_to`), no status
    key, no concurrency slot and no trigger marker to give back (a direct subscription's
    batch, `worker.direct`). Recorded and counted a batch at a time instead of a call (and a
    closure) per task: a direct child settles hundreds at a time."""
    if not results:
        return
    batch.record_results += [result for result in results if result.record]
    starts = [result.start_time for result in results]
    ends = [result.end_time for result in results]
    triggers = [result.trigger_time for result in results]
    if None in starts or None in ends or 0.0 in triggers:  # not ran here (never, in practice)
        add_stats_many(batch, results)
        return
    ran = cast("list[float]", starts), cast("list[float]", ends)  # no None, checked above
    _count_successes(batch, results[0].queue, results[0].function, *ran, triggers)


def _count_successes(
    batch: ResultBatch,
    queue: str,
    function: str,
    starts: list[float],
    ends: list[float],
    triggers: list[float],
) -> None:
    """`add_stats_many` for successes of one queue and function that ran (start, end and
    trigger times known), counted by list and Counter passes: half its time per result."""
    bounds = RUN_BOUNDS
    runs = [end - start if end > start else 0.0 for start, end in zip(starts, ends, strict=True)]
    waits = [start - t if start > t else 0.0 for start, t in zip(starts, triggers, strict=True)]
    minutes = [int(end // 60) for end in ends]
    per_minute = Counter(zip(minutes, [_bisect_left(bounds, x) for x in runs], strict=True))
    outcomes, buckets = batch.outcomes, batch.buckets
    for (minute, index), n in per_minute.items():
        key = (queue, function, _SUCCESS, minute)
        outcomes[key] = outcomes.get(key, 0) + n
        bucket = (queue, function, index, minute)
        buckets[bucket] = buckets.get(bucket, 0) + n
    run = sum(runs)
    batch.run_seconds[queue] = batch.run_seconds.get(queue, 0.0) + run
    batch.function_seconds[function] = batch.function_seconds.get(function, 0.0) + run
    wait_buckets = batch.wait_buckets
    for index, n in Counter([_bisect_left(bounds, x) for x in waits]).items():
        wait_buckets[function, index] = wait_buckets.get((function, index), 0) + n
    batch.wait_seconds[function] = batch.wait_seconds.get(function, 0.0) + sum(waits)


def add_stats_many(batch: ResultBatch, results: Iterable[TaskResult]) -> None:
    """`add_stats` of each result, with the names bound once for the lot (a busy worker counts
    every task here)."""
    outcomes, failure_kinds = batch.outcomes, batch.failure_kinds
    buckets, run_seconds = batch.buckets, batch.run_seconds
    function_seconds = batch.function_seconds
    wait_buckets, wait_seconds = batch.wait_buckets, batch.wait_seconds
    bounds, bisect_left, success = RUN_BOUNDS, _bisect_left, _SUCCESS
    for result in results:
        queue, function, status = result.queue, result.function, result.status
        start, end, trigger = result.start_time, result.end_time, result.trigger_time
        minute = int((end if end is not None else time.time()) // 60)
        key = (queue, function, status, minute)
        outcomes[key] = outcomes.get(key, 0) + 1
        if status != success:  # the common case pays one comparison
            kind = failure_kind(result)
            if kind is not None:
                failure_kinds[function, kind] = failure_kinds.get((function, kind), 0) + 1
        if start is None:
            continue
        if end is not None:
            seconds = end - start if end > start else 0.0
            bucket = (queue, function, bisect_left(bounds, seconds), minute)
            buckets[bucket] = buckets.get(bucket, 0) + 1
            run_seconds[queue] = run_seconds.get(queue, 0.0) + seconds
            function_seconds[function] = function_seconds.get(function, 0.0) + seconds
        if trigger:
            # trigger → start of the final attempt; clocks of different hosts may disagree
            wait = start - trigger if start > trigger else 0.0
            index = (function, bisect_left(bounds, wait))
            wait_buckets[index] = wait_buckets.get(index, 0) + 1
            wait_seconds[function] = wait_seconds.get(function, 0.0) + wait


_SUCCESS = Status.SUCCESS
_bisect_left = bisect.bisect_left


#: error types the platform sets itself (the worker, its supervisor, the queue): a failure of one
#: of these kinds is counted under its name; any other error type is an exception user code
#: raised, counted as "user" (its class name is free-form: one series per class would grow
#: without bound). A user exception named like one of these counts as that kind.
PLATFORM_ERRORS = frozenset(
    {
        "TimeoutError",  # killed at its timeout (status timeout)
        "MemoryLimitExceeded",  # killed past the memory limit
        "DeadLetter",  # gave up after max_attempts (status dead)
        "TaskExpired",  # not started before `expires` (status expired)
        "UnknownFunction",  # no such function in the worker's scripts
        "ResultTooLarge",
        "ResultNotSerializable",
        "ScriptLoadError",  # the script version fails to load in the worker
        "NodeDied",  # a JavaScript task's Node process was killed on its last attempt
        "NodeUnavailable",  # no usable Node (or npm packages) on the worker
        "ProcessExit",  # a JavaScript function ended its Node process
    }
)


def failure_kind(result: TaskResult) -> str | None:
    """The bounded kind a final outcome is counted under in `fnhub_function_failures_total`:
    None for success and skipped, the platform's error type, else "user"."""
    if result.status in (Status.SUCCESS, Status.SKIPPED):
        return None
    if result.status == Status.TIMEOUT:
        return "TimeoutError"
    error_type = result.error_type or ""
    return error_type if error_type in PLATFORM_ERRORS else "user"


def add_ack(pipe: Any, stream: str, *entry_ids: str | bytes) -> None:
    pipe.xack(stream, WORKER_GROUP, *entry_ids)
    pipe.xdel(stream, *entry_ids)


#: Add a dead letter: the entry carries the envelope, why, when, and the task id and function as
#: plain fields (listing by function reads no envelope); `keys.dead_ids` maps the task id to the
#: entry. Past DEAD_MAXLEN the oldest entries go, with their index fields. KEYS: the stream, the
#: index; ARGV: envelope, reason, time, task id, function, DEAD_MAXLEN.
DEAD_LETTER = """
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1], 'reason', ARGV[2], 'at', ARGV[3],
  'id', ARGV[4], 'fn', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[4], id)
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[6])
if excess > 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'id' and redis.call('HGET', KEYS[2], fields[i + 1]) == entry[1] then
        redis.call('HDEL', KEYS[2], fields[i + 1])
      end
    end
    redis.call('XDEL', KEYS[1], entry[1])
  end
end
return id
"""
#: final outcomes that a function with `dead_letter=True` also sends to the dead letters
DEAD_LETTER_STATUSES = frozenset({Status.FAILURE, Status.TIMEOUT})
DEAD_REASON_MAX_CHARS = 2000


def add_dead_letter_entry(pipe: Any, keys: Keys, task: Task, reason: str) -> None:
    """Queue the dead-letter entry of `task` (no record: the caller writes its outcome)."""
    pipe.eval(
        DEAD_LETTER,
        2,
        keys.dead,
        keys.dead_ids,
        encode(task),
        reason[:DEAD_REASON_MAX_CHARS],
        repr(time.time()),
        task.id,
        task.function,
        DEAD_MAXLEN,
    )


def add_dead_letter(pipe: Any, keys: Keys, task: Task, reason: str) -> TaskResult:
    """Move a task that exhausted its attempts to the dead-letter stream, with a record."""
    add_dead_letter_entry(pipe, keys, task, reason)
    result = result_for(
        task,
        Status.DEAD,
        end_time=time.time(),
        error_type="DeadLetter",
        error_message=f"gave up after {task.attempt} attempt(s): {reason}",
    )
    add_result(pipe, keys, task, result)
    return result


def ensure_groups(client: redis.Redis, keys: Keys, queues: list[str]) -> None:
    """Create each queue's consumer group at id 0, so entries added before it are not skipped."""
    for queue in queues:
        try:
            client.xgroup_create(keys.queue(queue), WORKER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def move_due(client: redis.Redis, keys: Keys, limit: int = 1000) -> int:
    """Move delayed tasks whose time has come into their queues; returns how many moved."""
    return int(
        client.eval(
            _MOVE_DUE,
            2,
            keys.delayed,
            keys.delayed_tasks,
            repr(time.time()),
            limit,
            f"{keys.prefix}:q:",
        )
    )


def release_consumer(
    client: redis.Redis,
    keys: Keys,
    stream: str,
    consumer: str,
    *,
    running_entry: str | None,
    running_outcome: str,
    claimer: str,
    running_index: int = 0,
    running_detail: str = "",
) -> list[TaskResult]:
    """Hand a dead consumer's pending entries back to the queue; returns final results made here.

    `running_entry` is the entry the consumer was executing ("" if none; None if unknown, in
    which case every task counts as possibly running), and `running_index` the task within it
    (a bundle's). `running_outcome` is "timeout" (killed on purpose: final, not retried),
    "memory" (killed past the memory limit, `running_detail` saying by how much: a final
    failure), "crash" (retried with attempt + 1 until max_attempts, then dead) or "release"
    (shutdown: handed back as it was). Of a bundle, only the tasks not yet finished go back.
    """
    finals: list[TaskResult] = []
    while True:
        pending = client.xpending_range(stream, WORKER_GROUP, "-", "+", 100, consumername=consumer)
        if not pending:
            break
        ids = pending_ids(pending)
        to_claim: list[StreamIdT] = list(ids)  # redis-py's parameter: a list of any id type
        claimed = as_claimed(client.xclaim(stream, WORKER_GROUP, claimer, 0, to_claim))
        claimed_ids = {entry_id for entry_id, _ in claimed}
        pipe = client.pipeline(transaction=True)
        for entry_id in ids:  # deleted entries come back as missing: just ack them
            if entry_id not in claimed_ids:
                add_ack(pipe, stream, entry_id)
        progress = _bundle_progress(
            client, keys, stream, [_text(eid) for eid, fields in claimed if b"b" in fields]
        )
        for entry_id, fields in claimed:
            add_ack(pipe, stream, entry_id)
            entry = _text(entry_id)
            unfinished = _unfinished_tasks(pipe, keys, stream, entry, fields, progress)
            for index, task in unfinished:
                running = running_entry is None or (
                    entry == running_entry and index == running_index
                )
                finals.extend(
                    _release_task(pipe, keys, task, running, running_outcome, running_detail)
                )
        pipe.execute()
    client.xgroup_delconsumer(stream, WORKER_GROUP, consumer)
    return finals


def _bundle_progress(
    client: redis.Redis, keys: Keys, stream: str, entry_ids: list[str]
) -> dict[str, tuple[bytes | None, bytes | None]]:
    """Entry id → its `done` and `end` fields, for these bundle entries, in one HMGET."""
    if not entry_ids:
        return {}
    names = [bundle_field(k, stream, e) for e in entry_ids for k in ("done", "end")]
    values = as_optional_list(client.hmget(keys.bundles, names))
    return {e: (values[2 * i], values[2 * i + 1]) for i, e in enumerate(entry_ids)}


def _unfinished_tasks(
    pipe: Any,
    keys: Keys,
    stream: str,
    entry_id: str,
    fields: dict[bytes, bytes],
    progress: dict[str, tuple[bytes | None, bytes | None]],
) -> list[tuple[int, Task]]:
    """The tasks of a released entry that did not finish, with their index in it; a bundle's
    progress fields and its share of the queue's length go in the same transaction."""
    if b"b" not in fields:
        try:
            return [(0, decode_task(fields[b"e"]))]
        except (KeyError, msgspec.DecodeError):
            log.error("dropping malformed entry %s in %s", entry_id, stream)
            return []
    done, end = progress[entry_id]
    pipe.hdel(keys.bundles, *(bundle_field(k, stream, entry_id) for k in ("done", "end")))
    try:
        envelopes = bundle_envelopes(fields[b"b"])
    except msgspec.DecodeError:
        log.error("dropping malformed bundle entry %s in %s", entry_id, stream)
        return []
    kept = int(end) if end is not None else len(envelopes)
    pipe.hincrby(keys.bundled, stream, -(kept - 1))
    tasks = []
    for index in range(int(done or 0), kept):
        try:
            tasks.append((index, decode_task(envelopes[index])))
        except msgspec.DecodeError:
            log.error("dropping malformed task %d of bundle %s in %s", index, entry_id, stream)
    return tasks


def killed_result(task: Task, outcome: str, detail: str = "") -> TaskResult:
    """The final result of a task whose process the supervisor killed while it ran: past its
    deadline ("timeout") or over the memory limit ("memory", `detail` saying by how much)."""
    if outcome == "timeout":
        status, error_type = Status.TIMEOUT, "TimeoutError"
        message = (
            f"{task.function} ran longer than its {task.timeout:g}s timeout "
            "and its process was killed"
        )
    else:
        status, error_type = Status.FAILURE, "MemoryLimitExceeded"
        message = f"{task.function} {detail}"
    return result_for(
        task, status, end_time=time.time(), error_type=error_type, error_message=message
    )


def _release_task(
    pipe: Any, keys: Keys, task: Task, running: bool, outcome: str, detail: str = ""
) -> list[TaskResult]:
    """Queue what becomes of one released task; returns its final result if it got one."""
    add_release(pipe, keys, task)
    if not running or outcome == "release":
        add_enqueue(pipe, keys, task)
        return []
    if outcome in ("timeout", "memory"):
        result = killed_result(task, outcome, detail)
        add_result(pipe, keys, task, result)
        return [result]
    if task.attempt >= task.max_attempts:
        return [add_dead_letter(pipe, keys, task, "worker process died")]
    add_enqueue(pipe, keys, msgspec.structs.replace(task, attempt=task.attempt + 1))
    died = result_for(
        task,
        Status.RETRYING,
        end_time=time.time(),
        error_type="WorkerDied",
        error_message=f"the worker process died while attempt {task.attempt} of "
        f"{task.max_attempts} ran (or held it); it runs again",
    )
    add_retrying(pipe, keys, task, died)
    return []


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
