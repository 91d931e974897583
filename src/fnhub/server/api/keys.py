"""Admin API keys: create (the token is shown once), list, revoke."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request

from fnhub.server.auth import create_key, list_keys, revoke_key
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, Deleted

router = APIRouter(tags=["api keys"])


def _out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


@router.get("/keys", response_model=list[ApiKeyOut], responses=responses(401))
async def get_keys(request: Request) -> list[dict[str, Any]]:
    return [_out(r) for r in await asyncio.to_thread(list_keys, request.app.state.ctx.db)]


@router.post(
    "/keys", status_code=201, response_model=ApiKeyCreated, responses=responses(400, 401, 422)
)
async def post_key(request: Request, body: ApiKeyIn) -> dict[str, Any]:
    expires = time.time() + body.expires_in if body.expires_in else None
    row, token = await asyncio.to_thread(create_key, request.app.state.ctx.db, body.name, expires)
    return {**_out(row), "token": token}


@router.delete("/keys/{key_id}", response_model=Deleted, responses=responses(401, 404))
async def delete_key(request: Request, key_id: str) -> dict[str, bool]:
    if not await asyncio.to_thread(revoke_key, request.app.state.ctx.db, key_id):
        raise ApiError(404, "unknown_key", f"no API key '{key_id}'")
    request.app.state.admin_auth.forget(key_id)
    return {"deleted": True}
