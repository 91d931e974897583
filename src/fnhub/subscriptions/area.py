"""Subscriptions in the server: the management API and the background service that runs them."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from fnhub import audit, revisions
from fnhub.config import Settings
from fnhub.json_values import PortableObject
from fnhub.server.access import actor
from fnhub.server.api.paging import ListPage, PageRequest, fetch_page, page_request
from fnhub.server.context import ServerContext, context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import Deleted, Strict
from fnhub.store.db import Database
from fnhub.subscriptions.cycles import check_cycles
from fnhub.subscriptions.direct import check_direct
from fnhub.subscriptions.manager import SubscriptionManager, read_status
from fnhub.subscriptions.models import Subscription
from fnhub.subscriptions.spec import SpecError, parse_spec
from fnhub.subscriptions.stored import row_to_dict

router = APIRouter(tags=["subscriptions"])
Name = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Target(Strict):
    topic: str = Field(min_length=1, max_length=1024)
    connector: str | None = Field(None, max_length=128)
    qos: int = Field(1, ge=0, le=2)
    retain: bool = False
    kind: Literal["pubsub", "stream"] | None = None
    #: what else the target's broker takes when publishing (its connector type's
    #: `publish_options`), e.g. {"exchange": "audit"} for RabbitMQ
    options: PortableObject = Field(default_factory=dict)


class SubscriptionIn(Strict):
    connector: str = Field(min_length=1, max_length=128)
    topics: list[str] = Field(min_length=1, max_length=100)
    function: str | None = Field(None, max_length=256)
    sql: str | None = Field(None, max_length=20000)
    mode: Literal["single", "multiple"] = "single"
    window: int = Field(100, ge=1, le=65535)
    options: PortableObject = Field(default_factory=dict)
    publish: Target | None = None
    error_publish: Target | None = None
    queue: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    record: bool = True
    record_limit: int | None = Field(None, ge=0, le=1_000_000)
    enabled: bool = True
    path: Literal["queued", "direct"] = "queued"


class SubscriptionOut(BaseModel):
    name: str
    connector: str
    topics: list[str]
    function: str | None
    sql: str | None
    mode: str
    window: int
    options: dict[str, Any]
    publish: dict[str, Any] | None
    error_publish: dict[str, Any] | None
    queue: str | None
    record: bool
    record_limit: int | None
    enabled: bool
    path: str
    provisioned: bool


class StatusOut(BaseModel):
    name: str
    servers: list[dict[str, Any]]


def subscription_out(row: Subscription) -> dict[str, Any]:
    return {**row_to_dict(row), "provisioned": row.provisioned}


def save_subscription(
    db: Database, settings: Settings, name: str, data: dict[str, Any], *, actor: str, **flags: Any
) -> dict[str, Any]:
    """Validate against every other subscription (cycles) and store (audited); sync, run in a
    thread."""
    from fnhub.connections import load_connectors

    spec = parse_spec({"name": name, **data})
    connectors = load_connectors(db, settings)
    for label, connector in (
        ("connector", spec.connector),
        *[
            (f"{n}.connector", t.connector)
            for n, t in (("publish", spec.publish), ("error_publish", spec.error_publish))
            if t and t.connector
        ],
    ):
        if connector not in connectors:
            known = ", ".join(sorted(connectors)) or "none"
            raise SpecError(
                f"subscription {name!r}: {label}: no connector named {connector!r} (known: {known})"
            )
    if spec.path == "direct":
        check_direct(spec, connectors[spec.connector])
    with db.session() as session, session.begin():
        others = [
            parse_spec(row_to_dict(r))
            for r in session.execute(select(Subscription)).scalars()
            if r.name != name
        ]
        check_cycles([*others, spec], connectors)
        row = session.get(Subscription, name)
        before = subscription_out(row) if row is not None else None
        if row is None:
            row = Subscription(name=name, created_at=time.time())
            session.add(row)
        for field, value in data.items():
            setattr(row, field, value)
        for field, value in flags.items():
            setattr(row, field, value)
        row.updated_at = time.time()
        session.flush()
        action = "subscription.update" if before is not None else "subscription.create"
        audit.record(session, actor, action, f"subscription:{name}", before, subscription_out(row))
        return subscription_out(row)


def remove_subscription(db: Database, name: str, *, actor: str) -> bool:
    """Remove a subscription (audited); False when there is none of that name."""
    with db.session() as session, session.begin():
        row = session.get(Subscription, name)
        if row is None:
            return False
        audit.record(
            session, actor, "subscription.delete", f"subscription:{name}", subscription_out(row)
        )
        session.delete(row)
        return True


def bump(ctx: ServerContext) -> Any:
    return revisions.bump(ctx.redis, ctx.keys.subscriptions_revision)


@router.get(
    "/subscriptions", response_model=ListPage[SubscriptionOut], responses=responses(401, 422)
)
async def list_subscriptions(
    request: Request, page: PageRequest = Depends(page_request)
) -> dict[str, Any]:
    """Subscriptions by name, a page at a time."""
    db = context_of(request).db
    rows, meta = await asyncio.to_thread(fetch_page, db, [Subscription.name], page)
    return {"items": [subscription_out(r) for r in rows], **meta}


@router.get("/subscriptions/{name}", response_model=SubscriptionOut, responses=responses(401, 404))
async def get_subscription(request: Request, name: str = Name) -> dict[str, Any]:
    ctx = context_of(request)

    def load() -> dict[str, Any] | None:
        with ctx.db.session() as session:
            row = session.get(Subscription, name)
            return subscription_out(row) if row else None

    found = await asyncio.to_thread(load)
    if found is None:
        raise ApiError(404, "unknown_subscription", f"no subscription '{name}'")
    return found


@router.put(
    "/subscriptions/{name}", response_model=SubscriptionOut, responses=responses(400, 401, 422)
)
async def put_subscription(
    request: Request, body: SubscriptionIn, name: str = Name
) -> dict[str, Any]:
    """Create or replace a subscription; it takes effect on running servers within a second."""
    ctx = context_of(request)
    data = body.model_dump(mode="json")
    try:
        out = await asyncio.to_thread(
            save_subscription,
            ctx.db,
            ctx.settings,
            name,
            data,
            actor=actor(request),
            provisioned=False,
        )
    except SpecError as exc:
        raise ApiError(400, "invalid_subscription", str(exc)) from None
    await bump(ctx)
    return out


@router.delete("/subscriptions/{name}", response_model=Deleted, responses=responses(401, 404))
async def delete_subscription(request: Request, name: str = Name) -> dict[str, bool]:
    ctx = context_of(request)
    if not await asyncio.to_thread(remove_subscription, ctx.db, name, actor=actor(request)):
        raise ApiError(404, "unknown_subscription", f"no subscription '{name}'")
    await bump(ctx)
    return {"deleted": True}


@router.get("/subscriptions/{name}/status", response_model=StatusOut, responses=responses(401, 404))
async def subscription_status(request: Request, name: str = Name) -> dict[str, Any]:
    """Connected?, holder, last message per outcome, rate, in-flight, lag, drops, last error."""
    ctx = context_of(request)
    await get_subscription(request, name)
    return {"name": name, "servers": await read_status(ctx.redis, ctx.keys, name)}


async def service(ctx: ServerContext) -> None:
    manager = SubscriptionManager(ctx, ctx.caller)
    ctx.facts["subscriptions"] = manager.subscribed
    try:
        await manager.run()
    finally:
        ctx.facts.pop("subscriptions", None)
