"""The script-side API: a running function changes its cron job's schedule or pauses it.

    import fnhub

    @fnhub.api()
    def poll():
        if nothing_to_do():
            fnhub.cron.set_expression("*/10 * * * *", expires=3600)  # slow down for an hour

Without `job_id` these act on the cron job that started the current task. A run-time expression
outranks the function's `fixed_crontab` and the job's own until it expires or is cleared; beats
pick it up within a second (its revision counter is bumped).
"""

from __future__ import annotations

import json
import time

from fnhub import runtime
from fnhub.revisions import bump
from fnhub.tasks import Origin


def _job(job_id: str | None) -> str:
    if job_id:
        return job_id
    task = runtime.current_task.get()
    if task is None or task.origin != Origin.CRON:
        raise ValueError("not running as a cron job: pass job_id=")
    return task.origin_id


def set_expression(
    expr: str,
    *,
    job_id: str | None = None,
    expires: float | None = None,
    timezone: str | None = None,
) -> None:
    """Run the job on `expr` from now on (for `expires` seconds, or until cleared)."""
    from fnhub.cron.schedule import validate  # croniter only when needed

    job = _job(job_id)
    validate(expr, timezone or runtime.settings().cron_timezone)
    if expires is not None and expires <= 0:
        raise ValueError("expires must be more than 0 seconds")
    value = {"expr": expr, "until": time.time() + expires if expires else None}
    if timezone:
        value["timezone"] = timezone
    keys = runtime.keys()
    pipe = runtime.redis_client().pipeline(transaction=True)
    pipe.hset(keys.cron_dynamic, job, json.dumps(value))
    bump(pipe, keys.cron_dynamic_revision)
    pipe.execute()


def get_expression(job_id: str | None = None) -> str | None:
    """The run-time expression in force for the job, or None."""
    keys = runtime.keys()
    raw = runtime.redis_client().hget(keys.cron_dynamic, _job(job_id))
    if raw is None:
        return None
    value = json.loads(raw)
    if value.get("until") is not None and value["until"] <= time.time():
        return None
    return str(value["expr"])


def clear_expression(job_id: str | None = None) -> None:
    """Go back to the function's fixed_crontab or the job's own expression."""
    keys = runtime.keys()
    pipe = runtime.redis_client().pipeline(transaction=True)
    pipe.hdel(keys.cron_dynamic, _job(job_id))
    bump(pipe, keys.cron_dynamic_revision)
    pipe.execute()


def pause(seconds: float | None = None, *, job_id: str | None = None) -> None:
    """Pause the job (for `seconds`, or until resumed); its ticks are then not run."""
    from fnhub.cron.control import add_pause

    pipe = runtime.redis_client().pipeline(transaction=True)
    add_pause(pipe, runtime.keys(), _job(job_id), seconds)
    pipe.execute()


def resume(job_id: str | None = None) -> None:
    runtime.redis_client().delete(runtime.keys().cron_pause(_job(job_id)))
