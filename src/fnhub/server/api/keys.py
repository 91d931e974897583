"""API keys (admins only): create (the token is shown once), list, revoke."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Request

from fnhub.accounts.roles import Role
from fnhub.server.access import actor, needs
from fnhub.server.api.paging import ListPage, PageRequest, fetch_page, page_request
from fnhub.server.auth import create_key, key_state, revoke_key
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.models import ApiKey
from fnhub.server.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, Deleted
from fnhub.server.state import state_of

router = APIRouter(tags=["api keys"], dependencies=[Depends(needs(Role.ADMIN))])


@router.get("/keys", response_model=ListPage[ApiKeyOut], responses=responses(401, 403, 422))
async def get_keys(request: Request, page: PageRequest = Depends(page_request)) -> dict[str, Any]:
    """API keys by name (then id), a page at a time."""
    db = context_of(request).db
    rows, meta = await asyncio.to_thread(fetch_page, db, [ApiKey.name, ApiKey.id], page)
    return {"items": [key_state(r) for r in rows], **meta}


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
