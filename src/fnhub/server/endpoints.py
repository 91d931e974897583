"""Published endpoints: the in-memory registry (reloaded when their revision moves) and the
public route `/e/{name}` that checks, throttles, caches and calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from fnhub.calling.caller import Caller
from fnhub.redis_replies import as_optional_bytes
from fnhub.revisions import bump
from fnhub.secret_box import SecretBox
from fnhub.server import endpoint_auth, redaction, request_kwargs, throttle
from fnhub.server.api.tasks import task_state
from fnhub.server.context import ServerContext, caller_of, context_of
from fnhub.server.endpoint_spec import NAME_PATTERN
from fnhub.server.errors import ApiError, responses
from fnhub.server.models import Endpoint
from fnhub.server.render import failure_response, json_response, render_value
from fnhub.server.schemas import TaskState
from fnhub.server.state import state_of
from fnhub.tasks import Origin, Status, Task, TaskResult

CHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class LiveEndpoint:
    name: str
    function: str
    mode: str
    kwargs: dict[str, Any] | None
    auth: dict[str, Any]  # secrets in clear
    throttle: dict[str, int]  # unit -> most requests per window (units without one left out)
    cache_result: float | None
    timeout: float | None
    show_traceback: bool
    show_logs: bool
    enabled: bool
    expires_at: float | None
    record_limit: int | None
    redact: frozenset[str]  # names whose values records show as "[redacted]" (redaction.py)
    credential_query: str | None  # the query parameter carrying the token, for query tokens


def redacted_names(configured: list[str], auth: dict[str, Any]) -> frozenset[str]:
    """The configured names plus the ones carrying this endpoint's own credential, which are
    redacted whatever the setting says."""
    names = set(configured)
    kind = auth.get("type")
    if kind == "token":
        names.add(auth["field"])
    elif kind == "basic":
        names.add("Authorization")
    elif kind == "hmac":
        names.add(endpoint_auth.SIGNATURE_HEADER)
    return redaction.name_set(names)


class EndpointRegistry:
    def __init__(self, ctx: ServerContext, box: SecretBox) -> None:
        self.ctx = ctx
        self.box = box
        self.endpoints: dict[str, LiveEndpoint] = {}
        self.revision: bytes | None = b"-"
        self.checked_at = 0.0
        self._lock = asyncio.Lock()

    def _load(self) -> dict[str, LiveEndpoint]:
        with self.ctx.db.session() as session:
            rows = list(session.execute(select(Endpoint)).scalars())
        return {r.name: self._live(r) for r in rows}

    def _live(self, row: Endpoint) -> LiveEndpoint:
        auth = self.box.open(row.auth)
        by_query = auth.get("type") == "token" and auth.get("location") == "query"
        return LiveEndpoint(
            name=row.name,
            function=row.function,
            mode=row.mode,
            kwargs=row.kwargs,
            auth=auth,
            throttle=row.throttle or {},
            cache_result=row.cache_result,
            timeout=row.timeout,
            show_traceback=row.show_traceback,
            show_logs=row.show_logs,
            enabled=row.enabled,
            expires_at=row.expires_at,
            record_limit=row.record_limit,
            redact=redacted_names(self.ctx.settings.redact_names, auth),
            credential_query=auth["field"] if by_query else None,
        )

    async def changed(self) -> None:
        """Bump the revision (every server reloads within a second) and reload here now."""
        await bump(self.ctx.redis, self.ctx.keys.endpoints_revision)
        self.checked_at = 0.0
        await self.get("")

    async def reload(self) -> None:
        """Re-read every endpoint now (after an apply, which waits for servers to have it)."""
        async with self._lock:
            revision = as_optional_bytes(await self.ctx.redis.get(self.ctx.keys.endpoints_revision))
            self.endpoints = await asyncio.to_thread(self._load)
            self.revision = revision
            self.checked_at = time.monotonic()

    async def get(self, name: str) -> LiveEndpoint | None:
        if time.monotonic() - self.checked_at > CHECK_SECONDS:
            async with self._lock:
                if time.monotonic() - self.checked_at > CHECK_SECONDS:
                    revision = as_optional_bytes(
                        await self.ctx.redis.get(self.ctx.keys.endpoints_revision)
                    )
                    if revision != self.revision:
                        self.endpoints = await asyncio.to_thread(self._load)
                        self.revision = revision
                    self.checked_at = time.monotonic()
        return self.endpoints.get(name)


public_router = APIRouter(tags=["endpoints (public)"])
_BODY_TYPES = {
    media: {"schema": schema}
    for media, schema in (
        ("application/json", {"type": "object"}),
        ("application/x-www-form-urlencoded", {"type": "object"}),
        (
            "multipart/form-data",
            {"type": "object", "additionalProperties": {"type": "string", "format": "binary"}},
        ),
        ("text/plain", {"type": "string"}),
        ("application/octet-stream", {"type": "string", "format": "binary"}),
    )
}
_ANSWERS = {
    200: {"description": "the function's result (JSON), or the response it shaped"},
    202: {"description": "async endpoint: the task was queued"},
    **responses(400, 401, 403, 404, 410, 413, 422, 429, 500, 503, 504),
}
Name = Path(pattern=NAME_PATTERN)


async def open_endpoint(request: Request, name: str) -> tuple[LiveEndpoint, bytes]:
    """The endpoint, if it exists, is enabled, has not expired and the caller passes its auth
    (also used by DataFlux Func's published-API URLs, `fnhub.dff.http`)."""
    ep = await state_of(request).endpoints.get(name)
    if ep is None:
        raise ApiError(404, "unknown_endpoint", f"no endpoint '{name}'")
    if not ep.enabled:
        raise ApiError(403, "endpoint_disabled", f"endpoint '{name}' is disabled")
    if ep.expires_at is not None and ep.expires_at <= time.time():
        raise ApiError(410, "endpoint_expired", f"endpoint '{name}' has expired")
    body = await request.body()
    ctx = context_of(request)
    await endpoint_auth.check(request, body, ep, ctx, ctx.caller)
    return ep, body


async def make_endpoint_task(request: Request, ep: LiveEndpoint, kwargs: dict[str, Any]) -> Task:
    """The checked task of a call of `ep` with these (merged) kwargs; records see them with
    the endpoint's credentials redacted."""
    caller: Caller = caller_of(request)
    meta = {
        "request_id": request.state.request_id,
        "http": {
            "method": request.method,
            "path": request.url.path,
            "client": request.client.host if request.client else None,
            # the function sees the trigger's headers as recorded: credentials redacted
            "headers": redaction.redacted_headers(request.headers.items(), ep.redact),
        },
    }
    task = await caller.make(
        ep.function,
        kwargs,
        origin=Origin.ENDPOINT,
        origin_id=ep.name,
        timeout=ep.timeout,
        queue="async" if ep.mode == "async" else None,
        reply_to=caller.reply_stream,
        record_limit=ep.record_limit,
        meta=meta,
    )
    recorded = redaction.redact(kwargs, ep.redact)
    if recorded is not kwargs:  # the function gets the kwargs as sent; records do not
        task.record_kwargs = recorded
    return task


async def submit_endpoint_task(ctx: ServerContext, task: Task, eta: float | None = None) -> None:
    """Queue an async endpoint's task with a status key, for its callers to poll."""
    task.status_key = ctx.keys.task_status(task.id)
    if eta is not None and task.expires_at is not None:
        task.expires_at = max(task.expires_at, eta + (task.expires_at - task.trigger_time))
    await ctx.caller.submit(task, eta=eta)


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    """A sync endpoint call's outcome: the task's result (None when served from the cache),
    the value to answer with, and the headers saying which (`X-Task-Id`, `X-Cache`)."""

    result: TaskResult | None
    value: Any
    headers: dict[str, str]


async def call_endpoint_task(
    ctx: ServerContext, ep: LiveEndpoint, task: Task, kwargs: dict[str, Any]
) -> SyncAnswer:
    """Run a sync endpoint's task and wait, through the endpoint's result cache."""
    caller = ctx.caller
    info = caller.active.function(ep.function)
    ttl = ep.cache_result or (info.options.cache_result if info else None)
    cache_key = None
    if ttl:
        digest = hashlib.sha256(orjson.dumps(kwargs, option=orjson.OPT_SORT_KEYS)).hexdigest()
        cache_key = ctx.keys.cache(f"endpoint.{ep.name}", f"{task.version[:12]}.{digest}")
        cached = await ctx.redis.get(cache_key)
        if cached is not None:
            return SyncAnswer(None, orjson.loads(cached), {"X-Cache": "hit"})
    task.expires_at = task.trigger_time + task.timeout + 5.0
    result = await caller.call(task)
    headers = {"X-Task-Id": result.id}
    if result.status != Status.SUCCESS:
        return SyncAnswer(result, None, headers)
    if cache_key is not None and ttl:
        await ctx.redis.set(cache_key, orjson.dumps(result.result), px=int(ttl * 1000))
        headers["X-Cache"] = "miss"
    return SyncAnswer(result, result.result, headers)


async def _serve(request: Request, name: str) -> Response:
    ctx: ServerContext = context_of(request)
    ep, body = await open_endpoint(request, name)
    await throttle.check(ctx.redis, ctx.keys, name, ep.throttle)
    given = await request_kwargs.from_request(request, body, ep.credential_query)
    kwargs = request_kwargs.merge(ep.kwargs, given)
    task = await make_endpoint_task(request, ep, kwargs)
    if ep.mode == "async":
        await submit_endpoint_task(ctx, task)
        url = f"/e/{name}/tasks/{task.id}"
        return json_response(
            {"id": task.id, "status": "queued", "url": url}, status=202, headers={"Location": url}
        )
    answer = await call_endpoint_task(ctx, ep, task, kwargs)
    if answer.result is not None and answer.result.status != Status.SUCCESS:
        return failure_response(answer.result, traceback=ep.show_traceback)
    return render_value(answer.value, answer.headers)


_BODY = {"requestBody": {"required": False, "content": _BODY_TYPES}}


@public_router.get(
    "/e/{name}/tasks/{task_id}",
    response_model=TaskState,
    responses=responses(401, 403, 404, 410),
)
async def endpoint_task(
    request: Request,
    name: str = Name,
    task_id: str = Path(pattern=r"^[0-9a-f]{24}$"),
    wait: float = Query(0, ge=0, le=60, description="seconds to wait for a final status"),
) -> dict[str, Any]:
    """The state of a task this (async) endpoint queued, with the endpoint's own auth, so its
    callers can poll without an API key; tasks of other endpoints answer 404. The function's
    output and traceback show only if the endpoint allows it (`show_logs`, `show_traceback`):
    they are the function author's, not its callers'."""
    ep, _body = await open_endpoint(request, name)
    state = await task_state(context_of(request), task_id, wait)
    if state is None or (state["origin"], state["origin_id"]) != (Origin.ENDPOINT, name):
        raise ApiError(404, "unknown_task", f"no task '{task_id}' of endpoint '{name}'")
    if not ep.show_logs:
        state["logs"] = None
    if not ep.show_traceback:
        state["traceback"] = None
    return state


@public_router.get("/e/{name}", responses=_ANSWERS, response_model=None)
async def call_endpoint_get(request: Request, name: str = Name) -> Response:
    """Call an endpoint; kwargs come from the query string."""
    return await _serve(request, name)


@public_router.post("/e/{name}", responses=_ANSWERS, response_model=None, openapi_extra=_BODY)
async def call_endpoint_post(request: Request, name: str = Name) -> Response:
    """Call an endpoint; kwargs come from the query string and the body (JSON object, form,
    multipart with files, plain text → `body`, anything else → `body` as a file)."""
    return await _serve(request, name)
