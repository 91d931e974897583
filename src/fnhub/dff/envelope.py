"""DataFlux Func's response envelope, for its call URLs (`fnhub.dff.http`).

Success: `{ok: true, error: 200, message: "", data, traceId, reqTime, respTime, reqCost}`;
failure: `{ok: false, error: <status.sub>, reason, message, detail, status, traceId, ...}`
with the HTTP status the integer part of `error` (`EFuncFailed` is 599.10: HTTP 599). Every
answer, the raw ones included, carries `X-Trace-Id`, `X-Request-Time`, `X-Response-Time` and
`X-Request-Cost`. fnhub's own refusals (`ApiError`, `CallError`) and task outcomes are
translated here into DataFlux Func's reasons, from its `const.yaml` `respCodeMap`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fnhub.calling.errors import CallError
from fnhub.server.errors import ApiError, call_error
from fnhub.tasks import Status, TaskResult

#: DataFlux Func's codes (`const.yaml` respCodeMap) of the reasons fnhub answers with
CODES: dict[str, float] = {
    "EUserAuth": 401.14,
    "EUserPrivilege": 401.15,
    "EBizCondition": 403.21,
    "EClientNotFound": 404.41,
    "EClientBadRequest": 400.43,
    "EClientRateLimit": 429.46,
    "ESys": 500.50,
    "ESysLimitReached": 503.10,
    "ESysNetwork": 503.22,
    "EAPIAuth": 401.99,
    "EFuncFailed": 599.10,
    "EFuncTimeout": 599.20,
    "EWorkerNoResponse": 599.99,
}
TRACE_HEADER = "X-Trace-Id"
_SAFE_TRACE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class Trace:
    """One request's trace id and timing, for the envelope and its headers."""

    trace_id: str
    started: float = field(default_factory=time.time)

    @classmethod
    def of(cls, request: Request) -> Trace:
        """The caller's `X-Trace-Id` when it sent a sane one (as DataFlux Func keeps an
        upstream's), else the request id every fnhub answer carries."""
        sent = request.headers.get(TRACE_HEADER, "")
        if _SAFE_TRACE.match(sent):
            return cls(sent)
        return cls(str(getattr(request.state, "request_id", "") or ""))

    def fields(self) -> dict[str, Any]:
        now = time.time()
        return {
            "traceId": self.trace_id,
            "reqTime": _iso(self.started),
            "respTime": _iso(now),
            "reqCost": int((now - self.started) * 1000),
        }

    def headers(self) -> dict[str, str]:
        info = self.fields()
        return {
            TRACE_HEADER: info["traceId"],
            "X-Request-Time": info["reqTime"],
            "X-Response-Time": info["respTime"],
            "X-Request-Cost": str(info["reqCost"]),
        }


def _iso(seconds: float) -> str:
    """JavaScript's `toISOString()`: milliseconds, `Z`."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stamp(response: Response, trace: Trace) -> Response:
    """Add the trace headers to an answer built elsewhere (a raw body, a shaped response)."""
    for name, value in trace.headers().items():
        response.headers[name] = value
    return response


def ok(trace: Trace, data: Any, headers: dict[str, str] | None = None) -> Response:
    body = {"ok": True, "error": 200, "message": "", "data": data, **trace.fields()}
    response = Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        headers=headers,
        media_type="application/json",
    )
    return stamp(response, trace)


class DFFError(Exception):
    """A failure in DataFlux Func's words: `reason` is `EMain` or `EMain.Sub`."""

    def __init__(
        self,
        reason: str,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    @property
    def code(self) -> float:
        return CODES[self.reason.split(".")[0]]

    @property
    def status(self) -> int:
        return int(self.code)


def error_response(trace: Trace, error: DFFError) -> Response:
    body = {
        "ok": False,
        "error": error.code,
        "reason": error.reason,
        "message": error.message,
        "detail": error.detail,
        "status": error.status,
        **trace.fields(),
    }
    response = Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )
    return stamp(response, trace)


#: fnhub's error codes → DataFlux Func's reasons (the rest by HTTP status, `_BY_STATUS`)
_BY_CODE = {
    "unknown_function": "EClientNotFound",
    "unknown_endpoint": "EClientNotFound",
    "unknown_task": "EClientNotFound",
    "throttled": "EClientRateLimit.APIThrottling",
    "no_worker": "ESysLimitReached.NoWorker",
    "queue_full": "ESysLimitReached.QueueFull",
    "unavailable": "ESysNetwork",
    "no_result": "EWorkerNoResponse",
    "internal": "ESys",
}
_BY_STATUS = {
    400: "EClientBadRequest",
    401: "EUserAuth",
    403: "EUserPrivilege",
    404: "EClientNotFound",
    413: "EClientBadRequest",
    415: "EClientBadRequest",
    422: "EClientBadRequest",
    429: "EClientRateLimit",
    503: "ESysLimitReached",
}


def from_api_error(exc: ApiError | CallError, *, api_auth: bool = False) -> DFFError:
    """fnhub's refusal as DataFlux Func's; `api_auth`: a published API's own auth (`EAPIAuth`)
    rather than the management API's (`EUserAuth`). fnhub's code stays in `detail`."""
    error = call_error(exc) if isinstance(exc, CallError) else exc
    reason = _BY_CODE.get(error.code) or _BY_STATUS.get(error.status, "ESys")
    if api_auth and error.status == 401:
        reason = "EAPIAuth"
    detail = {"code": error.code, **error.extra}
    return DFFError(reason, error.message, detail, error.headers)


#: task outcomes other than success → reason and message (DataFlux Func's where it has one)
_OUTCOMES = {
    Status.FAILURE: ("EFuncFailed", "Func task failed"),
    Status.TIMEOUT: ("EFuncTimeout", "Func task timeout"),
    Status.EXPIRED: ("EWorkerNoResponse", "Func task expired before it ran"),
    Status.DEAD: ("EFuncFailed.TaskDead", "Func task died with its worker too often"),
    Status.SKIPPED: ("EFuncFailed", "Func task skipped"),
}


def from_outcome(result: TaskResult, *, traceback: bool = True) -> DFFError:
    """A task that ended without a result: `detail` has DataFlux Func's `exception` and
    `traceback` (hidden unless `traceback`), and fnhub's task id and error type."""
    reason, message = _OUTCOMES.get(Status(result.status), ("EFuncFailed", "Func task failed"))
    exception = None
    if result.error_type:
        exception = f"{result.error_type}: {result.error_message or ''}".rstrip(": ")
    detail = {
        "exception": exception,
        "exceptionType": result.error_type,
        "traceback": result.traceback if traceback else None,
        "taskId": result.id,
    }
    return DFFError(reason, message, detail, {"X-Task-Id": result.id})
