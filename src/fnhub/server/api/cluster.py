"""Every server, beat and worker of the cluster, and the Redis and database they share."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from fnhub.cluster import gather
from fnhub.server.context import context_of
from fnhub.server.errors import responses
from fnhub.server.schemas import ClusterOut
from fnhub.server.state import state_of

router = APIRouter(tags=["workers"])


@router.get("/cluster", response_model=ClusterOut, responses=responses(401))
async def cluster(request: Request) -> dict[str, Any]:
    """Servers (address, subscriptions, WebSub claims), beats (the leader), workers, each with
    when it was last seen; Redis (address, role, version, memory) and the database (schema)."""
    ctx = context_of(request)
    client = state_of(request).sync_redis
    return await asyncio.to_thread(gather, client, ctx.keys, ctx.db, ctx.settings)
