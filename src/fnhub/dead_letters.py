"""Dead letters: reading, replaying and discarding the tasks in `<prefix>:dead`.

A dead letter is a task that exhausted its attempts (its worker died `max_attempts` times) or,
for functions with `dead_letter=True`, failed or timed out for good (`queue.add_result`). Each
stream entry carries the envelope and, as plain fields, the task id and function, so listings
filter without decoding envelopes; `keys.dead_ids` finds an entry by task id.

A replay makes a new task (new id, attempt 1, `meta.replay_of` naming the dead one) from the
dead letter's function, kwargs, origin, queue and timeout, checked like any call against the
function's active version, so a fix published since runs. The new task is enqueued and the dead
letter deleted in one Lua call, so two replays of one dead letter enqueue it once. A dead letter
that cannot be replayed (its function is gone, its kwargs no longer fit) stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis

from fnhub.calling.errors import CallError
from fnhub.calling.maker import TaskMaker
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.queue import STATUS_TTL_SECONDS, queue_entry
from fnhub.redis_replies import as_entries, as_optional_bytes
from fnhub.scripts.registry import ActiveScripts, read_active
from fnhub.tasks import Status, Task, decode_task, encode, result_for

#: why a bulk action skipped a dead letter that went meanwhile
GONE = "already replayed or discarded"
#: entries read per XREVRANGE while scanning for matches
SCAN_CHUNK = 500
MAX_LIMIT = 500
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

#: Replay: delete the dead letter (and its index field); only if it was still there, enqueue
#: the new task and write its `queued` status. KEYS: dead stream, index, queue stream, status
#: key. ARGV: entry id, dead task id, the new task's `queue.Entry` field and value, queued
#: status, status TTL.
REPLAY = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('XADD', KEYS[3], '*', ARGV[3], ARGV[4])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
return 1
"""
#: Discard: delete the dead letter and its index field. KEYS: dead stream, index. ARGV: entry
#: id, task id.
DISCARD = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
"""


@dataclass
class DeadLetter:
    entry_id: str
    task_id: str
    function: str
    reason: str
    dead_at: float
    task: Task | None  # None when the envelope does not decode (kept, shown, discardable)

    def summary(self) -> dict[str, Any]:
        """What a listing shows (no kwargs)."""
        task = self.task
        return {
            "id": self.entry_id,
            "task_id": self.task_id,
            "function": self.function,
            "reason": self.reason,
            "dead_at": self.dead_at,
            "origin": task.origin if task else None,
            "origin_id": task.origin_id if task else None,
            "queue": task.queue if task else None,
            "attempt": task.attempt if task else None,
            "trigger_time": task.trigger_time if task else None,
        }

    def detail(self) -> dict[str, Any]:
        """Everything: the summary plus the task's kwargs (as records show them: credentials
        an endpoint redacts stay hidden), options and trigger details."""
        task = self.task
        shown = task and (task.kwargs if task.record_kwargs is None else task.record_kwargs)
        return {
            **self.summary(),
            "kwargs": shown,
            "meta": task.meta if task else None,
            "version": task.version if task else None,
            "timeout": task.timeout if task else None,
            "max_attempts": task.max_attempts if task else None,
            "retries": task.retries if task else None,
        }


@dataclass(frozen=True)
class DeadFilter:
    """Which dead letters a listing or a bulk action takes; None means any."""

    function: str | None = None
    since: float | None = None  # died at or after (epoch seconds)
    until: float | None = None  # died before
    q: str | None = None  # substring of the reason or the task id, any case
    ids: frozenset[str] = field(default_factory=frozenset)  # entry or task ids

    def matches(self, letter: DeadLetter) -> bool:
        if self.function and letter.function != self.function:
            return False
        if self.ids and letter.entry_id not in self.ids and letter.task_id not in self.ids:
            return False
        if self.q:
            needle = self.q.lower()
            return needle in letter.reason.lower() or needle in letter.task_id.lower()
        return True


def _text(value: bytes | None) -> str:
    return value.decode(errors="replace") if value else ""


def _letter(entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        task: Task | None = decode_task(fields[b"e"])
    except (KeyError, msgspec.DecodeError):
        task = None
    try:
        dead_at = float(fields.get(b"at") or 0)
    except ValueError:
        dead_at = 0.0
    return DeadLetter(
        entry_id=entry,
        task_id=_text(fields.get(b"id")) or (task.id if task else ""),
        function=_text(fields.get(b"fn")) or (task.function if task else ""),
        reason=_text(fields.get(b"reason")),
        dead_at=dead_at or int(entry.partition("-")[0]) / 1000,
        task=task,
    )


def _bound(seconds: float) -> str:
    """The first entry id at this time (entry ids start with their milliseconds)."""
    return f"{int(seconds * 1000)}-0"


def scan(
    client: redis.Redis, keys: Keys, where: DeadFilter, *, before: str | None = None
) -> Iterator[DeadLetter]:
    """Matching dead letters newest first, from just before entry `before` (a cursor)."""
    highs = [before] if before else []
    if where.until is not None:
        highs.append(_bound(where.until))
    if highs and _entry_key(min(highs, key=_entry_key)) == (0, 0):
        return  # nothing is older than the first possible entry ("(0-0" is no valid bound)
    high = f"({min(highs, key=_entry_key)}" if highs else "+"
    low = _bound(where.since) if where.since is not None else "-"
    wanted = where.function.encode() if where.function else None
    while True:
        chunk = as_entries(client.xrevrange(keys.dead, max=high, min=low, count=SCAN_CHUNK))
        for entry_id, fields in chunk:
            function = fields.get(b"fn")
            if wanted and function is not None and function != wanted:
                continue  # passed over without decoding the envelope
            letter = _letter(entry_id, fields)
            if where.matches(letter):
                yield letter
        if len(chunk) < SCAN_CHUNK:
            return
        high = f"({chunk[-1][0].decode()}"


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def list_page(
    client: redis.Redis, keys: Keys, where: DeadFilter, *, cursor: str | None, limit: int
) -> tuple[list[DeadLetter], str | None]:
    """One page newest first and the cursor of the next (None on the last page). Raises
    ValueError for a cursor that is not an entry id."""
    if cursor is not None and not _ENTRY_ID.match(cursor):
        raise ValueError(f"malformed cursor {cursor[:40]!r}")
    limit = max(1, min(limit, MAX_LIMIT))
    letters: list[DeadLetter] = []
    for letter in scan(client, keys, where, before=cursor):
        if len(letters) == limit:
            return letters, letters[-1].entry_id
        letters.append(letter)
    return letters, None


def get(client: redis.Redis, keys: Keys, letter_id: str) -> DeadLetter | None:
    """A dead letter by entry id or by task id."""
    entry_id: str | None = letter_id
    if not _ENTRY_ID.match(letter_id):
        raw = as_optional_bytes(client.hget(keys.dead_ids, letter_id))
        entry_id = raw.decode() if raw else None
    if entry_id is None:
        return None
    found = as_entries(client.xrange(keys.dead, min=entry_id, max=entry_id))
    return _letter(*found[0]) if found else None


class ReplayError(Exception):
    """Why a dead letter cannot be replayed (it stays where it is)."""


def replay_task(settings: Settings, active: ActiveScripts, letter: DeadLetter) -> Task:
    """The task a replay enqueues: the dead one's call, checked against the active version."""
    dead = letter.task
    if dead is None:
        raise ReplayError(f"dead letter {letter.entry_id} holds no readable task")
    try:
        maker = TaskMaker(
            settings,
            active,
            dead.function,
            origin=dead.origin,
            origin_id=dead.origin_id,
            queue=dead.queue,
            timeout=dead.timeout,
            record=dead.record,
            record_limit=dead.record_limit,
        )
        meta = {k: v for k, v in dead.meta.items() if k not in ("running_marker", "concurrency")}
        task = maker(dead.kwargs, {**meta, "replay_of": dead.id})
    except CallError as exc:
        raise ReplayError(str(exc)) from exc
    return msgspec.structs.replace(
        task,
        status_key=Keys(settings.key_prefix).task_status(task.id),
        record_kwargs=dead.record_kwargs,  # the function gets the kwargs; records stay redacted
    )


