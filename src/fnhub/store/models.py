"""SQLAlchemy models of the core runtime: scripts, their immutable versions, drafts and task
records.

Other areas (connectors, subscriptions, cron, websub) declare their tables on the same `Base`
in their own `models.py`; `fnhub.store.all_models` imports them all for Alembic.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Double, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fnhub.scripts.languages import PYTHON

#: Text that may exceed MySQL's 64 KiB TEXT limit (code, logs, tracebacks, results).
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
#: JSON that may exceed 64 KiB on MySQL.
LongJSON = JSON().with_variant(mysql.JSON(), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """A model's Table: DeclarativeBase types `__table__` as any FromClause, while a class
    mapped by declaration always has a Table (with its columns, insert and delete)."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


class Script(Base):
    """A script name and which of its versions is active (publish and roll back move it)."""

    __tablename__ = "scripts"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    active_version: Mapped[int] = mapped_column(Integer)
    active_hash: Mapped[str] = mapped_column(String(64))
    provisioned: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)


class ScriptVersion(Base):
    """An immutable published version: code, hash and the functions it exports."""

    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("script", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    script: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(LongText)
    functions: Mapped[list[dict[str, Any]]] = mapped_column(LongJSON)
    language: Mapped[str] = mapped_column(String(16), default=PYTHON, server_default=PYTHON)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)


class ScriptDraft(Base):
    """Unpublished code of a script (one draft per script, maybe of a script not published
    yet): saved without validation, so work in the console's editor is never lost."""

    __tablename__ = "script_drafts"

    script: Mapped[str] = mapped_column(String(128), primary_key=True)
    code: Mapped[str] = mapped_column(LongText)
    hash: Mapped[str] = mapped_column(String(64))
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(140), default="")
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)


class TaskRecord(Base):
    """A task as its latest attempt left it (earlier attempts: `TaskAttempt`).

    The indexes serve the newest-first listing: each filter's column, then trigger time."""

    __tablename__ = "task_records"
    __table_args__ = (
        Index("ix_task_records_origin", "origin", "origin_id", "trigger_time"),
        Index("ix_task_records_origin_time", "origin", "trigger_time"),
        Index("ix_task_records_function", "function", "trigger_time"),
        Index("ix_task_records_function_status", "function", "status", "trigger_time"),
        Index("ix_task_records_status", "status", "trigger_time"),
        Index("ix_task_records_trigger_time", "trigger_time"),
        Index("ix_task_records_end_time", "end_time"),  # following records as they land
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    function: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64), default="")
    origin: Mapped[str] = mapped_column(String(32))
    origin_id: Mapped[str] = mapped_column(String(128), default="")
    queue: Mapped[str] = mapped_column(String(64))
    kwargs: Mapped[Any] = mapped_column(LongJSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    trigger_time: Mapped[float] = mapped_column(Double)
    start_time: Mapped[float | None] = mapped_column(Double, nullable=True)
    end_time: Mapped[float | None] = mapped_column(Double, nullable=True)
    wait_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    run_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    result: Mapped[Any] = mapped_column(LongJSON, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(256), nullable=True)
    error_message: Mapped[str | None] = mapped_column(LongText, nullable=True)
    traceback: Mapped[str | None] = mapped_column(LongText, nullable=True)
    logs: Mapped[str | None] = mapped_column(LongText, nullable=True)
    replay_of: Mapped[str | None] = mapped_column(String(32), nullable=True)  # a dead letter's task


class TaskAttempt(Base):
    """An attempt of a task that ran again (status `retrying`: it raised and had retries left,
    or its worker died). Only retried tasks have rows here, so the common task costs one row;
    the task's record holds its latest attempt."""

    __tablename__ = "task_attempts"
    __table_args__ = (Index("ix_task_attempts_trigger_time", "trigger_time"),)

    task_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    trigger_time: Mapped[float] = mapped_column(Double)
    start_time: Mapped[float | None] = mapped_column(Double, nullable=True)
    end_time: Mapped[float | None] = mapped_column(Double, nullable=True)
    wait_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    run_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(256), nullable=True)
    error_message: Mapped[str | None] = mapped_column(LongText, nullable=True)
    traceback: Mapped[str | None] = mapped_column(LongText, nullable=True)
    logs: Mapped[str | None] = mapped_column(LongText, nullable=True)


class Connector(Base):
    """A broker connection; secret settings fields are stored encrypted, never returned."""

    __tablename__ = "connectors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: declared in fnhub.yaml: `fnhub apply` removes it once the file no longer declares it
    provisioned: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
