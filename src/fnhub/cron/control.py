"""Run-time control of cron jobs in Redis: pause/resume (per job or all), run now, and status.

Like `fnhub.queue`, the `add_*` helpers only queue commands on a pipeline, so the API (asyncio)
and the CLI (sync) share them; pauses live in Redis keys whose TTL is the pause's expiry, and the
fire script checks them atomically with each tick. Once the pipeline ran, both call `audited`
(these changes have no SQL transaction to share); a run-now refused after Redis took it
(`not_replicated`) is audited too, as "not confirmed" (`refused_run`): it may still run.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fnhub import audit
from fnhub.calling.errors import CallError
from fnhub.calling.maker import make_task
from fnhub.config import Settings
from fnhub.cron.clock import clock_for, decode_dynamic
from fnhub.cron.jobs import CronJobSpec, expression_for
from fnhub.keys import Keys
from fnhub.queue import add_enqueue
from fnhub.scripts.registry import ActiveScripts
from fnhub.store.db import Database
from fnhub.tasks import Origin, Task

#: a pause is a key TTL in milliseconds: at least one, and at most about ten years
PAUSE_MIN_SECONDS = 0.001
PAUSE_MAX_SECONDS = 10 * 365 * 86400


def add_pause(pipe: Any, keys: Keys, job_id: str | None, seconds: float | None = None) -> None:
    """Pause one job (or all with job_id None), for `seconds` or until resumed."""
    key = keys.cron_pause(job_id) if job_id else keys.cron_pause_all
    if seconds is not None and not PAUSE_MIN_SECONDS <= seconds <= PAUSE_MAX_SECONDS:
        raise ValueError(
            f"a pause lasts from {PAUSE_MIN_SECONDS:g} seconds to ten years, not {seconds:g}"
        )
    if seconds:
        pipe.set(key, repr(time.time() + seconds), px=int(seconds * 1000))
    else:
        pipe.set(key, "")


def add_resume(pipe: Any, keys: Keys, job_id: str | None) -> None:
    pipe.delete(keys.cron_pause(job_id) if job_id else keys.cron_pause_all)


def add_forget(pipe: Any, keys: Keys, job_id: str) -> None:
    """Drop a deleted job's run-time state."""
    pipe.hdel(keys.cron_fired, job_id)
    pipe.hdel(keys.cron_dynamic, job_id)
    pipe.delete(keys.cron_pause(job_id), keys.running_marker(f"cron:{job_id}"))


def run_now(settings: Settings, active: ActiveScripts, spec: CronJobSpec, pipe: Any) -> Task:
    """Queue one run of the job now, paused or not and whatever its overlap policy."""
    now = time.time()
    expr, _ = expression_for(spec.expr, active.function(spec.function))
    limit = spec.record_limit if spec.record_limit is not None else settings.cron_record_limit
    task = make_task(
        settings,
        active,
        spec.function,
        spec.kwargs,
        origin=Origin.CRON,
        origin_id=spec.id,
        queue=spec.queue or None,
        record_limit=limit,
        meta={"cron": {"job": spec.id, "tick": int(now), "expr": expr, "manual": True}},
    )
    add_enqueue(pipe, Keys(settings.key_prefix), task)
    return task


#: the audit outcome of a run-now that Redis took but no replica confirmed (`fnhub.redis_wait`):
#: its caller was refused (503 `not_replicated`), yet a worker may still run the task
NOT_CONFIRMED = "not confirmed"


def refused_run(exc: CallError, queued: dict[str, Any]) -> dict[str, Any] | None:
    """What the audit log says of a run-now refused with `exc`: `queued` with the outcome
    "not confirmed" when Redis took it (`not_replicated`: it may run, so it is logged like
    one that was confirmed), None for a refusal before anything was queued."""
    if exc.kind != "not_replicated":
        return None
    return {**queued, "outcome": NOT_CONFIRMED}


def audited(
    db: Database, actor: str, job_id: str | None, action: str, after: dict[str, Any] | None = None
) -> None:
    """Log a run-time change (`pause`, `resume`, `run`) of one job, or of all with job_id None."""
    resource = f"cron_job:{job_id}" if job_id else "cron_job:*"
    audit.record(db, actor, f"cron_job.{action}", resource, None, after or {})


def add_status_reads(pipe: Any, keys: Keys, ids: list[str]) -> None:
    """Queue the reads `status_of` needs (watermarks, pauses, dynamic expressions)."""
    pipe.pttl(keys.cron_pause_all)
    if ids:
        pipe.hmget(keys.cron_fired, ids)
        pipe.hmget(keys.cron_dynamic, ids)
        for job_id in ids:
            pipe.pttl(keys.cron_pause(job_id))


def _pause_state(pttl: int) -> dict[str, Any] | None:
    if pttl == -2:
        return None
    return {"until": None if pttl == -1 else time.time() + pttl / 1000}


def status_of(
    settings: Settings,
    active: ActiveScripts,
    specs: list[CronJobSpec],
    replies: list[Any],
    *,
    upcoming: int = 3,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(global pause, per-job status) from the replies of `add_status_reads`."""
    now = time.time()
    paused_all = _pause_state(replies[0])
    out: list[dict[str, Any]] = []
    if not specs:
        return paused_all, out
    fired, dynamic, pauses = replies[1], replies[2], replies[3:]
    for i, spec in enumerate(specs):
        info = active.function(spec.function)
        entry: dict[str, Any] = {
            "id": spec.id,
            "function": spec.function,
            "enabled": spec.enabled,
            "paused": _pause_state(pauses[i]),
            "last_tick": int(fired[i]) if fired[i] else None,
            "next": [],
            "expr": spec.expr,
            "source": "job",
            "error": None,
        }
        try:
            dyn = decode_dynamic(dynamic[i]) if dynamic[i] else None
            clock = clock_for(spec, info, dyn, settings.cron_timezone, now)
            entry["expr"], entry["source"] = clock.expression_at(int(now) + 1), clock.source
            entry["timezone"] = str(clock.base.tz)
            if info is None:
                raise ValueError(f"unknown function '{spec.function}'")
            if spec.enabled:
                tick = int(now)
                for _ in range(upcoming):
                    next_tick = clock.next_after(tick)
                    if next_tick is None:
                        break
                    entry["next"].append(next_tick)
                    tick = next_tick
        except ValueError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return paused_all, out


def iso(ts: float | None, timezone: Any = None) -> str:
    return datetime.fromtimestamp(ts, timezone).isoformat() if ts else "-"
