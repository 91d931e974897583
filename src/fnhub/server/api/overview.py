"""The console's overview: one snapshot (`/overview`), the live feed of them (`/events`, SSE)
and per-function stats of the last hour (`/stats/functions`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from fnhub.server.context import caller_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.feed import EventStreamResponse
from fnhub.server.render import json_response
from fnhub.server.state import State, state_of

router = APIRouter(tags=["console"])


class MinutesAxis(BaseModel):
    start: int
    step: int
    count: int


class Totals(BaseModel):
    calls: int
    failures: int
    calls_per_minute: list[int]
    failures_per_minute: list[int]


class FunctionHour(BaseModel):
    function: str
    calls: int
    failures: int
    statuses: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class FunctionSeries(FunctionHour):
    minutes: MinutesAxis
    calls_per_minute: list[int]
    failures_per_minute: list[int]


class TopFunction(BaseModel):
    function: str
    calls: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    calls_per_minute: list[int]
    failures_per_minute: list[int]


class QueueState(BaseModel):
    name: str
    length: int
    workers: int


class TailRow(BaseModel):
    id: str
    function: str
    status: str
    origin: str
    origin_id: str
    queue: str
    trigger_time: float
    end_time: float | None
    run_ms: float | None
    error_type: str | None


class FeedState(BaseModel):
    tick: int
    producer_runs: int
    clients: int
    running: bool


class Snapshot(BaseModel):
    at: float
    server: str
    feed: FeedState
    workers: list[dict[str, Any]]
    queues: list[QueueState]
    minutes: MinutesAxis
    totals: Totals
    functions: list[TopFunction]
    subscriptions: list[dict[str, Any]]
    tail: list[TailRow]


@router.get("/overview", response_model=Snapshot, responses=responses(401))
async def get_overview(server: State) -> Response:
    """One snapshot of the cluster (the feed's newest when it runs, so a first paint costs
    nothing more)."""
    snapshot = await server.overview.snapshot(max_age=server.ctx.settings.console_feed_seconds)
    return json_response({**snapshot, "feed": server.feed.state()})


@router.get(
    "/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        401: {
            "description": "unauthorized",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        },
    },
)
async def events(server: State) -> EventStreamResponse:
    """Server-Sent Events: `event: snapshot` (an `/overview` snapshot) at once and every
    `console_feed_seconds`, a `: ping` comment every `console_heartbeat_seconds`; ends when the
    server shuts down (EventSource reconnects). One producer per server serves every client."""
    return EventStreamResponse(server.feed.stream(server.exiting))


@router.get("/stats/functions", response_model=list[FunctionHour], responses=responses(401))
async def function_stats(request: Request) -> Response:
    """Every function that ran in the last hour: calls, failures, statuses, run-time
    percentiles (ms, estimated from buckets)."""
    return json_response(await state_of(request).overview.function_hours())


@router.get("/stats/functions/{ref}", response_model=FunctionSeries, responses=responses(401, 404))
async def function_stats_one(request: Request, ref: str) -> Response:
    """One function's last hour, with calls and failures per minute."""
    [hour] = await state_of(request).overview.function_hours(ref)
    if not hour["calls"] and ref not in caller_of(request).active.functions:
        raise ApiError(404, "unknown_function", f"no function '{ref}' and no task of it this hour")
    return json_response(hour)
