"""Endpoints: publish a function at `/e/{name}` with its auth, throttling, cache and expiry."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from fnhub.server import endpoint_store
from fnhub.server.access import actor
from fnhub.server.api.paging import ListPage, PageRequest, fetch_page, page_request
from fnhub.server.context import context_of
from fnhub.server.endpoint_spec import NAME_PATTERN, EndpointIn, EndpointOut
from fnhub.server.endpoint_store import endpoint_out
from fnhub.server.errors import ApiError, responses
from fnhub.server.models import Endpoint
from fnhub.server.schemas import Deleted
from fnhub.server.state import state_of

router = APIRouter(tags=["endpoints"])
Name = Path(pattern=NAME_PATTERN)


@router.get("/endpoints", response_model=ListPage[EndpointOut], responses=responses(401, 422))
async def list_endpoints(
    request: Request, page: PageRequest = Depends(page_request)
) -> dict[str, Any]:
    """Endpoints by name, a page at a time."""
    db = context_of(request).db
    rows, meta = await asyncio.to_thread(fetch_page, db, [Endpoint.name], page)
    return {"items": [endpoint_out(r) for r in rows], **meta}


@router.get("/endpoints/{name}", response_model=EndpointOut, responses=responses(401, 404))
async def get_endpoint(request: Request, name: str = Name) -> dict[str, Any]:
    def load() -> Endpoint | None:
        with context_of(request).db.session() as session:
            return session.get(Endpoint, name)

    row = await asyncio.to_thread(load)
    if row is None:
        raise ApiError(404, "unknown_endpoint", f"no endpoint '{name}'")
    return endpoint_out(row)


@router.put("/endpoints/{name}", response_model=EndpointOut, responses=responses(400, 401, 422))
async def put_endpoint(request: Request, body: EndpointIn, name: str = Name) -> dict[str, Any]:
    """Create or replace an endpoint (a secret sent back as ******** keeps the stored one)."""
    box = state_of(request).secret_box
    who = actor(request)

    def save() -> dict[str, Any]:
        with context_of(request).db.session() as session, session.begin():
            row, _change = endpoint_store.save_endpoint(session, box, name, body, actor=who)
            return endpoint_out(row)

    out = await asyncio.to_thread(save)
    await state_of(request).endpoints.changed()
    return out


@router.delete("/endpoints/{name}", response_model=Deleted, responses=responses(401, 404))
async def delete_endpoint(request: Request, name: str = Name) -> dict[str, bool]:
    box = state_of(request).secret_box
    who = actor(request)

    def remove() -> bool:
        with context_of(request).db.session() as session, session.begin():
            return endpoint_store.delete_endpoint(session, box, name, actor=who)

    if not await asyncio.to_thread(remove):
        raise ApiError(404, "unknown_endpoint", f"no endpoint '{name}'")
    await state_of(request).endpoints.changed()
    return {"deleted": True}
