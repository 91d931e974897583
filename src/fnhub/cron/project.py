"""The `cron_jobs:` section of fnhub.yaml: declared jobs become provisioned rows.

    cron_jobs:
      - id: nightly-report
        function: reports.nightly
        expr: "30 2 * * *"
        timezone: Europe/Berlin
        kwargs: {format: pdf}

Applying makes the provisioned jobs exactly the declared list (jobs made through the API or CLI
stay). Every job is checked before anything is written, so one bad entry changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fnhub import audit, project
from fnhub.config import Settings
from fnhub.cron.jobs import CronJobSpec, JobStore, check
from fnhub.revisions import bump


def apply_cron_jobs(settings: Settings, value: Any) -> project.SectionChanges:
    from fnhub.bootstrap import open_services
    from fnhub.calling.queue_client import QueueClient

    if value is None:
        value = []
    if not isinstance(value, list):
        raise ValueError("fnhub.yaml: cron_jobs must be a list of jobs")
    specs: list[CronJobSpec] = []
    for i, entry in enumerate(value):
        try:
            specs.append(CronJobSpec.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("id", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
            raise ValueError(f"fnhub.yaml: cron job {name}: {_first(exc)}") from exc
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("fnhub.yaml: cron job ids must be unique")
    services = open_services(settings)
    try:
        active = QueueClient(settings, services.redis).active()
        for spec in specs:
            try:
                check(spec, active, settings.cron_timezone)
            except ValueError as exc:
                raise ValueError(f"fnhub.yaml: {exc}") from exc
        changes = JobStore(services.db).sync_provisioned(specs, actor=audit.PROJECT)
        bump(services.redis, services.keys.cron_revision)
    finally:
        services.close()
    return project.SectionChanges.of("cron_jobs", changes)


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
