"""The cron area of the server: the `/cron-jobs` API and the beat running inside the server.

`feature.CRON` hands `router` (mounted under `/api/v1` behind admin auth) and `service(ctx)`
(run for the server's lifetime) to the server; handlers get the `ServerContext` as `Ctx`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from fnhub.calling.errors import CallError
from fnhub.cron import control
from fnhub.cron.beat import Beat
from fnhub.cron.jobs import CronJobError, CronJobSpec, JobStore, check, row_json, spec_of
from fnhub.cron.models import CronJob
from fnhub.redis_wait import run_confirmed
from fnhub.revisions import bump
from fnhub.scripts.registry import ActiveScripts, read_active_async
from fnhub.server.access import current_actor
from fnhub.server.api.paging import PageRequest, fetch_page, page_request
from fnhub.server.context import Ctx, ServerContext
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import Strict

router = APIRouter(tags=["cron"])

_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422, "unknown_function": 422}


Actor = Annotated[str, Depends(current_actor)]  # who makes the change, for the audit log


class PauseBody(Strict):
    seconds: float | None = Field(
        default=None,
        ge=control.PAUSE_MIN_SECONDS,
        le=control.PAUSE_MAX_SECONDS,
        description="pause length; none: until resumed",
    )


def _error(exc: CronJobError | CallError | ValueError) -> ApiError:
    """The refusal with its reason (the CLI's words), as every route's error shape."""
    kind = getattr(exc, "kind", "invalid")
    return ApiError(_STATUS.get(kind, 422), kind, str(exc))


async def _active(ctx: ServerContext) -> ActiveScripts:
    return await read_active_async(ctx.redis, ctx.keys)


async def _statuses(ctx: ServerContext, specs: list[CronJobSpec]) -> tuple[Any, list[Any]]:
    pipe = ctx.redis.pipeline(transaction=False)
    control.add_status_reads(pipe, ctx.keys, [s.id for s in specs])
    replies = await pipe.execute()
    return control.status_of(ctx.settings, await _active(ctx), specs, replies)


async def _checked(ctx: ServerContext, spec: CronJobSpec) -> None:
    try:
        check(spec, await _active(ctx), ctx.settings.cron_timezone)
    except CronJobError as exc:
        raise _error(exc) from exc


async def _bump(ctx: ServerContext) -> None:
    """Tell running beats to reload the jobs."""
    await bump(ctx.redis, ctx.keys.cron_revision)


async def _get(ctx: ServerContext, job_id: str) -> CronJobSpec:
    try:
        return spec_of(await asyncio.to_thread(JobStore(ctx.db).get, job_id))
    except CronJobError as exc:
        raise _error(exc) from exc


@router.get("/cron-jobs", responses=responses(401, 422))
async def list_jobs(ctx: Ctx, page: PageRequest = Depends(page_request)) -> dict[str, Any]:
    """Jobs by id, a page at a time (the task list's shape, plus `paused_all`), each with its
    expression in force, pause state, last tick and next fire times."""
    rows, meta = await asyncio.to_thread(fetch_page, ctx.db, [CronJob.id], page)
    paused_all, statuses = await _statuses(ctx, [spec_of(r) for r in rows])
    jobs = [{**row_json(r), "status": s} for r, s in zip(rows, statuses, strict=True)]
    return {"paused_all": paused_all, "items": jobs, **meta}


@router.post("/cron-jobs", status_code=201, responses=responses(409))
async def create_job(ctx: Ctx, spec: CronJobSpec, who: Actor) -> dict[str, Any]:
    await _checked(ctx, spec)
    try:
        row = await asyncio.to_thread(JobStore(ctx.db).create, spec, actor=who)
    except CronJobError as exc:
        raise _error(exc) from exc
    await _bump(ctx)
    return row_json(row)


@router.get("/cron-jobs/{job_id}")
async def get_job(ctx: Ctx, job_id: str) -> dict[str, Any]:
    try:
        row = await asyncio.to_thread(JobStore(ctx.db).get, job_id)
    except CronJobError as exc:
        raise _error(exc) from exc
    _, statuses = await _statuses(ctx, [spec_of(row)])
    return {**row_json(row), "status": statuses[0]}


@router.put("/cron-jobs/{job_id}")
async def replace_job(ctx: Ctx, job_id: str, spec: CronJobSpec, who: Actor) -> dict[str, Any]:
    if spec.id != job_id:
        raise ApiError(422, "invalid", f"body id '{spec.id}' differs from the path's '{job_id}'")
    await _checked(ctx, spec)
    row = await asyncio.to_thread(JobStore(ctx.db).replace, spec, actor=who)
    await _bump(ctx)
    return row_json(row)


@router.delete("/cron-jobs/{job_id}", status_code=204)
async def delete_job(ctx: Ctx, job_id: str, who: Actor) -> None:
    try:
        await asyncio.to_thread(JobStore(ctx.db).delete, job_id, actor=who)
    except CronJobError as exc:
        raise _error(exc) from exc
    pipe = ctx.redis.pipeline(transaction=True)
    control.add_forget(pipe, ctx.keys, job_id)
    bump(pipe, ctx.keys.cron_revision)
    await pipe.execute()


@router.post("/cron-jobs/{job_id}/run", status_code=202)
async def run_job(ctx: Ctx, job_id: str, who: Actor) -> dict[str, Any]:
    """Queue one run now, whatever the schedule, pause or overlap policy."""
    spec = await _get(ctx, job_id)
    pipe = ctx.redis.pipeline(transaction=False)
    try:
        task = control.run_now(ctx.settings, await _active(ctx), spec, pipe)
    except CallError as exc:
        raise _error(exc) from exc
    queued = {"task_id": task.id, "queue": task.queue}
    # answered 202: behind Sentinel once a replica has it (503 `not_replicated` if not)
    try:
        await run_confirmed(ctx.settings, ctx.redis, pipe, "the run")
    except CallError as exc:  # refused, yet it may run: audited as "not confirmed"
        refused = control.refused_run(exc, queued)
        if refused is not None:
            await asyncio.to_thread(control.audited, ctx.db, who, job_id, "run", refused)
        raise
    await asyncio.to_thread(control.audited, ctx.db, who, job_id, "run", queued)
    return queued


@router.post("/cron-jobs/{job_id}/pause")
async def pause_job(
    ctx: Ctx, job_id: str, who: Actor, body: PauseBody | None = None
) -> dict[str, Any]:
    await _get(ctx, job_id)
    seconds = body.seconds if body else None
    pipe = ctx.redis.pipeline(transaction=False)
    control.add_pause(pipe, ctx.keys, job_id, seconds)
    await pipe.execute()
    await asyncio.to_thread(control.audited, ctx.db, who, job_id, "pause", {"seconds": seconds})
    return {"id": job_id, "paused": True, "seconds": seconds}


@router.post("/cron-jobs/{job_id}/resume")
async def resume_job(ctx: Ctx, job_id: str, who: Actor) -> dict[str, Any]:
    await _get(ctx, job_id)
    pipe = ctx.redis.pipeline(transaction=False)
    control.add_resume(pipe, ctx.keys, job_id)
    await pipe.execute()
    await asyncio.to_thread(control.audited, ctx.db, who, job_id, "resume")
    return {"id": job_id, "paused": False}


@router.post("/cron/pause")
async def pause_all(ctx: Ctx, who: Actor, body: PauseBody | None = None) -> dict[str, Any]:
    """Pause every cron job (for `seconds`, or until resumed)."""
    seconds = body.seconds if body else None
    pipe = ctx.redis.pipeline(transaction=False)
    control.add_pause(pipe, ctx.keys, None, seconds)
    await pipe.execute()
    await asyncio.to_thread(control.audited, ctx.db, who, None, "pause", {"seconds": seconds})
    return {"paused_all": True, "seconds": seconds}


@router.post("/cron/resume")
async def resume_all(ctx: Ctx, who: Actor) -> dict[str, Any]:
    pipe = ctx.redis.pipeline(transaction=False)
    control.add_resume(pipe, ctx.keys, None)
    await pipe.execute()
    await asyncio.to_thread(control.audited, ctx.db, who, None, "resume")
    return {"paused_all": False}


async def service(ctx: ServerContext) -> None:
    """The server's beat: a candidate like any `fnhub beat`; it fires only while leading."""
    beat_id = f"{ctx.server_id}/beat"  # the server's process (`fnhub.holders`)
    await Beat(ctx.settings, ctx.redis, ctx.db, beat_id=beat_id, server_id=ctx.server_id).run()
