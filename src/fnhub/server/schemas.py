"""Request and response bodies of the admin API, as pydantic models (they make the OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallRequest(Strict):
    kwargs: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(None, gt=0, le=86400, description="seconds the function may run")
    queue: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class SubmitRequest(CallRequest):
    delay: float | None = Field(None, ge=0, le=30 * 86400, description="run after N seconds")
    eta: float | None = Field(None, ge=0, description="run at this epoch time (seconds)")


class TaskState(BaseModel):
    id: str
    function: str
    status: Literal[
        "queued", "running", "success", "failure", "timeout", "expired", "dead", "skipped"
    ]
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


class Page(BaseModel):
    items: list[TaskState]
    total: int
    offset: int
    limit: int


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


class ScriptOut(BaseModel):
    name: str
    version: int
    hash: str
    functions: list[str]
    provisioned: bool = False
    updated_at: float | None = None


class ScriptVersionOut(BaseModel):
    script: str
    version: int
    hash: str
    functions: list[str]
    created_at: float
    active: bool
    code: str | None = None


class RollbackIn(Strict):
    version: int = Field(ge=1, le=2**31 - 1)


class ApiKeyIn(Strict):
    name: str = Field("", max_length=128)
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds")


class ApiKeyOut(BaseModel):
    id: str
    name: str
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


class QueueOut(BaseModel):
    name: str
    length: int
    workers: int
