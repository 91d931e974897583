"""`DFF.CRON_JOB`: a running cron job changes its own schedule, on `fnhub.cron`.

As in DataFlux Func, without `entity_id` these act on the cron job that started the current
task, and do nothing (return None) in a task a cron job did not start.
"""

from __future__ import annotations

import json
import time

from fnhub import runtime
from fnhub.dff.unsupported import unsupported
from fnhub.redis_replies import as_hash
from fnhub.tasks import Origin


def _job(entity_id: str | None) -> str | None:
    if entity_id:
        return entity_id
    task = runtime.current_task.get()
    if task is None or task.origin != Origin.CRON:
        return None
    return task.origin_id


class CronJobHelper:
    def set_cron_expr(
        self, cron_expr: str, expires: float | None = None, entity_id: str | None = None
    ) -> None:
        """Run the job on `cron_expr` (for `expires` seconds, or until cleared)."""
        from fnhub.cron import set_expression

        job = _job(entity_id)
        if job is not None:
            set_expression(cron_expr, job_id=job, expires=expires)

    def get_cron_expr(self, entity_id: str | None = None) -> str | None:
        from fnhub.cron import get_expression

        job = _job(entity_id)
        return None if job is None else get_expression(job)

    def get_all_cron_expr(self) -> dict[str, str]:
        """Every job's run-time expression in force, by job id."""
        raw = as_hash(runtime.redis_client().hgetall(runtime.keys().cron_dynamic))
        now = time.time()
        found: dict[str, str] = {}
        for job, value in raw.items():
            parsed = json.loads(value)
            if parsed.get("until") is None or parsed["until"] > now:
                found[job.decode()] = str(parsed["expr"])
        return found

    def clear_cron_expr(self, entity_id: str | None = None) -> None:
        from fnhub.cron import clear_expression

        job = _job(entity_id)
        if job is not None:
            clear_expression(job)

    def pause(self, expires: float, entity_id: str | None = None) -> None:
        """Pause the job for `expires` seconds (DataFlux Func allows no pause without end)."""
        from fnhub.cron import pause

        job = _job(entity_id)
        if job is not None:
            pause(expires, job_id=job)

    # DataFlux Func's older names
    set_crontab = set_temp_crontab = set_cron_expr
    get_crontab = get_temp_crontab = get_cron_expr
    get_all_crontab = get_all_temp_crontab = get_all_cron_expr
    clear_crontab = clear_temp_crontab = clear_cron_expr

    call = unsupported("DFF.CRON_JOB.call")
    get = unsupported("DFF.CRON_JOB.get")
    save = unsupported("DFF.CRON_JOB.save")
    query = unsupported("DFF.CRON_JOB.query")
