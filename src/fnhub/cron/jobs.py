"""Cron jobs as a resource: the spec callers send (`fnhub.cron.spec`), its checks, and the
table's read/write store.

Every change goes through `JobStore` (which audits it, in the change's transaction), and its
caller bumps `keys.cron_revision` afterwards (`fnhub.revisions.bump`), so running beats reload;
a beat never queries the table per tick, and reads it without this module (`cron.spec.read_jobs`:
no ORM, no audit log at a beat's start).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from sqlalchemy import select

from fnhub import audit
from fnhub.calling.errors import CallError
from fnhub.calling.maker import resolve
from fnhub.cron.models import CronJob
from fnhub.cron.schedule import CronExpressionError, validate
from fnhub.cron.spec import CronJobError as CronJobError
from fnhub.cron.spec import CronJobSpec as CronJobSpec
from fnhub.cron.spec import expression_for as expression_for
from fnhub.cron.spec import spec_of as spec_of
from fnhub.scripts.registry import ActiveScripts
from fnhub.store.db import Database


def check(spec: CronJobSpec, active: ActiveScripts, default_timezone: str) -> None:
    """Raise CronJobError unless the job can run: function, expression, timezone and kwargs."""
    try:
        info = resolve(active, spec.function)
    except CallError as exc:
        raise CronJobError("invalid", f"cron job '{spec.id}': {exc}") from exc
    expr, source = expression_for(spec.expr, info)
    if not expr:
        raise CronJobError(
            "invalid",
            f"cron job '{spec.id}': no expression (give `expr`, or declare fixed_crontab on "
            f"{spec.function})",
        )
    try:
        validate(expr, spec.timezone or default_timezone)
    except CronExpressionError as exc:
        where = f" (fixed_crontab of {spec.function})" if source == "fixed_crontab" else ""
        raise CronJobError("invalid", f"cron job '{spec.id}'{where}: {exc}") from exc
    if info.convention == "kwargs":
        problem = info.check_kwargs(spec.kwargs)
        if problem:
            raise CronJobError("invalid", f"cron job '{spec.id}': {problem}")


class JobStore:
    """Reads and writes `cron_jobs`; callers check specs first and bump the revision after."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[CronJob]:
        with self.db.session() as session:
            return list(session.execute(select(CronJob).order_by(CronJob.id)).scalars())

    def get(self, job_id: str) -> CronJob:
        with self.db.session() as session:
            row = session.get(CronJob, job_id)
        if row is None:
            raise CronJobError("not_found", f"no cron job '{job_id}'")
        return row

    def create(
        self, spec: CronJobSpec, *, provisioned: bool = False, actor: str = audit.SYSTEM
    ) -> CronJob:
        with self.db.session() as session, session.begin():
            if session.get(CronJob, spec.id) is not None:
                raise CronJobError("conflict", f"cron job '{spec.id}' already exists")
            row = CronJob(**spec.model_dump(), provisioned=provisioned)
            row.created_at = row.updated_at = time.time()
            session.add(row)
            audit.record(session, actor, "cron_job.create", _resource(spec.id), None, _state(row))
        return row

    def replace(
        self, spec: CronJobSpec, *, provisioned: bool = False, actor: str = audit.SYSTEM
    ) -> CronJob:
        """Create or overwrite (keeps created_at, so fired-tick history stays meaningful)."""
        with self.db.session() as session, session.begin():
            row = session.get(CronJob, spec.id)
            before = _state(row) if row is not None else None
            if row is None:
                row = CronJob(id=spec.id, created_at=time.time())
                session.add(row)
            for name, value in spec.model_dump().items():
                setattr(row, name, value)
            row.provisioned = provisioned
            row.updated_at = time.time()
            action = "cron_job.update" if before is not None else "cron_job.create"
            audit.record(session, actor, action, _resource(spec.id), before, _state(row))
        return row

    def delete(self, job_id: str, *, actor: str = audit.SYSTEM) -> None:
        with self.db.session() as session, session.begin():
            row = session.get(CronJob, job_id)
            if row is None:
                raise CronJobError("not_found", f"no cron job '{job_id}'")
            audit.record(session, actor, "cron_job.delete", _resource(job_id), _state(row))
            session.delete(row)

    def sync_provisioned(self, specs: list[CronJobSpec], *, actor: str) -> dict[str, list[str]]:
        """Make the declared jobs exactly `specs`: upsert them, drop provisioned ones not listed.

        Jobs created through the API or CLI are left alone; declared jobs that did not change
        are not written. Returns the ids by what happened: created, updated, unchanged, removed.
        """
        ids = {s.id for s in specs}
        with self.db.session() as session:
            rows = session.execute(select(CronJob).where(CronJob.id.in_(ids))).scalars()
            before = {row.id: (spec_of(row).model_dump(), row.provisioned) for row in rows}
        changes: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
        for spec in specs:
            if spec.id not in before:
                changes["created"].append(spec.id)
            elif before[spec.id] == (spec.model_dump(), True):
                changes["unchanged"].append(spec.id)
                continue
            else:
                changes["updated"].append(spec.id)
            self.replace(spec, provisioned=True, actor=actor)
        with self.db.session() as session, session.begin():
            gone = list(
                session.execute(
                    select(CronJob).where(CronJob.provisioned.is_(True), CronJob.id.not_in(ids))
                ).scalars()
            )
            for row in gone:
                audit.record(session, actor, "cron_job.delete", _resource(row.id), _state(row))
                session.delete(row)
        changes["removed"] = [row.id for row in gone]
        return changes


def _resource(job_id: str) -> str:
    return f"cron_job:{job_id}"


def _state(row: CronJob) -> dict[str, Any]:
    """What the audit log compares: the job's definition and whether apply owns it."""
    return {**spec_of(row).model_dump(), "provisioned": row.provisioned}


def row_json(row: CronJob) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(spec_of(row).model_dump())
    data.update(provisioned=row.provisioned, created_at=row.created_at, updated_at=row.updated_at)
    return data
