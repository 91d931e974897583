"""One error shape for every failure the API reports: `{"error": {"code", "message", ...}}`.

`ApiError` is raised anywhere in the server; the handlers installed here also turn FastAPI's
validation errors (400 for malformed JSON, 422 otherwise) and Starlette's 404/405 into it, an
unreachable Redis or database into 503 `unavailable` with `Retry-After` (whichever route met
it), and anything else into 500 `internal` naming the request id, its traceback only logged.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from typing import Any

import orjson
import redis.exceptions as redis_errors
import sqlalchemy.exc as sql_errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from fnhub import json_values
from fnhub.calling.errors import CallError, CallErrorKind

log = logging.getLogger(__name__)

#: seconds a client is asked to wait when Redis or the database is unreachable
RETRY_AFTER_SECONDS = 5
#: what an outage looks like from each side (redis-py raises the same classes, sync or async)
REDIS_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
)
DATABASE_UNAVAILABLE = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    sql_errors.DisconnectionError,
    sql_errors.TimeoutError,
)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "throttled",
    503: "unavailable",
}


class ErrorInfo(BaseModel):
    code: str
    message: str
    task_id: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    details: list[dict[str, Any]] | None = None
    script: str | None = None
    line: int | None = None
    column: int | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorInfo


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = {k: v for k, v in extra.items() if v is not None}


#: the HTTP status of each reason a call was refused or got no result
CALL_STATUS: dict[CallErrorKind, int] = {
    "unknown_function": 404,
    "invalid_kwargs": 422,
    "too_large": 413,
    "no_worker": 503,
    "queue_full": 503,
    "not_replicated": 503,
    "no_result": 504,
}


def call_error(exc: CallError) -> ApiError:
    """A refused call (`fnhub.calling`) in the API's words: its kind is the error code."""
    retry = {"Retry-After": f"{exc.retry_after:g}"} if exc.retry_after is not None else None
    return ApiError(CALL_STATUS[exc.kind], exc.kind, str(exc), headers=retry, task_id=exc.task_id)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    details = {k: v for k, v in extra.items() if v is not None}
    body = {"error": {"code": code, "message": message, **details}}
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)


def _call_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CallError)
    return _api_error(request, call_error(exc))


def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for e in errors:
        if e.get("type") == "json_invalid":
            reason = (e.get("ctx") or {}).get("error", "invalid JSON")
            pos = e["loc"][-1] if e.get("loc") else "?"
            return error_response(400, "malformed_json", f"malformed JSON body: {reason} at {pos}")
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e["type"]}
        for e in errors
    ]
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
    return error_response(422, "invalid_request", summary or "invalid request", details=details)


@functools.lru_cache(maxsize=256)
def _path_regex(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


def _allowed_methods(request: Request) -> str:
    """Every method the path takes, as the OpenAPI document lists them (Starlette names only
    those of the first route matching the path, and FastAPI makes one route per method). Of
    the paths matching, the most literal ones count: `/x/discard` is not `/x/{id}`."""
    path = request.scope["path"]
    matching = [
        (template.count("{"), operations)
        for template, operations in request.app.openapi().get("paths", {}).items()
        if _path_regex(template).match(path)
    ]
    fewest = min((params for params, _ in matching), default=0)
    methods = {m.upper() for params, ops in matching if params == fewest for m in ops}
    return ", ".join(sorted(methods))


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    if isinstance(exc.__cause__, RecursionError):  # FastAPI's body parser hit the limit
        message = f"malformed JSON body: nested deeper than {json_values.MAX_DEPTH} levels"
        return error_response(400, "malformed_json", message)
    detail = exc.detail
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        detail = detail["message"]
    message = detail if isinstance(detail, str) else code
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, code, message, headers)


class _Throttled:
    """Logs one warning per kind of outage every `every` seconds, not one per request."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.last: dict[str, float] = {}
        self.lock = threading.Lock()

    def warn(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last.get(kind, -self.every) < self.every:
                return
            self.last[kind] = now
        log.warning(message, *args)


_outages = _Throttled()


def _unavailable(service: str, exc: Exception) -> Response:
    _outages.warn(service, "%s is unavailable: %s: %s", service, type(exc).__name__, exc)
    return error_response(
        503,
        "unavailable",
        f"{service} is unavailable ({type(exc).__name__}); retry later",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _redis_unavailable(_request: Request, exc: Exception) -> Response:
    return _unavailable("Redis", exc)


def _database_unavailable(_request: Request, exc: Exception) -> Response:
    return _unavailable("the database", exc)


def _request_id_of(scope: Scope) -> str:
    """The id `RequestMiddleware` gave the request (a fresh one if it never saw it)."""
    state = scope.get("state") or {}
    return str(state.get("request_id") or os.urandom(8).hex())


def internal_error(
    request_id: str, exc: BaseException, headers: dict[str, str] | None = None
) -> Response:
    """The last resort: log the traceback with the request id, answer without it."""
    log.error("request %s failed", request_id, exc_info=exc)
    return error_response(500, "internal", "internal error", headers, request_id=request_id)


def _internal(request: Request, exc: Exception) -> Response:
    """Reached only by what escapes `RequestMiddleware` (which answers everything else the
    same way): Starlette's ServerErrorMiddleware calls it, then re-raises for the server."""
    request_id = _request_id_of(request.scope)
    return internal_error(request_id, exc, {"X-Request-Id": request_id})


def _document_errors(app: FastAPI) -> None:
    """Add to the OpenAPI document the error answers every route may give beyond those it
    declares: 500 and 503 anywhere, 400/413 where a body is parsed, 422 where anything is
    validated, 404 where a path names something, 401 behind the admin key."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, body in _ERROR_SCHEMAS.items():
            components.setdefault(name, body)
        components.pop("HTTPValidationError", None)  # FastAPI's 422 shape, not ours
        components.pop("ValidationError", None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                params = operation.get("parameters", [])
                statuses = {500, 503}
                if "requestBody" in operation:
                    statuses |= {400, 413, 422}
                if params:
                    statuses.add(422)
                if any(p.get("in") == "path" for p in params):
                    statuses.add(404)
                if operation.get("security"):
                    statuses.add(401)
                answers = operation.setdefault("responses", {})
                if "HTTPValidationError" in str(answers.get("422")):
                    del answers["422"]
                for status in sorted(statuses):
                    answers.setdefault(str(status), _error_answer(status))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents this override


_ERROR_SCHEMAS = {
    "ErrorBody": ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
}
_ERROR_SCHEMAS.update(_ERROR_SCHEMAS["ErrorBody"].pop("$defs"))


def _error_answer(status: int) -> dict[str, Any]:
    return {
        "description": "internal" if status == 500 else _CODES.get(status, "error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def install(app: FastAPI) -> None:
    _document_errors(app)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(CallError, _call_error)  # a route's call refused
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for redis_error in REDIS_UNAVAILABLE:
        app.add_exception_handler(redis_error, _redis_unavailable)
    for database_error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(database_error, _database_unavailable)
    app.add_exception_handler(Exception, _internal)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route may answer."""
    return {s: {"model": ErrorBody, "description": _CODES.get(s, "error")} for s in statuses}
