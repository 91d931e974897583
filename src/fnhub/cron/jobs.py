"""Cron jobs as a resource: the spec callers send, its checks, and the table's read/write store.

Every change goes through `JobStore` (which audits it, in the change's transaction), and its
caller bumps `keys.cron_revision` afterwards (`fnhub.revisions.bump`), so running beats reload;
a beat never queries the table per tick.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from fnhub import audit
from fnhub.calling.errors import CallError
from fnhub.calling.maker import resolve
from fnhub.cron.models import CronJob, Misfire, Overlap
from fnhub.cron.schedule import CronExpressionError, validate
from fnhub.functions import FunctionInfo
from fnhub.json_values import PortableObject
from fnhub.scripts.registry import ActiveScripts
from fnhub.store.db import Database

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class CronJobError(ValueError):
    """A refused change. `kind` maps to an HTTP status: not_found 404, conflict 409, else 422."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # invalid | not_found | conflict


class CronJobSpec(BaseModel):
    """A cron job as declared in fnhub.yaml or sent to the API / CLI (strict as
    `fnhub.server.schemas.Strict`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    function: str
    expr: str | None = None  # may be omitted when the function declares fixed_crontab
    timezone: str | None = None  # default: settings.cron_timezone
    kwargs: PortableObject = Field(default_factory=dict)
    enabled: bool = True
    # epoch seconds (or an ISO datetime); no ticks from then on
    expires_at: float | None = Field(default=None, ge=0, le=1e11)
    queue: str | None = None  # default: the function's queue, else `cron`
    record_limit: int | None = Field(default=None, ge=0, le=1_000_000)
    misfire: Misfire = "skip"
    overlap: Overlap = "skip"
    title: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be 1-128 letters, digits, '_', '-' or '.', starting alnum")
        return value

    @field_validator("expires_at", mode="before")
    @classmethod
    def _expires(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return datetime.fromisoformat(value).timestamp()
        return value

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("queue name must be letters, digits, '-' or '_'")
        return value


def expression_for(spec_expr: str | None, info: FunctionInfo | None) -> tuple[str | None, str]:
    """The static expression and where it comes from: the function's fixed_crontab wins."""
    if info is not None and info.options.fixed_crontab:
        return info.options.fixed_crontab, "fixed_crontab"
    return spec_expr, "job"


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


def spec_of(row: CronJob) -> CronJobSpec:
    return CronJobSpec.model_construct(
        id=row.id,
        function=row.function,
        expr=row.expr,
        timezone=row.timezone,
        kwargs=row.kwargs or {},
        enabled=row.enabled,
        expires_at=row.expires_at,
        queue=row.queue,
        record_limit=row.record_limit,
        misfire=row.misfire,
        overlap=row.overlap,
        title=row.title,
    )


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
