"""Task records: results flow through a Redis stream and are written to the database in batches.

Workers never open a database transaction per task: they append a batch's results to
`<prefix>:records` in the same atomic call that acknowledges the tasks. Recorders (one thread per
worker supervisor, read through a consumer group, so several never write the same batch) upsert
up to `BATCH` rows per transaction and prune old rows per origin (keep last N) and by age. Rows a
write holds past their origin's N are not written at all: prune would delete them unread. While
records come fast, a recorder holds what it read for up to HOLD_SECONDS, so that cut applies
to a second's worth of a busy origin instead of to each read.

A task's record holds its latest attempt: a row never goes back to an earlier attempt (records
of one task may reach two recorders). An attempt that runs again (status `retrying`) is also
written to `task_attempts`, so a retried task keeps all its attempts while the common task
still costs one row.

A recorder never stops on an entry it read. An entry that cannot be decoded, or a record its
row cannot be written for (even alone), is moved to `<prefix>:records:poison` with the reason and
acknowledged; the record is then written without its kwargs, result and output, marked
`RecordIncomplete`. A batch that fails because of its data is split until the bad rows stand
alone, so the good rows around them are written; a database that does not answer is waited for
(nothing acknowledged). JSON columns nest at most JSON_MAX_DEPTH levels: deeper values are cut
there, marked `{"$fnhub_truncated": ...}`.
"""

from __future__ import annotations

import base64
import functools
import heapq
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
import redis
from redis.typing import EncodableT, FieldT
from sqlalchemy import Insert, delete, exists, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from fnhub.backoff import Backoff
from fnhub.config import Settings
from fnhub.keys import RECORDER_GROUP, Keys
from fnhub.nesting import nests_deeper
from fnhub.outage_log import short_reason
from fnhub.queue import results_data, results_value
from fnhub.redis_replies import PendingEntry, as_pending_streams, as_streams
from fnhub.store.db import Database, upsert_insert
from fnhub.store.models import TaskAttempt, TaskRecord, table_of
from fnhub.tasks import Origin, Status, TaskResult, decode_result, encode

log = logging.getLogger(__name__)

BATCH = 1000
#: after a batch smaller than BATCH, the recorder waits this long before reading again, so a
#: trickle of tasks is written a few times a second instead of waking it (and the database) for
#: every task, right when the caller waits for the next one
PAUSE_SECONDS = 0.2
#: while records come faster than BATCH per read, the recorder holds them up to this long before
#: writing, so a busy origin past its retention limit writes `limit` rows per second rather than
#: per read (most of which `prune` would delete unread); a trickle is written at once
HOLD_SECONDS = 1.0
#: ... and writes sooner once it holds this many records (origins with a high `record_limit`)
HOLD_MAX_RECORDS = 20_000
PRUNE_EVERY_SECONDS = 30.0
CLAIM_IDLE_MS = 60_000
#: poison entries kept (approximately): the newest, for a person to look at
POISON_MAXLEN = 10_000
#: a poison stream entry's fields: the entry set aside, its reason and where it came from
PoisonFields = dict[FieldT, EncodableT]
#: JSON columns nest at most this deep (orjson refuses 255 levels; MariaDB's JSON check, 32):
#: deeper parts of kwargs are cut there and marked, rather than losing the record
JSON_MAX_DEPTH = 30
TRUNCATED_MARKER = "$fnhub_truncated"
#: MySQL/MariaDB codes raised as OperationalError although the row's data is the problem:
#: a failed CHECK (MariaDB's JSON validity check), invalid JSON text
_MYSQL_DATA_CODES = frozenset({3140, 4025})
#: the columns an upsert replaces; `attempt` last: MySQL assigns left to right, and the others
#: compare the row's attempt before it changes
_COLUMNS = [c.name for c in TaskRecord.__table__.columns if c.name not in ("id", "attempt")]
_COLUMNS.append("attempt")


