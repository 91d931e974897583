"""Live workers and queue lengths, as the server currently sees them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from fnhub.server.context import CallerDep
from fnhub.server.errors import responses
from fnhub.server.schemas import QueueOut, WorkerOut

router = APIRouter(tags=["workers"])


@router.get("/workers", response_model=list[WorkerOut], responses=responses(401))
async def list_workers(caller: CallerDep) -> list[dict[str, Any]]:
    await caller.refresh()
    return [{"id": wid, "info": info} for wid, info in sorted(caller.workers.items())]


@router.get("/queues", response_model=list[QueueOut], responses=responses(401))
async def list_queues(caller: CallerDep) -> list[dict[str, Any]]:
    await caller.refresh()
    return [
        {"name": q, "length": n, "workers": caller.queue_workers.get(q, 0)}
        for q, n in sorted(caller.queue_lengths.items())
    ]
