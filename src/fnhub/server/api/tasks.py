"""Tasks: the exact state of one task (with long-poll), the task records (filtered, keyset
paged) and one task's full record with its attempts."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from fnhub.server.context import ServerContext, context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.render import outcome
from fnhub.server.schemas import Page, TaskRecordOut, TaskState
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord
from fnhub.task_history import MAX_LIMIT, BadCursor, RecordFilter, list_records, record_detail
from fnhub.tasks import Status

router = APIRouter(tags=["tasks"])


def record_state(row: TaskRecord) -> dict[str, Any]:
    """A task record as `TaskState` (the record's columns carry the same names)."""
    return {name: getattr(row, name) for name in TaskState.model_fields}


def _record(db: Database, task_id: str) -> TaskRecord | None:
    with db.session() as session:
        return session.get(TaskRecord, task_id)


async def task_state(ctx: ServerContext, task_id: str, wait: float) -> dict[str, Any] | None:
    """A task's state from its status key (waiting up to `wait` seconds for a final one), else
    from its record; None when neither exists."""
    caller = ctx.caller
    state = await (caller.wait_final(task_id, wait) if wait else caller.status(task_id))
    if state is not None:
        return outcome(state)
    row = await asyncio.to_thread(_record, ctx.db, task_id)
    return None if row is None else record_state(row)


@router.get("/tasks/{task_id}", response_model=TaskState, responses=responses(401, 404))
async def get_task(
    request: Request,
    task_id: str,
    wait: float = Query(0, ge=0, le=60, description="seconds to wait for a final status"),
) -> dict[str, Any]:
    """A submitted task's status (queued, running, or final with its result); with `wait`,
    answers as soon as it is final or when the wait is over."""
    state = await task_state(context_of(request), task_id, wait)
    if state is None:
        raise ApiError(404, "unknown_task", f"no task '{task_id}' (or its record expired)")
    return state


@router.get("/tasks/{task_id}/record", response_model=TaskRecordOut, responses=responses(401, 404))
async def get_task_record(request: Request, task_id: str) -> dict[str, Any]:
    """Everything recorded about a task: kwargs, result, logs, traceback, timings and each
    attempt (a retried task keeps its earlier attempts)."""
    record = await asyncio.to_thread(record_detail, context_of(request).db, task_id)
    if record is None:
        raise ApiError(
            404,
            "unknown_task",
            f"no record of task '{task_id}' (records land within about a second of a task's "
            "end, and retention prunes them)",
        )
    return record


@router.get("/tasks", response_model=Page, responses=responses(401, 422))
async def list_tasks(
    request: Request,
    function: str | None = Query(None, max_length=256),
    origin: str | None = Query(None, max_length=32),
    origin_id: str | None = Query(None, max_length=128),
    status: Status | None = None,
    since: float | None = Query(None, ge=0, le=1e11, description="trigger time ≥ (epoch seconds)"),
    until: float | None = Query(None, ge=0, le=1e11, description="trigger time < (epoch seconds)"),
    q: str | None = Query(
        None, min_length=1, max_length=200, description="text in the error type or message"
    ),
    cursor: str | None = Query(
        None, max_length=200, description="`next_cursor` of the previous page"
    ),
    offset: int = Query(0, ge=0, le=1_000_000, description="rows to skip (prefer `cursor`)"),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    count: bool | None = Query(
        None, description="count the matching records (default: on the first page only)"
    ),
) -> dict[str, Any]:
    """Task records newest first, without their big fields (written in batches: a task may
    show up a moment late). Page with `cursor`: each page resumes after the last row of the
    one before, so deep pages stay as fast as the first."""
    where = RecordFilter(
        function=function,
        status=status.value if status else None,
        origin=origin,
        origin_id=origin_id,
        since=since,
        until=until,
        q=q,
    )
    counted = count if count is not None else cursor is None
    try:
        page = await asyncio.to_thread(
            list_records,
            context_of(request).db,
            where,
            cursor=cursor,
            limit=limit,
            offset=offset,
            count=counted,
        )
    except BadCursor as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from exc
    return {
        "items": page.items,
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "next_cursor": page.next_cursor,
    }
