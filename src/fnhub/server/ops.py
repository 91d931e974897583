"""Operations: liveness, readiness (Redis, database, workers) and Prometheus metrics.

Task counters and run-time histograms, per queue and per function (and queue-wait histograms per
function), are cluster-wide: workers add them to `keys.stats` in the same atomic call that
acknowledges each task, so any server's `/metrics` shows every worker's work.
Restarts of long-lived loops (`fnhub.supervised`) are cluster-wide the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from fnhub.queue import RUN_BUCKETS
from fnhub.server.access import authorize, session_cookie
from fnhub.server.auth import api_key_header, bearer
from fnhub.server.context import caller_of, context_of
from fnhub.server.render import json_response

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


def _db_ping(db: Any) -> None:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
async def readyz(request: Request) -> Response:
    """Ready when Redis and the database answer and at least one worker is alive."""
    ctx = context_of(request)
    caller = caller_of(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(ctx.redis.ping(), 2)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        await asyncio.wait_for(asyncio.to_thread(_db_ping, ctx.db), 5)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if checks["redis"] == "ok":
        try:
            await caller.refresh()
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    checks["workers"] = f"{len(caller.workers)} alive" if caller.workers else "error: none alive"
    ok = all(not v.startswith("error") for v in checks.values())
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
    )


#: `keys.stats` fields holding seconds (the rest hold counts): `<kind>|<queue or function>`
_SUM_KINDS = frozenset({"s", "fs", "fws"})


def _histogram(
    name: str,
    documentation: str,
    label: str,
    counts: dict[str, dict[tuple[str, str], int]],
    sums: dict[str, dict[str, float]],
    bucket_kind: str,
    sum_kind: str,
) -> HistogramMetricFamily:
    """A histogram over `RUN_BUCKETS` from the `keys.stats` fields of one bucket and sum kind."""
    buckets: dict[str, dict[str, int]] = {}
    for (owner, bound), n in counts.get(bucket_kind, {}).items():
        buckets.setdefault(owner, {})[bound] = n
    seconds = sums.get(sum_kind, {})
    hist = HistogramMetricFamily(name, documentation, labels=[label])
    for owner in sorted(set(buckets) | set(seconds)):
        cumulative, total = [], 0
        for bound in [*(str(b) for b in RUN_BUCKETS), "+Inf"]:
            total += buckets.get(owner, {}).get(bound, 0)
            cumulative.append((bound, total))
        hist.add_metric([owner], cumulative, seconds.get(owner, 0.0))
    return hist


class _Snapshot:
    """A one-off collector over numbers read from Redis for this scrape."""

    def __init__(
        self,
        stats: dict[bytes, bytes],
        lengths: dict[str, int],
        workers: int,
        restarts: dict[bytes, bytes],
    ) -> None:
        self.stats = stats
        self.lengths = lengths
        self.workers = workers
        self.restarts = restarts

    def collect(self) -> Any:
        counts: dict[str, dict[tuple[str, str], int]] = {}  # field kind → (name, label) → n
        sums: dict[str, dict[str, float]] = {}  # field kind → name → seconds
        for raw_key, raw_value in self.stats.items():
            kind, _, rest = raw_key.decode().partition("|")
            if kind in _SUM_KINDS:
                sums.setdefault(kind, {})[rest] = float(raw_value)
            else:
                name, _, label = rest.rpartition("|")
                counts.setdefault(kind, {})[name, label] = int(raw_value)
        tasks = CounterMetricFamily(
            "fnhub_tasks", "Finished tasks by queue and status", labels=["queue", "status"]
        )
        for (queue, status), n in sorted(counts.get("n", {}).items()):
            tasks.add_metric([queue, status], n)
        yield tasks
        yield _histogram(
            "fnhub_task_run_seconds", "Run time of finished tasks", "queue", counts, sums, "b", "s"
        )
        calls = CounterMetricFamily(
            "fnhub_function_calls",
            "Finished tasks by function and final status",
            labels=["function", "status"],
        )
        for (function, status), n in sorted(counts.get("fn", {}).items()):
            calls.add_metric([function, status], n)
        yield calls
        yield _histogram(
            "fnhub_function_run_seconds",
            "Run time of finished tasks per function",
            "function",
            counts,
            sums,
            "fb",
            "fs",
        )
        yield _histogram(
            "fnhub_function_wait_seconds",
            "Time from trigger to the start of the final attempt, per function",
            "function",
            counts,
            sums,
            "fw",
            "fws",
        )
        lengths = GaugeMetricFamily(
            "fnhub_queue_length", "Tasks waiting or running per queue", labels=["queue"]
        )
        for queue, n in sorted(self.lengths.items()):
            lengths.add_metric([queue], n)
        yield lengths
        yield GaugeMetricFamily("fnhub_workers", "Live worker supervisors", value=self.workers)
        restarts = CounterMetricFamily(
            "fnhub_loop_restarts",
            "Restarts of long-lived loops after an unexpected error, in every server and worker",
            labels=["loop"],
        )
        for loop, count in sorted(self.restarts.items()):
            restarts.add_metric([loop.decode()], int(count))
        yield restarts


async def metrics_access(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    x_api_key: str | None = Depends(api_key_header),
    cookie: str | None = Depends(session_cookie),
) -> None:
    """With `metrics_auth`, `/metrics` is read like any `/api/v1` GET: a key or session of any
    role (a viewer key is enough for a Prometheus scraper)."""
    if context_of(request).settings.metrics_auth:
        await authorize(request, credentials, x_api_key, cookie)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    dependencies=[Depends(metrics_access)],
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: tasks by queue and status, run-time histograms, the same per
    function with queue-wait histograms, queue lengths, live workers, restarts of long-lived
    loops."""
    ctx = context_of(request)
    caller = caller_of(request)
    await caller.refresh()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hgetall(ctx.keys.stats)
    pipe.hgetall(ctx.keys.loop_restarts)
    stats, restarts = await pipe.execute()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats, dict(caller.queue_lengths), len(caller.workers), restarts))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
