"""What `fnhub.Client` and `fnhub.AsyncClient` raise: one class per error the HTTP API answers
with (docs/http.md), so a caller catches what it can handle and lets the rest go:

    try:
        client.call("orders.ship", order=5)
    except fnhub.errors.FunctionFailed as exc:   # the function raised
        log.warning("%s: %s\\n%s", exc.error_type, exc.message, exc.traceback)
    except fnhub.errors.Unavailable:             # no worker, or the queue is full: retry later
        ...

Every class derives from `CallError` (status, code, message, task_id), except `UnknownEnv`,
what `fnhub.env(name)` raises in a script for a name no env variable has. This module imports
nothing beyond the standard library: scripts and callers may import it cheaply.
"""

from __future__ import annotations

import json
from typing import Any


class CallError(Exception):
    """A call that did not give a result. `status` is the HTTP status (None when no answer
    came), `code` the error code of the answer, `task_id` the task's id when one was made."""

    status: int | None = None
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        task_id: str | None = None,
        error_type: str | None = None,
        traceback: str | None = None,
        retry_after: float | None = None,
        details: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.task_id = task_id
        #: the exception class the function raised (FunctionFailed), e.g. "ValueError"
        self.error_type = error_type
        #: the function's traceback (FunctionFailed), when the server shows it
        self.traceback = traceback
        #: seconds the server asked to wait before trying again (Throttled, Unavailable)
        self.retry_after = retry_after
        #: per-field problems of a refused request (InvalidRequest)
        self.details = details
        #: the server's id of the request (its access log and error log name it)
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (task {self.task_id})" if self.task_id else ""
        return f"{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, {self.message!r})"


class ConnectionFailed(CallError):
    """No answer: the server could not be reached, or the connection broke. A call's function
    may or may not have run."""

    code = "connection_failed"


class ResultTimeout(CallError, TimeoutError):
    """`result(timeout)` waited that long and the task is not finished. Nothing is lost: the
    task still runs, and `result()` can be asked again."""

    code = "result_timeout"


class ApiError(CallError):
    """The server answered with an error (`{"error": {"code", "message", ...}}`)."""


class BadRequest(ApiError):
    """400: the body did not parse (`malformed_json`, `malformed_form`)."""

    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    """401: missing, wrong, expired or revoked API key."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """403: the key's role does not allow this (calls need `developer`)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class UnknownFunction(NotFound):
    """404: no active script exports this function (the message lists what the script has)."""

    code = "unknown_function"


class UnknownTask(NotFound):
    """404: no such task, or its status and record are gone."""

    code = "unknown_task"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class TooLarge(ApiError):
    """413: the body or the kwargs are over the server's limit."""

    status = 413
    code = "too_large"


class InvalidRequest(ApiError):
    """422: the request does not fit (`details` lists each problem)."""

    status = 422
    code = "invalid_request"


class InvalidKwargs(InvalidRequest):
    """422: the kwargs do not fit the function's signature (missing or unexpected names)."""

    code = "invalid_kwargs"


class Throttled(ApiError):
    """429: too many requests; `retry_after` says how long to wait."""

    status = 429
    code = "throttled"


class ServerError(ApiError):
    """500 `internal`: the server failed (its log has the traceback under `request_id`)."""

    status = 500
    code = "internal"


class Unavailable(ApiError):
    """503: nothing was queued; trying again after `retry_after` seconds may work."""

    status = 503
    code = "unavailable"


class NoWorker(Unavailable):
    """503: no live worker reads the function's queue."""

    code = "no_worker"


class QueueFull(Unavailable):
    """503: the queue holds `queue_max_length` tasks."""

    code = "queue_full"


class NotReplicated(Unavailable):
    """503: Redis took the task but no replica confirmed it in time (a failover under way, or a
    replica down): it may be lost, or may still run. Not retried by `Client`: a retry may run
    it twice."""

    code = "not_replicated"


class TaskFailed(ApiError):
    """The task was queued and ended without a result (`task_id` names it)."""


