"""Tasks: the exact state of one task (with long-poll) and the paged task records."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select

from fnhub.server.caller import Caller
from fnhub.server.errors import ApiError, responses
from fnhub.server.render import outcome
from fnhub.server.schemas import Page, TaskState
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord
from fnhub.tasks import Status

router = APIRouter(tags=["tasks"])


def record_state(row: TaskRecord) -> dict[str, Any]:
    """A task record as `TaskState` (the record's columns carry the same names)."""
    return {name: getattr(row, name) for name in TaskState.model_fields}


def _record(db: Database, task_id: str) -> TaskRecord | None:
    with db.session() as session:
        return session.get(TaskRecord, task_id)


async def task_state(app: Any, task_id: str, wait: float) -> dict[str, Any] | None:
    """A task's state from its status key (waiting up to `wait` seconds for a final one), else
    from its record; None when neither exists."""
    caller: Caller = app.state.caller
    state = await (caller.wait_final(task_id, wait) if wait else caller.status(task_id))
    if state is not None:
        return outcome(state)
    row = await asyncio.to_thread(_record, app.state.ctx.db, task_id)
    return None if row is None else record_state(row)


@router.get("/tasks/{task_id}", response_model=TaskState, responses=responses(401, 404))
async def get_task(
    request: Request,
    task_id: str,
    wait: float = Query(0, ge=0, le=60, description="seconds to wait for a final status"),
) -> dict[str, Any]:
    """A submitted task's status (queued, running, or final with its result); with `wait`,
    answers as soon as it is final or when the wait is over."""
    state = await task_state(request.app, task_id, wait)
    if state is None:
        raise ApiError(404, "unknown_task", f"no task '{task_id}' (or its record expired)")
    return state


def _page(
    db: Database, filters: list[Any], offset: int, limit: int
) -> tuple[list[TaskRecord], int]:
    with db.session() as session:
        total = session.execute(select(func.count()).select_from(TaskRecord).where(*filters))
        rows = session.execute(
            select(TaskRecord)
            .where(*filters)
            .order_by(TaskRecord.trigger_time.desc(), TaskRecord.id.desc())
            .offset(offset)
            .limit(limit)
        ).scalars()
        return list(rows), int(total.scalar() or 0)


@router.get("/tasks", response_model=Page, responses=responses(401))
async def list_tasks(
    request: Request,
    function: str | None = Query(None, max_length=256),
    origin: str | None = Query(None, max_length=32),
    origin_id: str | None = Query(None, max_length=128),
    status: Status | None = None,
    since: float | None = Query(None, ge=0, le=1e11, description="trigger time ≥ (epoch seconds)"),
    until: float | None = Query(None, ge=0, le=1e11, description="trigger time < (epoch seconds)"),
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Task records, newest first (written in batches: a task may show up a moment late)."""
    filters: list[Any] = []
    if function:
        filters.append(TaskRecord.function == function)
    if origin:
        filters.append(TaskRecord.origin == origin)
    if origin_id:
        filters.append(TaskRecord.origin_id == origin_id)
    if status:
        filters.append(TaskRecord.status == status.value)
    if since is not None:
        filters.append(TaskRecord.trigger_time >= since)
    if until is not None:
        filters.append(TaskRecord.trigger_time < until)
    rows, total = await asyncio.to_thread(_page, request.app.state.ctx.db, filters, offset, limit)
    return {
        "items": [record_state(r) for r in rows],
        "total": total,
        "offset": offset,
        "limit": limit,
    }
