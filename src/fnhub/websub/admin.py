"""Management API (mounted under /api/v1 behind `access.authorize`): topics, subscriptions, dead
letters, metrics, and a JSON publish for operators. Every change is audited (`_audited`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from fnhub import audit
from fnhub.server.access import actor
from fnhub.server.context import context_of
from fnhub.server.errors import responses
from fnhub.server.schemas import SQL_INT_MAX
from fnhub.websub.api import STORAGE_FULL_RETRY_SECONDS, HubError, current_hub
from fnhub.websub.content import ContentError, encode
from fnhub.websub.hub import Hub
from fnhub.websub.policy import PolicyError, check_url, url_hash
from fnhub.websub.store import StorageFull
from fnhub.websub.views import Conflict, NotFound, Views

router = APIRouter(prefix="/websub", tags=["websub"])
DeadId = Path(ge=1, le=SQL_INT_MAX, description="a dead letter's id")


class TopicIn(BaseModel):
    url: str = Field(description="topic URL to register (required when the hub is not open)")


class PublishIn(BaseModel):
    topic: str
    content: Any
    content_type: str | None = None


async def _hub(request: Request) -> Hub:
    try:
        return await current_hub(request)
    except HubError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _views(hub: Hub) -> Views:
    return hub.views


T = TypeVar("T")


async def _run(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a thread, its NotFound and Conflict as 404 and 409."""
    try:
        return await asyncio.to_thread(fn, *args)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


async def _audited(
    request: Request, action: str, resource: str, before: Any = None, after: Any = None
) -> None:
    db = context_of(request).db
    await asyncio.to_thread(audit.record, db, actor(request), action, resource, before, after)


Limit = Query(None, ge=1, le=1000, description="a page of at most this many (default: all)")


@router.get("/topics")
async def list_topics(
    request: Request,
    limit: int | None = Limit,
    after: str | None = Query(None, max_length=64, description="the last topic hash of a page"),
) -> list[dict[str, Any]]:
    """Topics oldest first (a page with `limit`, the next one `after` its last hash)."""
    return await _run((await _hub(request)).views.topics, limit, after)


@router.post("/topics", status_code=201)
async def register_topic(body: TopicIn, request: Request) -> dict[str, Any]:
    hub = await _hub(request)
    try:
        check_url(body.url, "url", hub.settings)
    except PolicyError as exc:
        raise HTTPException(400, str(exc)) from None
    old = await asyncio.to_thread(hub.registry.topic, body.url)
    row = await asyncio.to_thread(hub.registry.ensure_topic, body.url, registered=True)
    before = None if old is None else {"url": old.url, "registered": old.registered}
    after = {"url": row.url, "registered": row.registered}
    await _audited(request, "websub_topic.register", f"websub_topic:{row.hash}", before, after)
    return {"hash": row.hash, "url": row.url, "registered": row.registered}


@router.delete("/topics/{topic_hash}", status_code=204)
async def deregister_topic(topic_hash: str, request: Request) -> None:
    """New subscriptions and publishes are refused (closed hub); existing ones run out."""
    if not await asyncio.to_thread((await _hub(request)).registry.deregister_topic, topic_hash):
        raise HTTPException(404, f"no topic {topic_hash}")
    resource = f"websub_topic:{topic_hash}"
    await _audited(request, "websub_topic.deregister", resource, None, {"registered": False})


@router.get("/subscriptions")
async def list_subscriptions(
    request: Request,
    state: str | None = Query(None, max_length=32),
    topic: str | None = Query(None, max_length=4096),
    limit: int | None = Limit,
    after: str | None = Query(None, max_length=64, description="the last id of a page"),
) -> list[dict[str, Any]]:
    """Subscriptions oldest first (a page with `limit`, the next one `after` its last id)."""
    return await _run((await _hub(request)).views.subscriptions, state, topic, limit, after)


