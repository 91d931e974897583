"""Endpoints: publish a function at `/e/{name}` with its auth, throttling, cache and expiry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Path, Request

from fnhub import audit
from fnhub.secret_box import SecretBox, masked
from fnhub.server.access import actor
from fnhub.server.endpoint_spec import NAME_PATTERN, EndpointIn, EndpointOut
from fnhub.server.errors import ApiError, responses
from fnhub.server.models import Endpoint
from fnhub.server.schemas import Deleted

router = APIRouter(tags=["endpoints"])
Name = Path(pattern=NAME_PATTERN)


def _out(row: Endpoint) -> dict[str, Any]:
    return {
        "name": row.name,
        "url": f"/e/{row.name}",
        "function": row.function,
        "mode": row.mode,
        "description": row.description,
        "kwargs": row.kwargs,
        "auth": masked(row.auth),
        "throttle": row.throttle,
        "cache_result": row.cache_result,
        "timeout": row.timeout,
        "show_traceback": row.show_traceback,
        "show_logs": row.show_logs,
        "enabled": row.enabled,
        "expires_at": row.expires_at,
        "record_limit": row.record_limit,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _state(row: Endpoint, box: SecretBox) -> dict[str, Any]:
    """What the audit log compares: the settings, with secrets in clear (it masks them)."""
    state = _out(row)
    for name in ("url", "created_at", "updated_at"):
        del state[name]
    return {**state, "auth": audit.in_clear(box, row.auth)}


@router.get("/endpoints", response_model=list[EndpointOut], responses=responses(401))
async def list_endpoints(request: Request) -> list[dict[str, Any]]:
    def load() -> list[Endpoint]:
        with request.app.state.ctx.db.session() as session:
            return list(session.query(Endpoint).order_by(Endpoint.name))

    return [_out(r) for r in await asyncio.to_thread(load)]


@router.get("/endpoints/{name}", response_model=EndpointOut, responses=responses(401, 404))
async def get_endpoint(request: Request, name: str = Name) -> dict[str, Any]:
    def load() -> Endpoint | None:
        with request.app.state.ctx.db.session() as session:
            return session.get(Endpoint, name)

    row = await asyncio.to_thread(load)
    if row is None:
        raise ApiError(404, "unknown_endpoint", f"no endpoint '{name}'")
    return _out(row)


@router.put("/endpoints/{name}", response_model=EndpointOut, responses=responses(400, 401, 422))
async def put_endpoint(request: Request, body: EndpointIn, name: str = Name) -> dict[str, Any]:
    """Create or replace an endpoint (a secret sent back as ******** keeps the stored one)."""
    box = request.app.state.secret_box
    who = actor(request)

    def save() -> Endpoint:
        with request.app.state.ctx.db.session() as session, session.begin():
            row = session.get(Endpoint, name)
            now = time.time()
            previous = row.auth if row is not None else None
            before = _state(row, box) if row is not None else None
            if row is None:
                row = Endpoint(name=name, created_at=now)
                session.add(row)
            row.function = body.function
            row.mode = body.mode
            row.description = body.description
            row.kwargs = body.kwargs
            row.auth = box.seal(body.auth.model_dump(), previous)
            row.throttle = body.throttle.model_dump(exclude_none=True)
            row.cache_result = body.cache_result
            row.timeout = body.timeout
            row.show_traceback = body.show_traceback
            row.show_logs = body.show_logs
            row.enabled = body.enabled
            row.expires_at = body.expires_at
            row.record_limit = body.record_limit
            row.updated_at = now
            action = "endpoint.update" if before is not None else "endpoint.create"
            audit.record(session, who, action, f"endpoint:{name}", before, _state(row, box))
            return row

    row = await asyncio.to_thread(save)
    await request.app.state.endpoints.changed()
    return _out(row)


@router.delete("/endpoints/{name}", response_model=Deleted, responses=responses(401, 404))
async def delete_endpoint(request: Request, name: str = Name) -> dict[str, bool]:
    box = request.app.state.secret_box
    who = actor(request)

    def remove() -> bool:
        with request.app.state.ctx.db.session() as session, session.begin():
            row = session.get(Endpoint, name)
            if row is None:
                return False
            audit.record(session, who, "endpoint.delete", f"endpoint:{name}", _state(row, box))
            session.delete(row)
            return True

    if not await asyncio.to_thread(remove):
        raise ApiError(404, "unknown_endpoint", f"no endpoint '{name}'")
    await request.app.state.endpoints.changed()
    return {"deleted": True}
