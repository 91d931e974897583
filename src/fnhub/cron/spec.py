"""A cron job's spec (what callers send, what a beat schedules) and a beat's read of the table.

Kept apart from `fnhub.cron.jobs` (the checks and the audited store) so that a beat, which only
reads the jobs, starts without SQLAlchemy's ORM, the models and the audit log: a restarted beat's
CPU is nearly all imports, and it competes with the surviving roles for the cores
(`tests/test_beat_start.py`). `read_jobs` reads `cron_jobs` with SQLAlchemy Core through `JOBS`,
a lightweight copy of the model's columns (`tests/test_beat_start.py` checks they match).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON, Boolean, Double, Integer, String, column, select, table

from fnhub.functions import FunctionInfo
from fnhub.json_values import PortableObject

if TYPE_CHECKING:
    from sqlalchemy import Row

    from fnhub.store.db import Database

#: a missed tick: dropped, or run once when the beat is back
Misfire = Literal["skip", "run_once"]
#: a tick while the job's previous run still runs: dropped, or run beside it
Overlap = Literal["skip", "allow"]

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


def spec_of(row: Any) -> CronJobSpec:
    """The spec of a `cron_jobs` row: a `CronJob` or a row of `read_jobs`."""
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


#: `cron_jobs` as `read_jobs` reads it: the columns of `fnhub.cron.models.CronJob` a beat uses
JOBS = table(
    "cron_jobs",
    column("id", String),
    column("function", String),
    column("expr", String),
    column("timezone", String),
    column("kwargs", JSON),
    column("enabled", Boolean),
    column("expires_at", Double),
    column("queue", String),
    column("record_limit", Integer),
    column("misfire", String),
    column("overlap", String),
    column("title", String),
    column("created_at", Double),
)


def read_jobs(db: Database) -> list[Row[Any]]:
    """Every job, by id, as rows with the `CronJob` attributes `spec_of` and a beat read."""
    with db.engine.connect() as conn:
        return list(conn.execute(select(JOBS).order_by(JOBS.c.id)))