@router.get("/subscriptions/{subscription_id}")
async def get_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
    return await _run((await _hub(request)).views.get_subscription, subscription_id)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def remove_subscription(subscription_id: str, request: Request) -> None:
    hub = await _hub(request)
    sub = await asyncio.to_thread(hub.registry.subscription, subscription_id)
    await _run(hub.views.remove_subscription, subscription_id)
    before = None if sub is None else {"topic": sub.topic, "callback": sub.callback}
    resource = f"websub_subscription:{subscription_id}"
    await _audited(request, "websub_subscription.remove", resource, before)


@router.get("/dead-letters")
async def list_dead_letters(
    request: Request,
    subscription_id: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(
        None, ge=1, le=SQL_INT_MAX, description="the last id of the page before"
    ),
) -> list[dict[str, Any]]:
    """Dead letters newest first, a page at a time."""
    return await _run((await _hub(request)).views.dead_letters, subscription_id, limit, before)


@router.get("/dead-letters/{dead_id}")
async def get_dead_letter(request: Request, dead_id: int = DeadId) -> dict[str, Any]:
    return await _run((await _hub(request)).views.get_dead_letter, dead_id)


@router.post("/dead-letters/{dead_id}/retry", status_code=202, responses=responses(409))
async def retry_dead_letter(request: Request, dead_id: int = DeadId) -> dict[str, Any]:
    """Queue it again in front of its subscription's notifications."""
    queued = await _run((await _hub(request)).views.retry_dead_letter, dead_id)
    await _audited(
        request, "websub_dead_letter.retry", f"websub_dead_letter:{dead_id}", None, queued
    )
    return queued


@router.delete("/dead-letters/{dead_id}", status_code=204)
async def delete_dead_letter(request: Request, dead_id: int = DeadId) -> None:
    await _run((await _hub(request)).views.delete_dead_letter, dead_id)
    await _audited(request, "websub_dead_letter.delete", f"websub_dead_letter:{dead_id}")


@router.get("/failed-intents")
async def list_failed_intents(
    request: Request, limit: int = Query(50, ge=1, le=1000, description="how many, newest first")
) -> list[dict[str, Any]]:
    """(Un)subscription requests given up after unexpected verification errors, with the
    reason (the subscriber was not told; an existing subscription stays as it was)."""
    return await _run((await _hub(request)).views.failed_intents, limit)


@router.get("/metrics")
async def metrics(request: Request) -> dict[str, Any]:
    hub = await _hub(request)
    cluster = await _run(hub.views.cluster_metrics)
    return {
        "server": {
            **hub.metrics.snapshot(),
            "owned_subscriptions": len(hub.deliverers),
            "server_id": hub.server_id,
        },
        "cluster": cluster,
    }


@router.post("/publish", status_code=202)
async def publish(body: PublishIn, request: Request) -> dict[str, Any]:
    """Like a publish to `/websub/hub` by an admin: any topic, nothing stored without
    subscribers (`position` is then null), 503 when the storage is full."""
    hub = await _hub(request)
    try:
        check_url(body.topic, "topic", hub.settings)
        data, ctype = encode(body.content, body.content_type, hub.settings.websub_content_max_bytes)
    except (PolicyError, ContentError) as exc:
        raise HTTPException(400, str(exc)) from None
    out: dict[str, Any] = {"topic": body.topic, "position": None, "content_type": ctype}
    if not await hub.has_subscribers(url_hash(body.topic)):
        await hub.count_unsubscribed(1)
        out["subscribers"] = False
    else:
        try:
            out["position"] = await hub.publish(body.topic, ctype, data)
        except StorageFull as exc:
            raise HTTPException(
                503, str(exc), headers={"Retry-After": str(STORAGE_FULL_RETRY_SECONDS)}
            ) from None
        out["subscribers"] = True
    resource = f"websub_topic:{url_hash(body.topic)}"
    await _audited(request, "websub_topic.publish", resource, None, {**out, "size": len(data)})
    return out