def _json_default(value: Any) -> Any:
    """Bytes (binary broker payloads in kwargs) become {"$base64": ...} in JSON columns."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(value).decode()}
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _cut(value: Any, depth: int) -> Any:
    """`value` with lists and dicts deeper than `depth` levels replaced by a marker."""
    if isinstance(value, dict | list | tuple) and depth <= 0:
        return {TRUNCATED_MARKER: f"nested deeper than {JSON_MAX_DEPTH} levels"}
    if isinstance(value, dict):
        return {key: _cut(item, depth - 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(item, depth - 1) for item in value]
    return value


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def _json(value: Any) -> str | None:
    """`value` as JSON text, cut at JSON_MAX_DEPTH levels. Only a text with that many opening
    brackets (a count at C speed) can nest that deep, so most values are never walked."""
    if value is None:
        return None
    try:
        text = _dumps(value)
    except TypeError:  # too deep for orjson, or of a type JSON has no word for
        if not nests_deeper(value, JSON_MAX_DEPTH):
            raise
        return _dumps(_cut(value, JSON_MAX_DEPTH)).decode()
    if text.count(b"{") + text.count(b"[") > JSON_MAX_DEPTH and nests_deeper(value, JSON_MAX_DEPTH):
        text = _dumps(_cut(value, JSON_MAX_DEPTH))
    return text.decode()


def to_row(result: TaskResult) -> tuple[Any, ...]:
    """The record's column values in `_ROW_ORDER`, JSON columns already serialised."""
    start, end = result.start_time, result.end_time
    return (
        result.id,
        result.function,
        result.version,
        result.origin,
        result.origin_id,
        result.queue,
        _json(result.kwargs),
        result.status,
        result.attempt,
        result.trigger_time,
        start,
        end,
        (start - result.trigger_time) * 1000 if start else None,
        (end - start) * 1000 if start and end else None,
        _json(result.result),
        result.error_type,
        result.error_message,
        result.traceback,
        result.logs or None,
        result.meta.get("replay_of") if result.meta else None,
    )


_ROW_ORDER = (
    "id", "function", "version", "origin", "origin_id", "queue", "kwargs", "status", "attempt",
    "trigger_time", "start_time", "end_time", "wait_ms", "run_ms", "result", "error_type",
    "error_message", "traceback", "logs", "replay_of",
)  # fmt: skip
_ID = _ROW_ORDER.index("id")
_ATTEMPT = _ROW_ORDER.index("attempt")
_STATUS = _ROW_ORDER.index("status")


def _upsert_statement(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE for a dialect, replacing a row only with the
    same or a later attempt of its task."""
    table = table_of(TaskRecord)
    stmt = upsert_insert(dialect, table)
    if dialect in ("mysql", "mariadb"):
        newer = stmt.inserted.attempt >= table.c.attempt
        return stmt.on_duplicate_key_update(  # type: ignore[no-any-return]
            [(c, func.if_(newer, stmt.inserted[c], table.c[c])) for c in _COLUMNS]
        )
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["id"],
        set_={c: stmt.excluded[c] for c in _COLUMNS},
        where=stmt.excluded.attempt >= table.c.attempt,
    )


_ATTEMPT_COLUMNS = tuple(c.name for c in TaskAttempt.__table__.columns)
#: where each attempt column is in a record row (`to_row`)
_ATTEMPT_FROM_ROW = tuple(_ROW_ORDER.index("id" if c == "task_id" else c) for c in _ATTEMPT_COLUMNS)


def _attempts_statement(dialect: str) -> Insert:
    """INSERT of attempt rows, replacing one already there (a task run twice, at least once)."""
    table = table_of(TaskAttempt)
    replaced = [c for c in _ATTEMPT_COLUMNS if c not in ("task_id", "attempt")]
    stmt = upsert_insert(dialect, table)
    if dialect in ("mysql", "mariadb"):
        return stmt.on_duplicate_key_update(  # type: ignore[no-any-return]
            {c: stmt.inserted[c] for c in replaced}
        )
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["task_id", "attempt"], set_={c: stmt.excluded[c] for c in replaced}
    )


@functools.cache
def _compiled_upsert(dialect: Dialect) -> tuple[str, bool]:
    """The upsert as driver SQL, compiled once: executemany of plain tuples skips SQLAlchemy's
    per-row parameter processing, which cost more than the database's own work."""
    return _compiled(_upsert_statement(dialect.name), dialect, _ROW_ORDER)


@functools.cache
def _compiled_attempts(dialect: Dialect) -> tuple[str, bool]:
    return _compiled(_attempts_statement(dialect.name), dialect, _ATTEMPT_COLUMNS)


def _compiled(statement: Insert, dialect: Dialect, order: tuple[str, ...]) -> tuple[str, bool]:
    compiled = statement.compile(dialect=dialect, column_keys=order)
    if compiled.positional and tuple(compiled.positiontup or ()) != order:
        raise RuntimeError(f"unexpected parameter order for {dialect.name}")
    return str(compiled), compiled.positional


class RecordHead(msgspec.Struct, kw_only=True):
    """What the recorder decodes of every record it reads: its origin, retention limit and
    trigger time, by which it picks the newest its origin keeps (`TaskResult`'s fields and
    defaults; msgpack skips the rest). The whole record is decoded only when it is written: a
    burst past its origin's limit (a subscription draining a backlog) is mostly dropped, and
    decoding its kwargs, meta and output cost the supervisor more than the rows it writes."""

    id: str
    origin: str = Origin.DIRECT
    origin_id: str = ""
    trigger_time: float = 0.0
    record_limit: int | None = None


#: a record read and held: its head, and its bytes to decode when it is written
Held = tuple[RecordHead, msgspec.Raw]
_heads_decoder = msgspec.msgpack.Decoder(list[RecordHead])
_raws_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])


