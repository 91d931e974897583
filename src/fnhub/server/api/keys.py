"""API keys (admins only): create (the token is shown once), list, revoke."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Request

from fnhub.accounts.roles import Role
from fnhub.server.access import actor, needs
from fnhub.server.auth import create_key, key_state, list_keys, revoke_key
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, Deleted
from fnhub.server.state import state_of

router = APIRouter(tags=["api keys"], dependencies=[Depends(needs(Role.ADMIN))])


@router.get("/keys", response_model=list[ApiKeyOut], responses=responses(401, 403))
async def get_keys(request: Request) -> list[dict[str, Any]]:
    return [key_state(r) for r in await asyncio.to_thread(list_keys, context_of(request).db)]


@router.post(
    "/keys", status_code=201, response_model=ApiKeyCreated, responses=responses(400, 401, 403, 422)
)
async def post_key(request: Request, body: ApiKeyIn) -> dict[str, Any]:
    """A new key with a role (default admin, as keys were before roles existed)."""
    expires = time.time() + body.expires_in if body.expires_in else None
    db = context_of(request).db
    row, token = await asyncio.to_thread(
        create_key, db, body.name, expires, body.role, actor=actor(request)
    )
    return {**key_state(row), "token": token}


@router.delete("/keys/{key_id}", response_model=Deleted, responses=responses(401, 403, 404))
async def delete_key(request: Request, key_id: str) -> dict[str, bool]:
    db = context_of(request).db
    if not await asyncio.to_thread(revoke_key, db, key_id, actor=actor(request)):
        raise ApiError(404, "unknown_key", f"no API key '{key_id}'")
    state_of(request).admin_auth.forget(key_id)
    return {"deleted": True}
