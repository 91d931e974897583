"""The console overview: one snapshot of the cluster, as cheap to compute as it can be.

Workers, queue lengths and workers per queue come from the caller's cache (refreshed every
second anyway); each worker's processes from XINFO CONSUMERS of every queue (one pipeline);
calls, failures and run-time percentiles per function from the per-minute hashes the workers
write (`minute_stats.HourWindow`: one or two HGETALLs once warm); subscription states from
`<prefix>:subs:status:<name>` for the names in the database (re-read when `<prefix>:subs:rev`
moves); the live tail from the newest task records (one indexed query). Nothing here grows
with the number of task records.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from sqlalchemy import select

from fnhub.calling.caller import Caller
from fnhub.keys import WORKER_GROUP
from fnhub.minute_stats import HourWindow, top
from fnhub.server.context import ServerContext
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord
from fnhub.subscriptions.manager import STATUS_STALE_SECONDS
from fnhub.subscriptions.models import Subscription
from fnhub.worker.presence import split_consumer

TAIL_ROWS = 20
TOP_FUNCTIONS = 10  # by calls, and as many by failures
#: functions summed per turn of the event loop when every function's hour is listed
HOURS_SLICE = 100
#: the subscription list is re-read when `<prefix>:subs:rev` moves, and at least this often
SUBSCRIPTIONS_REREAD_SECONDS = 10.0
#: what the feed shows of a server's view of a subscription (its `last` messages are big:
#: only the newest one goes, cut to LAST_PREVIEW_CHARS)
SUBSCRIPTION_FIELDS = (
    "server",
    "holder",
    "rate_per_minute",
    "processed",
    "last_error",
    "subscribed",
)
SOURCE_FIELDS = ("state", "in_flight", "lag", "dropped")
LAST_PREVIEW_CHARS = 300
_TAIL_COLUMNS = (
    TaskRecord.id,
    TaskRecord.function,
    TaskRecord.status,
    TaskRecord.origin,
    TaskRecord.origin_id,
    TaskRecord.queue,
    TaskRecord.trigger_time,
    TaskRecord.end_time,
    TaskRecord.run_ms,
    TaskRecord.error_type,
)


def _tail(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.execute(
            select(*_TAIL_COLUMNS)
            .order_by(TaskRecord.trigger_time.desc(), TaskRecord.id.desc())
            .limit(TAIL_ROWS)
        ).all()
    return [row._asdict() for row in rows]


def _subscriptions(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.execute(
            select(
                Subscription.name, Subscription.mode, Subscription.enabled, Subscription.function
            ).order_by(Subscription.name)
        ).all()
    return [row._asdict() for row in rows]


def _cut(text: str) -> str:
    return text if len(text) <= LAST_PREVIEW_CHARS else text[:LAST_PREVIEW_CHARS] + "…"


def _newest_message(last: dict[str, Any]) -> dict[str, Any] | None:
    """The newest of a server's last messages per outcome, small: its outcome, time, topic,
    task (when it has one), and the start of its payload and of its result or error."""
    if not last:
        return None
    outcome, entry = max(last.items(), key=lambda item: item[1].get("at", 0))
    message = entry.get("message") or {}
    text = message.get("text")
    digest = {
        "outcome": outcome,
        "at": entry.get("at"),
        "topic": entry.get("topic"),
        "task_id": entry.get("task_id"),
        "text": _cut(text) if text is not None else None,
        "binary": text is None,
    }
    if "error" in entry:
        return digest | {"error": _cut(str(entry["error"]))}
    return digest | {"result": _cut(orjson.dumps(entry.get("result"), default=str).decode())}


def _server_view(raw: bytes) -> dict[str, Any] | None:
    view = orjson.loads(raw)
    if time.time() - view.get("at", 0) >= STATUS_STALE_SECONDS:
        return None  # left by a server that stopped
    shown = {k: view.get(k) for k in SUBSCRIPTION_FIELDS}
    source = view.get("source") or {}
    last = _newest_message(view.get("last") or {})
    return shown | {k: source.get(k) for k in SOURCE_FIELDS} | {"last": last}


def _children(infos: list[Any], queues: list[str]) -> dict[str, list[dict[str, Any]]]:
    """worker id → its processes (consumers named `<worker id>.<slot>.<pid>`), per queue."""
    children: dict[str, list[dict[str, Any]]] = {}
    for queue, consumers in zip(queues, infos, strict=True):
        if isinstance(consumers, Exception):
            continue  # no group on this queue yet
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            worker_id, _slot, pid = split_consumer(name)
            children.setdefault(worker_id, []).append(
                {
                    "consumer": name,
                    "queue": queue,
                    "pid": int(pid) if pid.isdigit() else None,
                    "pending": int(consumer.get("pending", 0)),
                    "idle_ms": int(consumer.get("idle", 0)),
                }
            )
    return children


class Overview:
    """Computes snapshots for one server process; `snapshot()` may be called by the feed's
    producer and by `GET /overview` alike (a lock keeps the hour window consistent, and a
    snapshot younger than `max_age` is shared)."""

    def __init__(self, ctx: ServerContext, caller: Caller) -> None:
        self.ctx = ctx
        self.caller = caller
        self.window = HourWindow(ctx.keys)
        self._lock = asyncio.Lock()
        self._subs: list[dict[str, Any]] = []
        self._subs_revision: bytes | None = None
        self._subs_at = -SUBSCRIPTIONS_REREAD_SECONDS  # never read
        self.latest: dict[str, Any] | None = None
        self.latest_at = 0.0  # monotonic
        self._window_at = 0.0  # monotonic
        self._hours: list[dict[str, Any]] = []  # every function's summary at `_hours_at`
        self._hours_at = -1.0
        self._summing: asyncio.Task[None] | None = None

    async def snapshot(self, max_age: float = 0.0) -> dict[str, Any]:
        async with self._lock:
            if self.latest is not None and time.monotonic() - self.latest_at <= max_age:
                return self.latest
            snapshot = await self._compute()
            self.latest, self.latest_at = snapshot, time.monotonic()
            return snapshot

    async def _compute(self) -> dict[str, Any]:
        tail, (workers, subscriptions) = await asyncio.gather(
            asyncio.to_thread(_tail, self.ctx.db), self._from_redis()
        )
        caller = self.caller
        return {
            "at": time.time(),
            "server": self.ctx.server_id,
            "workers": workers,
            "queues": [
                {"name": q, "length": n, "workers": caller.queue_workers.get(q, 0)}
                for q, n in sorted(caller.queue_lengths.items())
            ],
            **self.function_stats(),
            "subscriptions": subscriptions,
            "tail": tail,
        }

    async def _from_redis(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Workers with their processes, and subscription states; refreshes the hour window."""
        ctx, keys, caller = self.ctx, self.ctx.keys, self.caller
        queues = sorted(caller.queue_lengths)
        pipe = ctx.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.xinfo_consumers(keys.queue(queue), WORKER_GROUP)
        pipe.get(keys.subscriptions_revision)
        replies = await pipe.execute(raise_on_error=False)
        infos, subs_revision = replies[:-1], replies[-1]
        stale = time.monotonic() - self._subs_at > SUBSCRIPTIONS_REREAD_SECONDS
        if subs_revision != self._subs_revision or stale:
            self._subs = await asyncio.to_thread(_subscriptions, ctx.db)
            self._subs_revision, self._subs_at = subs_revision, time.monotonic()
        await self._refresh_window()
        children = _children(infos, queues)
        workers = [
            {"id": wid, **info, "children": children.get(wid, [])}
            for wid, info in sorted(caller.workers.items())
        ]
        return workers, await self._subscription_states()

    def function_stats(self) -> dict[str, Any]:
        window = self.window
        totals = window.calls_and_failures()
        calls, failures = window.series()
        functions = []
        for name in top(totals, TOP_FUNCTIONS):
            summary = window.function(name).summary()
            summary.pop("statuses")
            f_calls, f_failures = window.series(name)
            functions.append(
                summary | {"calls_per_minute": f_calls, "failures_per_minute": f_failures}
            )
        return {
            "minutes": window.minutes_axis(),
            "totals": {
                "calls": sum(calls),
                "failures": sum(failures),
                "calls_per_minute": calls,
                "failures_per_minute": failures,
            },
            "functions": functions,
        }

    async def _subscription_states(self) -> list[dict[str, Any]]:
        if not self._subs:
            return []
        pipe = self.ctx.redis.pipeline(transaction=False)
        for sub in self._subs:
            pipe.hvals(self.ctx.keys.subscription_status(sub["name"]))
        views = await pipe.execute()
        states = []
        for sub, raws in zip(self._subs, views, strict=True):
            servers = [v for v in (_server_view(raw) for raw in raws) if v is not None]
            servers.sort(key=lambda v: not v.get("subscribed"))
            states.append(sub | {"servers": servers})
        return states

    async def _refresh_window(self) -> None:
        await self.window.refresh(self.ctx.redis)
        self._window_at = time.monotonic()

    async def function_hours(self, function: str | None = None) -> list[dict[str, Any]]:
        """Every function's hour (or one's, with its series), from a window at most a
        second old. The list of all is summed in the background once per refresh, a slice at
        a time (1000 functions are tens of milliseconds of Python): a request gets the newest
        list made, at most a refresh behind, and waits only for the very first."""
        async with self._lock:
            if time.monotonic() - self._window_at > 1.0:
                await self._refresh_window()
            if function is not None:
                calls, failures = self.window.series(function)
                return [
                    self.window.function(function).summary()
                    | {
                        "minutes": self.window.minutes_axis(),
                        "calls_per_minute": calls,
                        "failures_per_minute": failures,
                    }
                ]
            stale = self._hours_at != self._window_at
            if stale and (self._summing is None or self._summing.done()):
                self._summing = asyncio.create_task(self._sum_hours(self._window_at))
        if self._hours_at < 0 and self._summing is not None:
            await asyncio.shield(self._summing)  # the first list: nothing older to give
        return self._hours

    async def _sum_hours(self, window_at: float) -> None:
        names = sorted(self.window.calls_and_failures())
        hours: list[dict[str, Any]] = []
        for start in range(0, len(names), HOURS_SLICE):
            hours.extend(
                self.window.function(n).summary() for n in names[start : start + HOURS_SLICE]
            )
            await asyncio.sleep(0)  # let requests in between slices
        self._hours, self._hours_at = hours, window_at