def _trigger_time(held: Held) -> float:
    return held[0].trigger_time


def upsert_records(db: Database, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows, replacing any row with the same id and the same or an earlier attempt;
    rows of attempts that run again (`retrying`) also go to `task_attempts`."""
    if not rows:
        return
    by_id: dict[str, tuple[Any, ...]] = {}
    for row in rows:  # per id, the latest attempt; of one attempt, the last word
        kept = by_id.get(row[_ID])
        if kept is None or row[_ATTEMPT] >= kept[_ATTEMPT]:
            by_id[row[_ID]] = row
    attempts = [
        tuple(row[i] for i in _ATTEMPT_FROM_ROW) for row in rows if row[_STATUS] == Status.RETRYING
    ]
    sql, positional = _compiled_upsert(db.engine.dialect)
    params: list[Any] = list(by_id.values())
    if not positional:
        params = [dict(zip(_ROW_ORDER, row, strict=True)) for row in params]
    with db.engine.begin() as conn:
        conn.exec_driver_sql(sql, params)
        if attempts:
            sql, positional = _compiled_attempts(db.engine.dialect)
            attempt_params: list[Any] = attempts
            if not positional:
                attempt_params = [dict(zip(_ATTEMPT_COLUMNS, row, strict=True)) for row in attempts]
            conn.exec_driver_sql(sql, attempt_params)


def is_data_error(exc: BaseException) -> bool:
    """Whether a write failed because of the rows it held (splitting the batch finds them)
    rather than because of the database (waiting for it helps): refused values, failed
    constraints, and the driver refusing a Python value before sending it."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, OperationalError):
        args = exc.orig.args if exc.orig is not None else ()
        return bool(args) and args[0] in _MYSQL_DATA_CODES
    if isinstance(exc, SQLAlchemyError):
        return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)
    # sqlite3 raises these unwrapped: an int past 64 bits, a lone surrogate in a string
    return isinstance(exc, TypeError | ValueError | OverflowError)


def _reason(exc: BaseException) -> str:
    """What went wrong, short: the driver's own error (SQLAlchemy's text adds the statement
    and its parameters, the very data that failed)."""
    cause = getattr(exc, "orig", None) or exc
    return _text(f"{type(cause).__name__}: {cause}", 1000)


def _text(value: str, size: int) -> str:
    """`value` as any database takes it: valid UTF-8, no NUL, at most `size` characters."""
    return value.encode("utf-8", "replace").decode().replace("\x00", "")[:size]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def degraded_row(result: TaskResult, note: str) -> tuple[Any, ...]:
    """What can still be recorded of a result whose row cannot be written: the row without
    kwargs, result, traceback and output, texts cleaned and cut to their columns, numbers
    brought in range, marked `RecordIncomplete` with `note` saying why and where the rest is."""
    trigger = _finite(result.trigger_time) or 0.0
    start, end = _finite(result.start_time), _finite(result.end_time)
    replay_of = result.meta.get("replay_of")
    return (
        _text(result.id, 32),
        _text(result.function, 256),
        _text(result.version, 64),
        _text(result.origin, 32),
        _text(result.origin_id, 128),
        _text(result.queue, 64),
        None,
        _text(result.status, 16),
        min(max(result.attempt, 0), 2**31 - 1),
        trigger,
        start,
        end,
        (start - trigger) * 1000 if start else None,
        (end - start) * 1000 if start and end else None,
        None,
        "RecordIncomplete",
        _text(note, 2000),
        None,
        None,
        _text(replay_of, 32) if isinstance(replay_of, str) else None,
    )


