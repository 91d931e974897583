"""Request and response bodies of the admin API, as pydantic models (they make the OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: the largest id or count an SQL INTEGER column holds everywhere (32 bits on PostgreSQL, MySQL)
SQL_INT_MAX = 2**31 - 1


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so are values of another JSON type
    (`0` for a boolean, `true` or `"5"` for a number), which pydantic would otherwise convert."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CallRequest(Strict):
    kwargs: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(None, gt=0, le=86400, description="seconds the function may run")
    queue: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class SubmitRequest(CallRequest):
    delay: float | None = Field(None, ge=0, le=30 * 86400, description="run after N seconds")
    eta: float | None = Field(None, ge=0, description="run at this epoch time (seconds)")


TaskStatus = Literal[
    "queued", "running", "retrying", "success", "failure", "timeout", "expired", "dead", "skipped"
]


class TaskState(BaseModel):
    id: str
    function: str
    status: TaskStatus
    origin: str
    origin_id: str
    queue: str
    attempt: int
    trigger_time: float
    start_time: float | None = None
    end_time: float | None = None
    wait_ms: float | None = None
    run_ms: float | None = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    logs: str | None = None


class Submitted(BaseModel):
    id: str
    status: Literal["queued"]
    queue: str
    url: str = Field(description="where the task's status can be read")


class TaskSummary(BaseModel):
    """A record as a listing shows it: no kwargs, result, logs or traceback, and at most 300
    characters of the error message (`GET /tasks/{id}/record` has everything)."""

    id: str
    function: str
    version: str
    status: TaskStatus
    origin: str
    origin_id: str
    queue: str
    attempt: int
    trigger_time: float
    start_time: float | None = None
    end_time: float | None = None
    wait_ms: float | None = None
    run_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    replay_of: str | None = Field(None, description="the dead letter's task this one replayed")


class Page(BaseModel):
    items: list[TaskSummary]
    total: int | None = Field(
        description="records matching the filters; counted on the first page (no cursor) "
        "unless count=false, null otherwise"
    )
    offset: int
    limit: int
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class AttemptOut(BaseModel):
    attempt: int
    status: TaskStatus
    start_time: float | None = None
    end_time: float | None = None
    wait_ms: float | None = None
    run_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    logs: str | None = None


class TaskRecordOut(TaskSummary):
    """Everything recorded about a task; `attempts` lists each attempt, the latest last (the
    record's own fields are that latest attempt's)."""

    kwargs: Any = None
    result: Any = None
    traceback: str | None = None
    logs: str | None = None
    attempts: list[AttemptOut]


class DeadLetterOut(BaseModel):
    id: str = Field(description="the dead-letter entry's id")
    task_id: str
    function: str
    reason: str
    dead_at: float
    origin: str | None = None
    origin_id: str | None = None
    queue: str | None = None
    attempt: int | None = None
    trigger_time: float | None = None


class DeadLetterDetail(DeadLetterOut):
    kwargs: Any = None
    meta: dict[str, Any] | None = None
    version: str | None = None
    timeout: float | None = None
    max_attempts: int | None = None
    retries: int | None = None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class DeadLetterCount(BaseModel):
    count: int


class DeadLetterFilter(Strict):
    """Which dead letters a bulk action takes: every given field must match; `all: true`
    takes every dead letter (an empty filter is refused, so nothing goes by accident)."""

    function: str | None = Field(None, max_length=256)
    since: float | None = Field(None, ge=0, le=1e11, description="died at or after (epoch s)")
    until: float | None = Field(None, ge=0, le=1e11, description="died before (epoch s)")
    q: str | None = Field(None, min_length=1, max_length=200, description="in reason or task id")
    ids: list[str] | None = Field(None, max_length=10_000, description="entry or task ids")
    all: bool = False


class SkippedLetter(BaseModel):
    id: str
    task_id: str
    reason: str


class ReplayOut(BaseModel):
    replayed: int
    task_ids: list[str] = Field(description="the new tasks, in the order of the dead letters")
    skipped: list[SkippedLetter]


class DiscardOut(BaseModel):
    discarded: int
    skipped: list[SkippedLetter]


class ParamInfo(BaseModel):
    name: str
    kind: str
    required: bool
    default: Any = None
    annotation: str | None = None


class FunctionOut(BaseModel):
    ref: str
    script: str
    name: str
    title: str
    doc: str
    category: str
    tags: list[str]
    params: list[ParamInfo]
    is_async: bool
    convention: str
    options: dict[str, Any]


class ScriptIn(Strict):
    code: str = Field(min_length=1, max_length=5_000_000)
    #: the code's language; left out, a script keeps its active version's (Python if new)
    language: Literal["python", "javascript"] | None = None


class ScriptOut(BaseModel):
    name: str
    version: int
    hash: str
    functions: list[str]
    language: str = "python"
    provisioned: bool = False
    updated_at: float | None = None


class ScriptVersionOut(BaseModel):
    script: str
    version: int
    hash: str
    functions: list[str]
    language: str = "python"
    created_at: float
    active: bool
    code: str | None = None


class RollbackIn(Strict):
    version: int = Field(ge=1, le=SQL_INT_MAX)


class ApiKeyIn(Strict):
    name: str = Field("", max_length=128)
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds")
    role: str = Field("admin", pattern=r"^(viewer|developer|admin)$")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: str
    created_at: float
    expires_at: float | None = None


class ApiKeyCreated(ApiKeyOut):
    token: str = Field(description="shown only once")


class CacheEntry(BaseModel):
    scope: str
    key: str
    ttl: float | None = None
    type: str
    value: Any = None


class CacheList(BaseModel):
    items: list[CacheEntry]
    cursor: int = Field(description="pass back to continue; 0 when done")


class Deleted(BaseModel):
    deleted: bool


class WorkerOut(BaseModel):
    id: str
    info: dict[str, Any]


class MemberOut(BaseModel):
    """One process of the cluster (`fnhub.presence`): `last_seen` is its last heartbeat, `age`
    how long ago that was; `stale` once it missed three (it is gone from the list after
    `presence_ttl_seconds`)."""

    id: str
    host: str | None = None
    pid: int | None = None
    version: str | None = None
    started: float | None = None
    last_seen: float
    age: float
    stale: bool
    every: float | None = Field(None, description="heartbeat period, seconds")


class ServerMemberOut(MemberOut):
    url: str | None = Field(None, description="where it listens")
    http_processes: int | None = Field(None, description="HTTP processes of its `fnhub server`")
    project_rev: int | None = Field(None, description="project revision it loaded")
    subscriptions: list[str] = Field(default_factory=list, description="subscribed here now")
    websub_claims: int | None = Field(None, description="WebSub subscriptions it delivers")


class BeatMemberOut(MemberOut):
    leading: bool = False
    jobs: int | None = Field(None, description="cron jobs it keeps ready")
    server: str | None = Field(None, description="the server process it runs in, if any")


class RunningTaskOut(BaseModel):
    """A task a worker child runs (`worker.supervisor`: named once it ran about 0.1 s)."""

    child: int = Field(description="the child's index in its worker (or its subscription's)")
    pid: int | None = None
    task: str | None = Field(None, description="the task's id (its record's)")
    function: str | None = None
    queue: str | None = None
    subscription: str | None = Field(None, description="a direct child's subscription")
    since: float = Field(description="when it started")
    running_for: float = Field(description="seconds, until the worker's last heartbeat if stale")


class WorkerMemberOut(MemberOut):
    queues: list[str] = Field(default_factory=list)
    processes: int | None = None
    replaced: int | None = Field(None, description="children replaced since it started")
    direct: int | None = Field(
        None, description="its direct children (`path: direct` subscriptions), besides `processes`"
    )
    busy: int | None = Field(
        None,
        description="children running a task now, of its `processes` and `direct` children",
    )
    running: list[RunningTaskOut] = Field(
        default_factory=list,
        description="tasks running past 0.1 s, the longest first (at most 10)",
    )


class RedisOut(BaseModel):
    url: str = Field(description="without passwords")
    sentinel: bool
    address: str = Field(description="the server answering: the primary, through Sentinel")
    role: str | None = None
    version: str | None = None
    used_memory: int | None = None
    used_memory_human: str | None = None
    maxmemory: int | None = None
    replicas: int | None = None
    clients: int | None = None
    uptime_seconds: int | None = None


class DatabaseOut(BaseModel):
    dialect: str
    url: str = Field(description="without password")
    server_version: str
    revision: list[str] = Field(description="the schema's migration revision(s)")
    head: list[str] = Field(description="the newest revision(s) this fnhub knows")
    current: bool


class ClusterOut(BaseModel):
    at: float
    presence_ttl_seconds: float
    servers: list[ServerMemberOut]
    beats: list[BeatMemberOut]
    beat_leader: str | None = Field(None, description="the beat holding the cron lease")
    workers: list[WorkerMemberOut]
    redis: RedisOut
    database: DatabaseOut


class QueueOut(BaseModel):
    name: str
    length: int
    workers: int
