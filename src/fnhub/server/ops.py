"""Operations: liveness, readiness (Redis, database, workers) and Prometheus metrics.

Task counters and run-time histograms, per queue and per function (and queue-wait histograms and
failures by kind per function), are cluster-wide: workers add them to `keys.stats` in the same
atomic call that acknowledges each task, so any server's `/metrics` shows every worker's work.
Restarts of long-lived loops (`fnhub.supervised`) are cluster-wide the same way, and so are the
counts servers keep in memory and add to `keys.stats` once a second (`fnhub.ops_stats`: HTTP
requests here, the features' series through their `ServerParts.metrics`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from fnhub.queue import RUN_BUCKETS
from fnhub.server.access import authorize, session_cookie
from fnhub.server.auth import api_key_header, bearer
from fnhub.server.context import caller_of, context_of
from fnhub.server.metric_families import StatsView, counter, latency_histogram
from fnhub.server.render import json_response
from fnhub.server.state import state_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/healthz", response_model=Health)
async def healthz(response: Response) -> dict[str, str]:
    """The process answers; `X-Fnhub-Pid` says which one (`fnhub server --workers N`)."""
    response.headers["X-Fnhub-Pid"] = str(os.getpid())
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


def _histogram(
    name: str, documentation: str, label: str, view: StatsView, bucket_kind: str, sum_kind: str
) -> HistogramMetricFamily:
    """A histogram over `RUN_BUCKETS` from the `keys.stats` fields of one bucket and sum kind."""
    buckets: dict[str, dict[str, int]] = {}
    for (owner, bound), n in view.counts(bucket_kind, 2).items():
        buckets.setdefault(owner, {})[bound] = n
    seconds = view.seconds(sum_kind)
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
        view: StatsView,
        lengths: dict[str, int],
        workers: int,
        restarts: dict[bytes, bytes],
        features: list[Metric],
    ) -> None:
        self.view = view
        self.lengths = lengths
        self.workers = workers
        self.restarts = restarts
        self.features = features

    def collect(self) -> Any:
        view = self.view
        yield counter(
            "fnhub_tasks",
            "Finished tasks by queue and status",
            ["queue", "status"],
            view.counts("n", 2),
        )
        yield _histogram(
            "fnhub_task_run_seconds", "Run time of finished tasks", "queue", view, "b", "s"
        )
        yield counter(
            "fnhub_function_calls",
            "Finished tasks by function and final status",
            ["function", "status"],
            view.counts("fn", 2),
        )
        yield counter(
            "fnhub_function_failures",
            "Final outcomes other than success by function and kind: the platform's error type "
            "(TimeoutError, MemoryLimitExceeded, DeadLetter, TaskExpired, UnknownFunction, "
            "ResultTooLarge, ResultNotSerializable, ScriptLoadError, NodeDied, NodeUnavailable, "
            "ProcessExit) or user (an exception the function raised)",
            ["function", "kind"],
            view.counts("fk", 2),
        )
        yield _histogram(
            "fnhub_function_run_seconds",
            "Run time of finished tasks per function",
            "function",
            view,
            "fb",
            "fs",
        )
        yield _histogram(
            "fnhub_function_wait_seconds",
            "Time from trigger to the start of the final attempt, per function",
            "function",
            view,
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
        yield counter(
            "fnhub_http_requests",
            "HTTP requests by route template (unmatched: no route), method and status class",
            ["route", "method", "status"],
            view.counts("hr", 3),
        )
        yield latency_histogram(
            "fnhub_http_request_seconds",
            "HTTP request latency by route template, until the response ended",
            ["route"],
            view,
            "hl",
        )
        yield from self.features


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
    function with queue-wait histograms and failures by kind, queue lengths, live workers,
    restarts of long-lived loops, HTTP requests, and the features' series (subscriptions, cron,
    the WebSub hub)."""
    ctx = context_of(request)
    caller = caller_of(request)
    await caller.refresh()
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hgetall(ctx.keys.stats)
    pipe.hgetall(ctx.keys.loop_restarts)
    stats, restarts = await pipe.execute()
    view = StatsView(stats)
    features: list[Metric] = []
    for reader in state_of(request).metrics:
        try:  # one feature's reads failing (the database away) leaves the others' series
            features.extend(await reader(ctx, view))
        except Exception as exc:
            log.warning("/metrics: %s failed: %s", getattr(reader, "__module__", reader), exc)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Snapshot(view, dict(caller.queue_lengths), len(caller.workers), restarts, features)
    )
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