class Recorder:
    def __init__(
        self, db: Database, client: redis.Redis, keys: Keys, settings: Settings, consumer: str
    ) -> None:
        self.db = db
        self.redis = client
        self.keys = keys
        self.settings = settings
        self.consumer = consumer
        self.limits: dict[tuple[str, str], int] = {}
        self._pruned_at = time.monotonic()
        # read but not yet written: per origin its records, the entries that carried them
        # (acknowledged once written), how many records, and since when
        self._held: dict[tuple[str, str], list[Held]] = {}
        self._held_ids: list[bytes] = []
        self._held_count = 0
        self._held_since = 0.0
        self._entry_of: dict[str, bytes] = {}  # task id → the entry its result came in
        self._poison: list[PoisonFields] = []  # held entries (records) that could not be decoded
        self._reread_pending = True  # at (re)start: entries read before, never acknowledged

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.keys.records, RECORDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run_once(self, block_ms: int = 1000) -> int:
        """Read one batch and write it, with anything held; returns how many records the batch
        held (written, or left out as past their origin's retention limit)."""
        handled = self._read(block_ms)
        self.flush()
        return handled

    def _read(self, block_ms: int) -> int:
        """Read up to BATCH entries (or claim abandoned ones) into what is held for writing."""
        entries: Sequence[PendingEntry] = []
        if self._reread_pending:
            pending = as_pending_streams(
                self.redis.xreadgroup(
                    RECORDER_GROUP, self.consumer, {self.keys.records: "0"}, count=BATCH
                )
            )
            entries = pending[0][1] if pending else []
            self._reread_pending = False
        if not entries:
            new = as_streams(
                self.redis.xreadgroup(
                    RECORDER_GROUP,
                    self.consumer,
                    {self.keys.records: ">"},
                    count=BATCH,
                    block=block_ms,
                )
            )
            entries = new[0][1] if new else []
        if not entries:
            claimed = self.redis.xautoclaim(
                self.keys.records, RECORDER_GROUP, self.consumer, CLAIM_IDLE_MS, count=BATCH
            )
            entries = claimed[1]
        if not entries:
            return 0
        if not self._held_ids:
            self._held_since = time.monotonic()
        handled = 0
        held = self._held
        entry_of = self._entry_of
        for entry_id, fields in entries:
            self._held_ids.append(entry_id)
            if not fields:  # deleted while pending: nothing to write
                continue
            try:
                data = results_data(fields)
                records = zip(_heads_decoder.decode(data), _raws_decoder.decode(data), strict=True)
            except Exception as exc:  # garbage, or nested too deep to decode here
                self._set_entry_aside(entry_id, fields, exc)
                continue
            for record in records:
                head = record[0]
                entry_of[head.id] = entry_id
                origin = (head.origin, head.origin_id)
                kept = held.get(origin)
                if kept is None:
                    kept = held[origin] = []
                kept.append(record)
                handled += 1
                if head.record_limit is not None:
                    self.limits[origin] = head.record_limit
                else:
                    self.limits.setdefault(origin, -1)
        for origin, kept in held.items():  # past twice the limit, drop what will not be written
            limit = self._limit(origin)
            if len(kept) > 2 * limit:
                held[origin] = self._newest(origin, kept)
        self._held_count += handled
        return handled

    def flush(self) -> None:
        """Write what is held (per origin, only the newest its retention keeps), then
        acknowledge and delete its entries."""
        if not self._held_ids:
            return
        poison = list(self._poison)  # and the records set aside below, moved with the acks
        results = self._decoded(
            [
                record
                for origin, held in self._held.items()
                for record in self._newest(origin, held)
            ],
            poison,
        )
        try:
            rows = [to_row(result) for result in results]
        except Exception:  # a value no JSON column holds: find it, write the others
            results, rows = self._rows_one_by_one(results, poison)
        for start in range(0, len(rows), BATCH):
            end = start + BATCH
            self._write(results[start:end], rows[start:end], poison)
        ids = self._held_ids
        pipe = self.redis.pipeline(transaction=True)
        for fields in poison:
            pipe.xadd(self.keys.records_poison, fields, maxlen=POISON_MAXLEN, approximate=True)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            pipe.xack(self.keys.records, RECORDER_GROUP, *chunk)
            pipe.xdel(self.keys.records, *chunk)
        pipe.execute()
        self._forget_held()

    def _decoded(self, held: list[Held], poison: list[PoisonFields]) -> list[TaskResult]:
        """The records to write, decoded whole; one that does not decode (its head did) is
        moved to the poison stream as a records entry of its own."""
        try:
            return [decode_result(raw) for _head, raw in held]
        except Exception:  # rare: find it, decode the others
            pass
        results = []
        for head, raw in held:
            try:
                results.append(decode_result(raw))
            except Exception as exc:
                entry = self._entry_of.get(head.id, b"")
                reason = _reason(exc)
                log.error(
                    "record of task %s (records entry %s) cannot be decoded (%s); moved to %s",
                    head.id,
                    entry.decode(),
                    reason,
                    self.keys.records_poison,
                )
                poison.append(
                    {
                        b"rs": results_value([bytes(raw)]),
                        b"poison_reason": reason,
                        b"poison_entry": entry,
                        b"poison_task": _text(head.id, 200),
                    }
                )
        return results

    def _forget_held(self) -> None:
        self._held, self._held_ids, self._held_count = {}, [], 0
        self._entry_of, self._poison = {}, []

    def _rows_one_by_one(
        self, results: list[TaskResult], poison: list[PoisonFields]
    ) -> tuple[list[TaskResult], list[tuple[Any, ...]]]:
        kept, rows = [], []
        for result in results:
            try:
                rows.append(to_row(result))
            except Exception as exc:
                self._set_aside(result, exc, poison)
            else:
                kept.append(result)
        return kept, rows

    def _write(
        self, results: list[TaskResult], rows: list[tuple[Any, ...]], poison: list[PoisonFields]
    ) -> None:
        """Upsert rows; when the data is at fault, halve the batch until the rows at fault
        stand alone and set those aside. Any other failure goes up (nothing is acknowledged)."""
        try:
            upsert_records(self.db, rows)
            return
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(rows) == 1:
                self._set_aside(results[0], exc, poison)
                return
        half = len(rows) // 2
        self._write(results[:half], rows[:half], poison)
        self._write(results[half:], rows[half:], poison)

    def _set_entry_aside(self, entry_id: bytes, fields: dict[bytes, bytes], exc: Exception) -> None:
        """An entry that cannot be decoded goes to the poison stream as it is (with acks)."""
        reason = _reason(exc)
        log.error(
            "records entry %s cannot be decoded (%s); moved to %s",
            entry_id.decode(),
            reason,
            self.keys.records_poison,
        )
        poisoned: PoisonFields = dict(fields.items())
        poisoned[b"poison_reason"] = reason
        poisoned[b"poison_entry"] = entry_id
        self._poison.append(poisoned)

    def _set_aside(self, result: TaskResult, exc: Exception, poison: list[PoisonFields]) -> None:
        """A result whose row cannot be written goes to the poison stream (as a records entry
        of its own, to be added back once fixed), and what can be of its row is written."""
        reason = _reason(exc)
        entry = self._entry_of.get(result.id, b"")
        log.error(
            "record of task %s (records entry %s) cannot be written (%s); moved to %s",
            result.id,
            entry.decode(),
            reason,
            self.keys.records_poison,
        )
        try:
            encoded = results_value([encode(result)])
        except Exception:  # it decoded, so it encodes; but nothing here may stop the recorder
            encoded = b""
        poison.append(
            {
                b"rs": encoded,
                b"poison_reason": reason,
                b"poison_entry": entry,
                b"poison_task": _text(result.id, 200),
            }
        )
        note = (
            f"the record could not be written in full ({reason}); all of it is in the Redis "
            f"stream {self.keys.records_poison}"
        )
        try:
            upsert_records(self.db, [degraded_row(result, note)])
        except Exception as again:
            if not is_data_error(again):
                raise
            log.error("record of task %s cannot be written at all: %s", result.id, _reason(again))

    def _holding_saves_rows(self) -> bool:
        """Whether to hold what was read a little longer instead of writing it now: while
        records come faster than BATCH per read, for at most HOLD_SECONDS. An origin past its
        retention limit then costs `limit` rows per HOLD_SECONDS, not per read."""
        if self._held_count < BATCH:
            return False
        held_rows = sum(len(results) for results in self._held.values())
        return held_rows < HOLD_MAX_RECORDS and time.monotonic() - self._held_since < HOLD_SECONDS

    def _limit(self, origin: tuple[str, str]) -> int:
        """How many records of this origin are kept (its `record_limit`, or the default)."""
        limit = self.limits.get(origin, -1)
        return self.settings.records_keep_per_origin if limit < 0 else limit

    def _newest(self, origin: tuple[str, str], results: list[Held]) -> list[Held]:
        """The results of one origin worth writing: past its limit, only the newest (by trigger
        time, as `prune` counts), since `prune` would delete the others unread. A burst of a
        subscription with the default limit of 1000 writes 1000 rows per write, not one per
        message."""
        limit = self._limit(origin)
        if len(results) <= limit:
            return results
        return heapq.nlargest(limit, results, key=_trigger_time) if limit else []

    def prune(self) -> int:
        """Keep the newest N records per (origin, origin id) and none older than the max age;
        the earlier attempts of the records pruned go with them. Returns the records removed."""
        removed = 0
        cutoff = time.time() - self.settings.records_max_age_days * 86400
        with self.db.engine.begin() as conn:
            removed += conn.execute(
                delete(TaskRecord).where(TaskRecord.trigger_time < cutoff)
            ).rowcount
            conn.execute(delete(TaskAttempt).where(TaskAttempt.trigger_time < cutoff))
            counts = conn.execute(
                select(TaskRecord.origin, TaskRecord.origin_id, func.count()).group_by(
                    TaskRecord.origin, TaskRecord.origin_id
                )
            ).all()
            for origin, origin_id, count in counts:
                limit = self.limits.get((origin, origin_id), -1)
                if limit < 0:
                    limit = self.settings.records_keep_per_origin
                if count <= limit:
                    continue
                where = (TaskRecord.origin == origin) & (TaskRecord.origin_id == origin_id)
                if limit == 0:
                    removed += conn.execute(delete(TaskRecord).where(where)).rowcount
                    continue
                boundary = conn.execute(
                    select(TaskRecord.trigger_time)
                    .where(where)
                    .order_by(TaskRecord.trigger_time.desc())
                    .offset(limit - 1)
                    .limit(1)
                ).scalar()
                removed += conn.execute(
                    delete(TaskRecord).where(where, TaskRecord.trigger_time < boundary)
                ).rowcount
            if removed:  # attempts whose record is gone (only retried tasks have any)
                conn.execute(
                    delete(TaskAttempt).where(~exists().where(TaskRecord.id == TaskAttempt.task_id))
                )
        return removed

    def run(self, stop: threading.Event) -> None:
        """Record until `stop`. Redis or the database away: wait and retry what is held. Run
        again after an unexpected error (`fnhub.supervised`), it starts from what it had read
        and not acknowledged."""
        self._forget_held()
        self._reread_pending = True
        backoff = Backoff(initial=0.5, cap=10.0)
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self._turn(stop)
                    backoff.reset()
                    if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                        self.prune()
                        self._pruned_at = time.monotonic()
            except (redis.RedisError, SQLAlchemyError, OSError) as exc:
                log.warning("task recorder paused: %s", short_reason(exc))
                stop.wait(backoff.next())
        try:
            self.flush()
        except (redis.RedisError, SQLAlchemyError, OSError) as exc:  # claimed later elsewhere
            log.warning("task recorder could not write what it held at stop: %s", exc)

    def _turn(self, stop: threading.Event) -> None:
        """Read once; write now, or hold what was read while that saves rows."""
        if self._held_ids and not self._holding_saves_rows():
            self.flush()  # before reading more (after a failed write, say)
        block = 1000
        if self._held_ids:  # held records wait at most HOLD_SECONDS
            left = HOLD_SECONDS - (time.monotonic() - self._held_since)
            block = min(max(int(left * 1000), 1), block)
        read = self._read(block)
        if not read or not self._holding_saves_rows():
            self.flush()
        if read < BATCH:
            stop.wait(PAUSE_SECONDS)