@dataclass
class BulkResult:
    """What a bulk action did: the new task ids (replay), how many, and what it left."""

    done: int = 0
    task_ids: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def replay(
    client: redis.Redis, keys: Keys, settings: Settings, letters: list[DeadLetter]
) -> BulkResult:
    """Replay these dead letters (see the module docstring); a letter gone meanwhile (replayed
    or discarded elsewhere) is skipped, as is one that cannot be replayed."""
    outcome = BulkResult()
    active = read_active(client, keys)
    for start in range(0, len(letters), SCAN_CHUNK):
        pipe = client.pipeline(transaction=False)
        sent: list[tuple[DeadLetter, Task]] = []
        for letter in letters[start : start + SCAN_CHUNK]:
            try:
                task = replay_task(settings, active, letter)
            except ReplayError as exc:
                outcome.skipped.append(_skip(letter, str(exc)))
                continue
            assert task.status_key is not None
            queued = encode(result_for(task, Status.QUEUED))
            entry = queue_entry([encode(task)])  # one task: no bundle count to keep
            pipe.eval(
                REPLAY,
                4,
                keys.dead,
                keys.dead_ids,
                keys.queue(task.queue),
                task.status_key,
                letter.entry_id,
                letter.task_id,
                entry.field,
                entry.value,
                queued,
                STATUS_TTL_SECONDS,
            )
            sent.append((letter, task))
        for (letter, task), done in zip(sent, pipe.execute(), strict=True):
            if done:
                outcome.done += 1
                outcome.task_ids.append(task.id)
            else:
                outcome.skipped.append(_skip(letter, GONE))
    return outcome


def discard(client: redis.Redis, keys: Keys, letters: list[DeadLetter]) -> BulkResult:
    """Delete these dead letters for good."""
    outcome = BulkResult()
    for start in range(0, len(letters), SCAN_CHUNK):
        chunk = letters[start : start + SCAN_CHUNK]
        pipe = client.pipeline(transaction=False)
        for letter in chunk:
            pipe.eval(DISCARD, 2, keys.dead, keys.dead_ids, letter.entry_id, letter.task_id)
        for letter, done in zip(chunk, pipe.execute(), strict=True):
            if done:
                outcome.done += 1
            else:
                outcome.skipped.append(_skip(letter, GONE))
    return outcome


def _skip(letter: DeadLetter, reason: str) -> dict[str, str]:
    return {"id": letter.entry_id, "task_id": letter.task_id, "reason": reason}
