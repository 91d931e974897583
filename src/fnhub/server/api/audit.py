"""The audit log (admins only): every change, newest first, a page at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from fnhub import audit
from fnhub.accounts.roles import Role
from fnhub.server.access import needs
from fnhub.server.context import context_of
from fnhub.server.errors import responses

router = APIRouter(tags=["audit"], dependencies=[Depends(needs(Role.ADMIN))])


class AuditEntryOut(BaseModel):
    id: int
    at: float
    actor: str = Field(description="user:<name>, key:<id>, cli, project or system")
    action: str = Field(description="e.g. script.publish, connector.update, user.sign_in")
    resource: str = Field(description="e.g. script:<name>, connector:<name>")
    before: Any = None
    after: Any = None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page; null: end")


@router.get("/audit", response_model=AuditPage, responses=responses(401, 403))
async def list_audit(
    request: Request,
    actor: str | None = Query(None, max_length=140),
    action: str | None = Query(None, max_length=64),
    resource: str | None = Query(None, max_length=512),
    since: float | None = Query(None, ge=0, le=1e11, description="at ≥ (epoch seconds)"),
    until: float | None = Query(None, ge=0, le=1e11, description="at < (epoch seconds)"),
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1, le=2**62, description="next_cursor of a page"),
) -> dict[str, Any]:
    """Changes newest first; filters match exactly."""
    items, next_cursor = await asyncio.to_thread(
        audit.page,
        context_of(request).db,
        actor=actor,
        action=action,
        resource=resource,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}
