"""Turning task results into HTTP answers: the admin call's JSON, an endpoint's rendered body."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from fnhub.response import RESPONSE_MARKER
from fnhub.server.errors import error_response
from fnhub.tasks import Status, TaskResult

#: HTTP status and error code of each non-success outcome
OUTCOME_STATUS = {
    Status.FAILURE: (500, "function_failed"),
    Status.TIMEOUT: (504, "function_timeout"),
    Status.EXPIRED: (504, "task_expired"),
    Status.DEAD: (500, "task_dead"),
    Status.SKIPPED: (500, "task_skipped"),
}
JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        headers=headers,
        media_type=JSON,
    )


def failure_response(result: TaskResult, *, traceback: bool) -> Response:
    status, code = OUTCOME_STATUS.get(Status(result.status), (500, "function_failed"))
    message = result.error_message or result.status
    return error_response(
        status,
        code,
        message,
        {"X-Task-Id": result.id},
        task_id=result.id,
        error_type=result.error_type,
        traceback=result.traceback if traceback else None,
    )


def outcome(result: TaskResult) -> dict[str, Any]:
    """The admin API's view of a task's state (see `schemas.TaskState`)."""
    start, end = result.start_time, result.end_time
    return {
        "id": result.id,
        "function": result.function,
        "status": result.status,
        "origin": result.origin,
        "origin_id": result.origin_id,
        "queue": result.queue,
        "attempt": result.attempt,
        "trigger_time": result.trigger_time,
        "start_time": start,
        "end_time": end,
        "wait_ms": (start - result.trigger_time) * 1000 if start else None,
        "run_ms": (end - start) * 1000 if start is not None and end is not None else None,
        "result": result.result,
        "error_type": result.error_type,
        "error_message": result.error_message,
        "traceback": result.traceback,
        "logs": result.logs or None,
    }


def is_response(value: Any) -> bool:
    return isinstance(value, dict) and RESPONSE_MARKER in value


def render_value(value: Any, headers: dict[str, str]) -> Response:
    """An endpoint's body: the result as JSON, or what an `fnhub.Response` asked for."""
    if not is_response(value):
        return json_response(value, headers=headers)
    spec = value[RESPONSE_MARKER]
    body = spec.get("body")
    encoding = spec.get("encoding", "json")
    if encoding == "base64":
        content = base64.b64decode(body or "")
    elif encoding == "text":
        content = (body or "").encode()
    else:
        content = orjson.dumps(body)
    out = {**{str(k): str(v) for k, v in (spec.get("headers") or {}).items()}, **headers}
    filename = spec.get("filename")
    if filename:
        ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
        out["Content-Disposition"] = (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        )
    return Response(
        content,
        status_code=int(spec.get("status", 200)),
        headers=out,
        media_type=spec.get("content_type") or JSON,
    )
