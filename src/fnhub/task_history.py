"""Reading task records: filtered, keyset-paginated listings and one task's full record.

The API and the CLI read through here. A listing walks an index newest first (each filter has
one that ends in `trigger_time`, see `store.models.TaskRecord`) and resumes after the last row
it returned (`cursor`), so the thousandth page costs what the first does; it leaves out the big
columns (kwargs, result, logs, traceback), which `record_detail` returns with every attempt.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, Select, func, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from fnhub.record_search import error_text_matches, mariadb_per_row, match_count
from fnhub.store.db import Database
from fnhub.store.models import TaskAttempt, TaskRecord

MAX_LIMIT = 500
#: MariaDB: rows a listing walks checking the error text row by row before it asks the
#: FULLTEXT index instead (a few milliseconds; see `record_search.mariadb_per_row`)
WALK_ROWS = 2000
SORT_ABORTED = 1028  # MariaDB's error when a capped query had to sort
#: characters of the error message a listing shows (the record has all of it)
SUMMARY_MESSAGE_CHARS = 300

#: what a listing returns per record: no kwargs, result, logs or traceback
SUMMARY_COLUMNS = (
    TaskRecord.id,
    TaskRecord.function,
    TaskRecord.version,
    TaskRecord.status,
    TaskRecord.origin,
    TaskRecord.origin_id,
    TaskRecord.queue,
    TaskRecord.attempt,
    TaskRecord.trigger_time,
    TaskRecord.start_time,
    TaskRecord.end_time,
    TaskRecord.wait_ms,
    TaskRecord.run_ms,
    TaskRecord.error_type,
    func.substr(TaskRecord.error_message, 1, SUMMARY_MESSAGE_CHARS).label("error_message"),
    TaskRecord.replay_of,
)
ATTEMPT_FIELDS = (
    "attempt", "status", "start_time", "end_time", "wait_ms", "run_ms", "error_type",
    "error_message", "traceback", "logs",
)  # fmt: skip


class BadCursor(ValueError):
    """A cursor this module did not make (or made for another ordering)."""


@dataclass(frozen=True)
class RecordFilter:
    """Which records a listing shows; None means any."""

    function: str | None = None
    status: str | None = None
    origin: str | None = None
    origin_id: str | None = None
    since: float | None = None  # trigger time >=
    until: float | None = None  # trigger time <
    q: str | None = None  # text in the error type or message, any case (`record_search`)

    def text_only(self) -> bool:
        """Whether the error text is the only filter (its index can count the matches)."""
        return bool(self.q) and self == RecordFilter(q=self.q)

    def per_row_conditions(self, engine: Engine) -> list[ColumnElement[bool]] | None:
        """The WHERE clauses with the error text checked row by row
        (`record_search.mariadb_per_row`); None without a text or such a form."""
        row_check = mariadb_per_row(self.q, engine) if self.q else None
        if row_check is None:
            return None
        return [*RecordFilter(**{**asdict(self), "q": None}).conditions(engine), row_check]

    def conditions(self, engine: Engine, matches: int | None = None) -> list[ColumnElement[bool]]:
        """The WHERE clauses (the error-text search is written for the engine's database;
        `matches`: how many records the text matches, when known)."""
        where: list[ColumnElement[bool]] = []
        if self.function:
            where.append(TaskRecord.function == self.function)
        if self.status:
            where.append(TaskRecord.status == self.status)
        if self.origin:
            where.append(TaskRecord.origin == self.origin)
        if self.origin_id:
            where.append(TaskRecord.origin_id == self.origin_id)
        if self.since is not None:
            where.append(TaskRecord.trigger_time >= self.since)
        if self.until is not None:
            where.append(TaskRecord.trigger_time < self.until)
        if self.q:
            where.append(error_text_matches(self.q, engine, matches))
        return where


@dataclass
class RecordPage:
    items: list[dict[str, Any]]
    next_cursor: str | None  # None on the last page
    total: int | None  # matching records, when counted


def encode_cursor(trigger_time: float, task_id: str) -> str:
    """An opaque position after the row (trigger_time, id) in newest-first order."""
    return base64.urlsafe_b64encode(orjson.dumps([trigger_time, task_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        trigger_time, task_id = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor(f"malformed cursor {cursor[:40]!r}") from exc
    if not isinstance(trigger_time, int | float) or not isinstance(task_id, str):
        raise BadCursor(f"malformed cursor {cursor[:40]!r}")
    return float(trigger_time), task_id


def _after(cursor: str) -> ColumnElement[bool]:
    """Rows after the cursor's in (trigger_time desc, id desc) order. Written as a range on
    trigger_time plus a tie-break, so every database walks its index from there."""
    trigger_time, task_id = decode_cursor(cursor)
    return (TaskRecord.trigger_time <= trigger_time) & or_(
        TaskRecord.trigger_time < trigger_time, TaskRecord.id < task_id
    )


def list_records(
    db: Database,
    where: RecordFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
    offset: int = 0,
    count: bool = False,
) -> RecordPage:
    """A page of records newest first (ties by id); `count` adds how many match in all.
    Raises BadCursor for a cursor that does not parse."""
    limit = max(1, min(limit, MAX_LIMIT))
    matches = match_count(where.q, db.engine) if where.q else None
    conditions = where.conditions(db.engine, matches)

    def page(conditions: list[ColumnElement[bool]]) -> Select[Any]:
        return (
            select(*SUMMARY_COLUMNS)
            .where(*conditions, *([_after(cursor)] if cursor else []))
            .order_by(TaskRecord.trigger_time.desc(), TaskRecord.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )

    with db.engine.connect() as conn:
        rows: list[dict[str, Any]] = []
        per_row = where.per_row_conditions(db.engine)  # connected: the dialect knows MariaDB
        if per_row is not None:  # MariaDB: walk the index for a while (a common word's page)
            capped = page(per_row).suffix_with(f"ROWS EXAMINED {WALK_ROWS}")
            try:
                rows = [dict(r) for r in conn.execute(capped).mappings()]
            except OperationalError as exc:  # 1028: a sort (no index to walk) hit the cap
                if exc.orig is None or exc.orig.args[0] != SORT_ABORTED:
                    raise
        if len(rows) <= limit:  # not walked, or the walk stopped short: the index's plan
            rows = [dict(r) for r in conn.execute(page(conditions)).mappings()]
        total = matches if where.text_only() else None
        if count and total is None:
            counted = select(func.count()).select_from(TaskRecord).where(*conditions)
            total = int(conn.execute(counted).scalar() or 0)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    next_cursor = encode_cursor(last["trigger_time"], last["id"]) if last else None
    return RecordPage(rows, next_cursor, total if count else None)


def landed_since(
    db: Database, end_time: float, where: RecordFilter | None = None, limit: int = MAX_LIMIT
) -> list[dict[str, Any]]:
    """Matching records of tasks that ended at or after `end_time`, oldest end first (what a
    live tail prints; it walks the `end_time` index)."""
    conditions = where.conditions(db.engine) if where else []
    query = (
        select(*SUMMARY_COLUMNS)
        .where(TaskRecord.end_time >= end_time, *conditions)
        .order_by(TaskRecord.end_time, TaskRecord.id)
        .limit(limit)
    )
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def record_detail(db: Database, task_id: str) -> dict[str, Any] | None:
    """Everything recorded about one task: its columns and `attempts`, each attempt's outcome
    (the record's own attempt last); None if it has no record."""
    with db.session() as session:
        row = session.get(TaskRecord, task_id)
        if row is None:
            return None
        earlier = session.execute(
            select(TaskAttempt)
            .where(TaskAttempt.task_id == task_id, TaskAttempt.attempt < row.attempt)
            .order_by(TaskAttempt.attempt)
        ).scalars()
        attempts = [{name: getattr(a, name) for name in ATTEMPT_FIELDS} for a in earlier]
    record = {c.name: getattr(row, c.name) for c in TaskRecord.__table__.columns}
    attempts.append({name: record[name] for name in ATTEMPT_FIELDS})
    record["attempts"] = attempts
    return record
