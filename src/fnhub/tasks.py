"""Task envelopes, results and statuses: the only shapes that cross the queue.

They are msgspec structs encoded as msgpack, so a task costs one small binary field in a stream
entry and decoding is a single C call on the worker's hot path.
"""

from __future__ import annotations

import random
import time
from enum import StrEnum
from typing import Any

import msgspec


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"  # an attempt failed (raised, or its process died); another will run
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    EXPIRED = "expired"
    DEAD = "dead"
    SKIPPED = "skipped"


class Origin(StrEnum):
    """What started a task (`origin`; `origin_id` says which one). Stored and sent as the plain
    string, and typed `str` on the wire, so a record or entry with an origin this version does
    not know still reads; a replay keeps the dead task's origin."""

    DIRECT = "direct"  # QueueClient: the CLI (`fnhub call`), tests, benches
    API = "api"  # POST /functions/{ref}/call|submit|call-many (fnhub.Client included)
    ENDPOINT = "endpoint"  # a published endpoint, sync or async
    ENDPOINT_AUTH = "endpoint_auth"  # an endpoint's auth function
    CRON = "cron"  # a cron tick, or a job's "run now"
    SUBSCRIPTION = "subscription"  # a broker message


FINAL_STATUSES = frozenset(
    {Status.SUCCESS, Status.FAILURE, Status.TIMEOUT, Status.EXPIRED, Status.DEAD, Status.SKIPPED}
)


def new_task_id() -> str:
    """Time-ordered id (ms timestamp + 48 random bits), so ids sort by creation like ULIDs.

    Ids name tasks, they grant nothing (reading a task needs an API key or the endpoint's own
    auth), so the process's PRNG (reseeded after fork) is enough: os.urandom is a system call
    per id, a visible cost when a subscription makes thousands of tasks a second."""
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(48):012x}"


def new_task_ids(n: int) -> list[str]:
    """`n` ids like `new_task_id`'s at a sixth of the cost each (one clock reading, one draw of
    random bytes for the lot): a subscription makes its tasks a batch at a time."""
    ms = f"{time.time_ns() // 1_000_000:012x}"
    noise = random.randbytes(6 * n).hex()
    return [ms + noise[i : i + 12] for i in range(0, 12 * n, 12)]


class Task(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One request to run a function. Built by a trigger, carried by the queue, read by a worker."""

    id: str = msgspec.field(default_factory=new_task_id)
    function: str  # "script.func"
    version: str = ""  # script version hash the trigger saw; "" = the active one
    kwargs: dict[str, Any] = {}
    origin: str = Origin.DIRECT
    origin_id: str = ""
    queue: str = "sync"
    timeout: float = 30.0
    trigger_time: float = msgspec.field(default_factory=time.time)
    expires_at: float | None = None
    attempt: int = 1
    max_attempts: int = 3
    retries: int = 0  # extra runs after the function raised (user opt-in)
    retry_delay: float = 1.0
    reply_to: str | None = None
    status_key: str | None = None  # Redis key kept at queued → running → final result (async)
    record: bool = True
    record_limit: int | None = None
    dead_letter: bool = False  # failed or timed out for good: also goes to the dead letters
    meta: dict[str, Any] = {}  # trigger details: http request, broker message, cron tick...
    #: the kwargs results and records show, when they must differ from what the function gets
    #: (credentials redacted by the server); None: `kwargs`
    record_kwargs: dict[str, Any] | None = None
    #: W3C `traceparent` of the span that enqueued it, when tracing is on (`fnhub.tracing`);
    #: left out of the encoding otherwise, and ignored by versions that do not know it
    trace: str | None = None


class TaskResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The outcome of one task: sent to `reply_to` and written as the task record."""

    id: str
    function: str
    status: str
    version: str = ""
    origin: str = Origin.DIRECT
    origin_id: str = ""
    queue: str = "sync"
    kwargs: dict[str, Any] = {}
    attempt: int = 1
    trigger_time: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    logs: str = ""
    record: bool = True
    record_limit: int | None = None
    meta: dict[str, Any] = {}

    @property
    def ok(self) -> bool:
        return self.status == Status.SUCCESS


_task_encoder = msgspec.msgpack.Encoder()
_task_decoder = msgspec.msgpack.Decoder(Task)
_result_decoder = msgspec.msgpack.Decoder(TaskResult)


def encode(obj: Task | TaskResult) -> bytes:
    return _task_encoder.encode(obj)


def decode_task(data: bytes) -> Task:
    return _task_decoder.decode(data)


def decode_result(data: bytes) -> TaskResult:
    return _result_decoder.decode(data)


def result_for(task: Task, status: Status, **fields: Any) -> TaskResult:
    """A result carrying the task's identity fields, for outcomes decided outside the function."""
    return TaskResult(
        id=task.id,
        function=task.function,
        status=status,
        version=task.version,
        origin=task.origin,
        origin_id=task.origin_id,
        queue=task.queue,
        kwargs=task.kwargs if task.record_kwargs is None else task.record_kwargs,
        attempt=task.attempt,
        trigger_time=task.trigger_time,
        record=task.record,
        record_limit=task.record_limit,
        meta=task.meta,
        **fields,
    )


def result_from(
    base: TaskResult,
    task: Task,
    status: str,
    *,
    start_time: float | None,
    end_time: float | None,
    result: Any = None,
    logs: str = "",
) -> TaskResult:
    """`result_for(task, status, ...)` for a task copied from the template `base` was made
    of (`result_for(template, ...)`): only what differs between such tasks is set. A struct
    of twenty fields built by keyword costs several times this copy, and a subscription's
    batch makes hundreds of results of one template. The fields are named one by one: handed
    on as `**fields`, msgspec's `replace` took about three times as long (1.1 against 0.45 µs)."""
    return msgspec.structs.replace(
        base,
        id=task.id,
        status=status,
        kwargs=task.kwargs if task.record_kwargs is None else task.record_kwargs,
        attempt=task.attempt,
        trigger_time=task.trigger_time,
        meta=task.meta,
        start_time=start_time,
        end_time=end_time,
        result=result,
        logs=logs,
    )


def expired_result(task: Task, at: float) -> TaskResult:
    """The outcome of a task found past its expiry when its turn came (`at`): never run."""
    return result_for(
        task,
        Status.EXPIRED,
        start_time=at,
        end_time=at,
        error_type="TaskExpired",
        error_message=f"task waited {at - task.trigger_time:.3f}s in the queue, "
        "past its expiry; it was not run",
    )
