"""Dead letters: list and read them, replay them (a new task each), discard them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from fnhub import dead_letters
from fnhub.dead_letters import DeadFilter, DeadLetter
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import (
    DeadLetterCount,
    DeadLetterDetail,
    DeadLetterFilter,
    DeadLetterPage,
    Deleted,
    DiscardOut,
    ReplayOut,
)
from fnhub.server.state import state_of

router = APIRouter(tags=["dead letters"])


def _redis(request: Request) -> Any:
    return state_of(request).sync_redis


def _not_found(letter_id: str) -> ApiError:
    return ApiError(404, "unknown_dead_letter", f"no dead letter '{letter_id}'")


def _filter(body: DeadLetterFilter) -> DeadFilter:
    where = DeadFilter(
        function=body.function,
        since=body.since,
        until=body.until,
        q=body.q,
        ids=frozenset(body.ids or ()),
    )
    if where == DeadFilter() and not body.all:
        raise ApiError(
            422,
            "empty_filter",
            "give at least one of function, since, until, q, ids, or all: true for every "
            "dead letter",
        )
    return where


def _matching(request: Request, where: DeadFilter) -> list[DeadLetter]:
    ctx = context_of(request)
    return list(dead_letters.scan(_redis(request), ctx.keys, where))


async def _letter(request: Request, letter_id: str) -> DeadLetter:
    ctx = context_of(request)
    letter = await asyncio.to_thread(dead_letters.get, _redis(request), ctx.keys, letter_id)
    if letter is None:
        raise _not_found(letter_id)
    return letter


@router.get("/dead-letters", response_model=DeadLetterPage, responses=responses(401, 422))
async def list_dead_letters(
    request: Request,
    function: str | None = Query(None, max_length=256),
    since: float | None = Query(None, ge=0, le=1e11, description="died at or after (epoch s)"),
    until: float | None = Query(None, ge=0, le=1e11, description="died before (epoch s)"),
    q: str | None = Query(None, min_length=1, max_length=200, description="in reason or task id"),
    cursor: str | None = Query(None, max_length=48, description="`next_cursor` of the last page"),
    limit: int = Query(50, ge=1, le=dead_letters.MAX_LIMIT),
) -> dict[str, Any]:
    """Dead letters newest first (without kwargs)."""
    where = DeadFilter(function=function, since=since, until=until, q=q)
    try:
        letters, next_cursor = await asyncio.to_thread(
            dead_letters.list_page,
            _redis(request),
            context_of(request).keys,
            where,
            cursor=cursor,
            limit=limit,
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from exc
    return {"items": [letter.summary() for letter in letters], "next_cursor": next_cursor}


@router.get("/dead-letters/count", response_model=DeadLetterCount, responses=responses(401, 422))
async def count_dead_letters(
    request: Request,
    function: str | None = Query(None, max_length=256),
    since: float | None = Query(None, ge=0, le=1e11, description="died at or after (epoch s)"),
    until: float | None = Query(None, ge=0, le=1e11, description="died before (epoch s)"),
    q: str | None = Query(None, min_length=1, max_length=200, description="in reason or task id"),
) -> dict[str, int]:
    """How many dead letters match (what a bulk replay or discard with this filter would
    take, as of now): the console asks before it acts."""
    where = DeadFilter(function=function, since=since, until=until, q=q)

    def work() -> int:
        return sum(1 for _ in _matching(request, where))

    return {"count": await asyncio.to_thread(work)}


@router.get(
    "/dead-letters/{letter_id}", response_model=DeadLetterDetail, responses=responses(401, 404)
)
async def get_dead_letter(request: Request, letter_id: str) -> dict[str, Any]:
    """One dead letter, by its entry id or its task id, with the task's kwargs and meta."""
    return (await _letter(request, letter_id)).detail()


@router.post(
    "/dead-letters/{letter_id}/replay",
    response_model=ReplayOut,
    responses=responses(401, 404, 409),
)
async def replay_dead_letter(request: Request, letter_id: str) -> dict[str, Any]:
    """Run a dead letter again as a new task (attempt 1, `replay_of` the dead task); 409 when
    it cannot be (its function is gone, its kwargs no longer fit), and it stays."""
    letter = await _letter(request, letter_id)
    ctx = context_of(request)
    done = await asyncio.to_thread(
        dead_letters.replay, _redis(request), ctx.keys, ctx.settings, [letter]
    )
    if not done.done:
        reason = done.skipped[0]["reason"] if done.skipped else "unknown"
        if reason == dead_letters.GONE:
            raise _not_found(letter_id)
        raise ApiError(409, "cannot_replay", f"cannot replay '{letter_id}': {reason}")
    return {"replayed": done.done, "task_ids": done.task_ids, "skipped": done.skipped}


@router.post("/dead-letters/replay", response_model=ReplayOut, responses=responses(401, 422))
async def replay_dead_letters(request: Request, body: DeadLetterFilter) -> dict[str, Any]:
    """Replay every dead letter matching the filter; those that cannot be replayed stay and
    are listed in `skipped` with the reason."""
    where = _filter(body)
    ctx = context_of(request)

    def work() -> dead_letters.BulkResult:
        letters = _matching(request, where)
        return dead_letters.replay(_redis(request), ctx.keys, ctx.settings, letters)

    done = await asyncio.to_thread(work)
    return {"replayed": done.done, "task_ids": done.task_ids, "skipped": done.skipped}


@router.delete("/dead-letters/{letter_id}", response_model=Deleted, responses=responses(401, 404))
async def discard_dead_letter(request: Request, letter_id: str) -> dict[str, Any]:
    """Delete a dead letter for good."""
    letter = await _letter(request, letter_id)
    done = await asyncio.to_thread(
        dead_letters.discard, _redis(request), context_of(request).keys, [letter]
    )
    if not done.done:
        raise _not_found(letter_id)
    return {"deleted": True}


@router.post("/dead-letters/discard", response_model=DiscardOut, responses=responses(401, 422))
async def discard_dead_letters(request: Request, body: DeadLetterFilter) -> dict[str, Any]:
    """Delete every dead letter matching the filter."""
    where = _filter(body)
    ctx = context_of(request)

    def work() -> dead_letters.BulkResult:
        return dead_letters.discard(_redis(request), ctx.keys, _matching(request, where))

    done = await asyncio.to_thread(work)
    return {"discarded": done.done, "skipped": done.skipped}