class FunctionFailed(TaskFailed):
    """500: the function raised; `error_type`, `message` and `traceback` say what."""

    status = 500
    code = "function_failed"

    def __str__(self) -> str:
        where = f" (task {self.task_id})" if self.task_id else ""
        return f"{self.error_type or 'Exception'}: {self.message}{where}"


class TaskDead(TaskFailed):
    """500: the task's worker died on every attempt; it is a dead letter."""

    status = 500
    code = "task_dead"


class TaskSkipped(TaskFailed):
    status = 500
    code = "task_skipped"


class FunctionTimeout(TaskFailed):
    """504: the function ran past its timeout and was stopped."""

    status = 504
    code = "function_timeout"


class TaskExpired(TaskFailed):
    """504: the task waited in its queue past its expiry and never ran."""

    status = 504
    code = "task_expired"


class NoResult(TaskFailed):
    """504: the server stopped waiting for the result; the task may still run."""

    status = 504
    code = "no_result"


_ANSWERS: tuple[type[ApiError], ...] = (
    BadRequest, Unauthorized, Forbidden, NotFound, UnknownFunction, UnknownTask, Conflict,
    TooLarge, InvalidRequest, InvalidKwargs, Throttled, ServerError, Unavailable, NoWorker,
    QueueFull, NotReplicated, FunctionFailed, TaskDead, TaskSkipped, FunctionTimeout, TaskExpired,
    NoResult,
)  # fmt: skip
#: the class of each error code the server answers with, and of each status as a fallback
BY_CODE: dict[str, type[ApiError]] = {c.code: c for c in _ANSWERS}
BY_CODE.update({"malformed_json": BadRequest, "malformed_form": BadRequest, "csrf": Forbidden})
_BY_STATUS: tuple[type[ApiError], ...] = (
    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, InvalidRequest, Throttled,
    ServerError, Unavailable,
)  # fmt: skip
BY_STATUS: dict[int, type[ApiError]] = {c.status: c for c in _BY_STATUS if c.status is not None}
#: the error of each final task status that is not success (as the sync call answers it)
BY_TASK_STATUS: dict[str, type[TaskFailed]] = {
    "failure": FunctionFailed,
    "timeout": FunctionTimeout,
    "expired": TaskExpired,
    "dead": TaskDead,
    "skipped": TaskSkipped,
}


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: not sent by fnhub
        return None


def from_answer(status: int, headers: Any, content: bytes) -> ApiError:
    """The error an HTTP error answer stands for (`headers`: any mapping with `.get`)."""
    try:
        info = json.loads(content)["error"]
        code, message = str(info["code"]), str(info["message"])
    except (ValueError, TypeError, KeyError):  # not fnhub's shape: a proxy's page, say
        info = {}
        code, message = "", content.decode("utf-8", "replace").strip()[:500] or f"HTTP {status}"
    cls = BY_CODE.get(code) or BY_STATUS.get(status) or ApiError
    if cls.status is not None and cls.status != status:  # a code reused with another status
        cls = BY_STATUS.get(status) or ApiError
    return cls(
        message,
        status=status,
        code=code or cls.code,
        task_id=info.get("task_id") or headers.get("x-task-id"),
        error_type=info.get("error_type"),
        traceback=info.get("traceback"),
        details=info.get("details"),
        retry_after=_retry_after(headers.get("retry-after")),
        request_id=info.get("request_id") or headers.get("x-request-id"),
    )


def from_task_state(state: dict[str, Any]) -> TaskFailed:
    """The error a finished task's state (`GET /tasks/{id}`) stands for, as the sync call would
    have answered it."""
    cls = BY_TASK_STATUS.get(state.get("status", ""), FunctionFailed)
    return cls(
        state.get("error_message") or state.get("status") or "failed",
        task_id=state.get("id"),
        error_type=state.get("error_type"),
        traceback=state.get("traceback"),
    )


class UnknownEnv(KeyError):
    """`fnhub.env(name)` for a name no env variable has, without a default (a KeyError, so
    `except KeyError` code written for `os.environ` keeps working)."""

    def __init__(self, name: str, known: list[str]) -> None:
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none"
        super().__init__(name)
        self.name = name
        self.message = f"no env variable named '{name}' (known: {shown})"

    def __str__(self) -> str:
        return self.message
