"""The `cron_jobs` table: what to run and when. Run-time state (pauses, fired ticks, dynamic
expressions) lives in Redis, where every beat sees it atomically."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Boolean, Double, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fnhub.cron.spec import Misfire, Overlap
from fnhub.store.models import Base


class CronJob(Base):
    """A job (a beat reads these columns through `cron.spec.JOBS`, without the ORM)."""

    __tablename__ = "cron_jobs"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    function: Mapped[str] = mapped_column(String(256))
    expr: Mapped[str | None] = mapped_column(String(256), nullable=True)  # None: fixed_crontab
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    misfire: Mapped[Misfire] = mapped_column(String(16), default="skip")
    overlap: Mapped[Overlap] = mapped_column(String(16), default="skip")
    title: Mapped[str] = mapped_column(String(256), default="")
    provisioned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
