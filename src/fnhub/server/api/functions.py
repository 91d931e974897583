"""Functions: list them with their metadata, call one and wait, or submit one as a task."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from fnhub.calling.caller import Caller
from fnhub.functions import FunctionInfo
from fnhub.server.context import caller_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.json_body import JsonAnyTypeRoute
from fnhub.server.render import failure_response, json_response, outcome
from fnhub.server.revision_cache import cached_json
from fnhub.server.schemas import CallRequest, FunctionOut, SubmitRequest, Submitted, TaskState
from fnhub.server.state import state_of
from fnhub.tasks import Origin, Status, Task

router = APIRouter(tags=["functions"])
#: the call routes take a body that parses as JSON under any Content-Type (curl -d sends a form's)
calls = APIRouter(tags=["functions"], route_class=JsonAnyTypeRoute)
_REF = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"


def _caller(request: Request) -> Caller:
    return caller_of(request)


def function_dict(info: FunctionInfo) -> dict[str, Any]:
    """A function as `FunctionOut` has it, built without pydantic (1000 functions are listed
    in a blink)."""
    return {
        "ref": info.ref,
        "script": info.script,
        "name": info.name,
        "title": info.options.title,
        "doc": info.doc,
        "category": info.options.category,
        "tags": list(info.options.tags),
        "params": [
            {
                "name": p.name,
                "kind": p.kind,
                "required": p.required,
                "default": p.default,
                "annotation": p.annotation,
            }
            for p in info.params
        ],
        "is_async": info.is_async,
        "convention": info.convention,
        "options": msgspec.to_builtins(info.options),
    }


def function_out(info: FunctionInfo) -> FunctionOut:
    return FunctionOut(**function_dict(info))


@router.get("/functions", response_model=list[FunctionOut], responses=responses(401))
async def list_functions(request: Request, script: str | None = None) -> Response:
    """Every exported function of the active script versions (of one script with `script`)."""
    caller = _caller(request)
    if script is not None:
        await caller.refresh()
        infos = sorted(caller.active.functions.values(), key=lambda f: f.ref)
        return json_response([function_dict(f) for f in infos if f.script == script])

    async def build() -> bytes:
        infos = sorted(caller.active.functions.values(), key=lambda f: f.ref)
        return orjson.dumps([function_dict(f) for f in infos])

    return await cached_json(
        caller_of(request), state_of(request).revision_caches, "function_list", build
    )


@router.get("/functions/{ref}", response_model=FunctionOut, responses=responses(401, 404))
async def get_function(request: Request, ref: str) -> FunctionOut:
    caller = _caller(request)
    info = caller.active.function(ref)
    if info is None:
        await caller.refresh()
        info = caller.active.function(ref)
    if info is None:
        raise ApiError(404, "unknown_function", f"unknown function '{ref}'")
    return function_out(info)


@calls.post(
    "/functions/{ref}/call",
    response_model=TaskState,
    responses=responses(400, 401, 404, 413, 422, 500, 503, 504),
)
async def call_function(request: Request, ref: str, body: CallRequest) -> Response:
    """Run the function and answer with its result: 500 if it raised, 504 if it timed out."""
    caller = _caller(request)
    task = await call_task(caller, ref, body, request.state.request_id)
    return await call_answer(caller, task)


async def call_task(caller: Caller, ref: str, body: CallRequest, request_id: str) -> Task:
    """The task of a sync call (CallError if refused); also `server.fast_call`'s."""
    task = await caller.make(
        ref,
        body.kwargs,
        origin=Origin.API,
        timeout=body.timeout,
        queue=body.queue,
        reply_to=caller.reply_stream,
        meta={"request_id": request_id},
    )
    # nobody waits for it after the wait limit, so it must not run after that either
    task.expires_at = task.trigger_time + task.timeout + 5.0
    return task


async def call_answer(caller: Caller, task: Task) -> Response:
    """Enqueue a sync call's task, wait for its result and answer with it."""
    result = await caller.call(task)
    if result.status != Status.SUCCESS:
        return failure_response(result, traceback=True)
    return json_response(outcome(result), headers={"X-Task-Id": result.id})


@calls.post(
    "/functions/{ref}/tasks",
    status_code=202,
    response_model=Submitted,
    responses=responses(400, 401, 404, 413, 422, 503),
)
async def submit_function(request: Request, ref: str, body: SubmitRequest) -> Response:
    """Queue the function and answer at once with the task id; read it at `/tasks/{id}`."""
    caller = _caller(request)
    task, eta = await submit_task(caller, ref, body, request.state.request_id)
    return await submit_answer(caller, task, eta)


async def submit_task(
    caller: Caller, ref: str, body: SubmitRequest, request_id: str
) -> tuple[Task, float | None]:
    """The task of an async submission and when it is due (CallError if refused); also
    `server.fast_call`'s."""
    task = await caller.make(
        ref,
        body.kwargs,
        origin=Origin.API,
        timeout=body.timeout,
        queue=body.queue,
        reply_to=caller.reply_stream,
        meta={"request_id": request_id},
    )
    eta = body.eta if body.eta is not None else (time.time() + body.delay if body.delay else None)
    if eta is not None and task.expires_at is not None:
        task.expires_at = max(task.expires_at, eta + (task.expires_at - task.trigger_time))
    task.status_key = caller.keys.task_status(task.id)
    return task, eta


async def submit_answer(caller: Caller, task: Task, eta: float | None) -> Response:
    """Enqueue an async submission's task and answer 202 with where to read it."""
    await caller.submit(task, eta=eta)
    url = f"/api/v1/tasks/{task.id}"
    return json_response(
        {"id": task.id, "status": "queued", "queue": task.queue, "url": url},
        status=202,
        headers={"Location": url},
    )


router.include_router(calls)

__all__ = ["TaskState", "router"]
