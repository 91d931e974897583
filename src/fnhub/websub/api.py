"""The public hub endpoint `/websub/hub` (§5.1 subscribe/unsubscribe, §6 publish).

Bad requests get a 400 with a plain-text reason and change nothing. Accepted (un)subscriptions
are queued for verification and answered 202 before any callback is contacted (§5.1.2).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from fnhub.websub.content import ContentError, encode
from fnhub.websub.hub import Hub
from fnhub.websub.policy import (
    PolicyError,
    check_address,
    check_secret,
    check_url,
    grant_lease,
    url_hash,
)

public_router = APIRouter(tags=["websub"])

FORM = "application/x-www-form-urlencoded"
FORM_OVERHEAD = 16_384  # parameters around fat-ping content


class HubError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def current_hub(request: Request) -> Hub:
    """The hub of this server process (created by `area.service`, kept in `ctx.extras`)."""
    ctx = getattr(request.app.state, "ctx", None)
    hub = ctx.extras.get("websub") if ctx is not None else None
    if hub is None:
        raise HubError(503, "the WebSub hub is not running on this server")
    return hub


def _text(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status)


_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, **_TEXT}
    for status, description in (
        (202, "accepted: verification of intent follows, or published"),
        (400, "the request is refused; the text says why"),
        (413, "the body or the fetched content is too large"),
        (502, "the topic could not be fetched"),
    )
}
# 503: the hub is not running here (text), or Redis is unavailable (fnhub's JSON error)
_ANSWERS[503] = {
    "description": "unavailable",
    "content": {
        **_TEXT["content"],
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
    },
}


@public_router.get("/websub/hub", response_class=PlainTextResponse)
async def hub_info() -> PlainTextResponse:
    return _text(
        200,
        "fnhub WebSub hub (W3C WebSub). POST application/x-www-form-urlencoded with "
        "hub.mode=subscribe|unsubscribe (hub.callback, hub.topic) or hub.mode=publish (hub.url).",
    )


_FORM = {
    "type": "object",
    "properties": {
        "hub.mode": {"type": "string", "enum": ["subscribe", "unsubscribe", "publish"]},
        "hub.callback": {"type": "string"},
        "hub.topic": {"type": "string"},
        "hub.url": {"type": "string"},
        "hub.lease_seconds": {"type": "integer"},
        "hub.secret": {"type": "string"},
    },
    "required": ["hub.mode"],
}


@public_router.post(
    "/websub/hub",
    status_code=202,
    response_class=PlainTextResponse,
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {"content": {FORM: {"schema": _FORM}}, "required": True},
    },
)
async def hub_endpoint(request: Request) -> Response:
    try:
        hub = current_hub(request)
        limit = hub.settings.websub_content_max_bytes + FORM_OVERHEAD
        body = await _read_limited(request, limit)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == FORM:
            try:
                params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                raise HubError(400, "the request body is not UTF-8") from None
            raw_content = None
        else:  # a fat ping with the content as body and the hub parameters in the query
            params = parse_qsl(request.url.query, keep_blank_values=True)
            raw_content = body
        mode = _one(params, "hub.mode")
        if mode in ("subscribe", "unsubscribe"):
            if ctype != FORM:
                raise HubError(400, f"subscription requests must be {FORM}")
            await _subscription(hub, mode, params)
            return _text(202, f"{mode} request accepted; verification of intent follows")
        if mode == "publish":
            count = await _publish(hub, params, raw_content, request.headers.get("content-type"))
            return _text(202, f"published to {count} topic(s)")
        if not mode:
            raise HubError(400, "hub.mode is required")
        raise HubError(400, f"unsupported hub.mode {mode!r} (subscribe, unsubscribe, publish)")
    except HubError as exc:
        return _text(exc.status, str(exc))
    except (PolicyError, ContentError) as exc:
        return _text(400, str(exc))


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HubError(413, f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _one(params: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in params if k == name]
    return values[0] if values else None


async def _subscription(hub: Hub, mode: str, params: list[tuple[str, str]]) -> None:
    s = hub.settings
    callback = check_url(_one(params, "hub.callback") or "", "hub.callback", s)
    topic = check_url(_one(params, "hub.topic") or "", "hub.topic", s)
    lease, secret = 0, None
    if mode == "subscribe":  # on unsubscribe both are ignored (§5.1)
        lease = grant_lease(_one(params, "hub.lease_seconds"), s)
        secret = check_secret(_one(params, "hub.secret"))
    await check_address(callback, "hub.callback", s)
    intent = {
        "mode": mode,
        "topic": topic,
        "callback": callback,
        "lease": str(lease),
        "secret": hub.box.encrypt(secret) if secret else "",
    }
    await hub.redis.xadd(hub.keys.websub_intents, intent)  # type: ignore[arg-type]


async def _publish(
    hub: Hub, params: list[tuple[str, str]], raw: bytes | None, raw_type: str | None
) -> int:
    s = hub.settings
    topics = [v for k, v in params if k in ("hub.url", "hub.topic")]
    if not topics:
        raise HubError(400, "hub.url (or hub.topic) is required to publish")
    for topic in topics:
        check_url(topic, "hub.url", s)
        if not s.websub_open:
            row = await asyncio.to_thread(hub.registry.topic, topic)
            if row is None or not row.registered:
                raise HubError(400, f"topic {topic} is not registered on this hub")
    fat = _one(params, "hub.content")
    if raw:  # content in the body, parameters in the query string
        content = [(raw, raw_type or "application/octet-stream")] * len(topics)
    elif fat is not None:
        ctype = _one(params, "hub.content_type") or "text/plain; charset=utf-8"
        content = [encode(fat, ctype, s.websub_content_max_bytes)] * len(topics)
    else:
        content = [await fetch_topic(hub, t) for t in topics]
    for topic, (body, ctype) in zip(topics, content, strict=True):
        if len(body) > s.websub_content_max_bytes:
            raise HubError(413, f"content larger than {s.websub_content_max_bytes} bytes")
        if s.websub_open:
            await asyncio.to_thread(hub.registry.ensure_topic, topic)
        await hub.store.append(url_hash(topic), ctype, body)
    hub.metrics.counters["published"] += len(topics)
    return len(topics)


async def fetch_topic(hub: Hub, topic: str) -> tuple[bytes, str]:
    """GET the topic URL and keep its Content-Type (§7: distribute the topic's full content)."""
    s = hub.settings
    await check_address(topic, "hub.url", s)
    try:
        async with hub.http.stream("GET", topic, timeout=s.websub_delivery_timeout) as response:
            if not 200 <= response.status_code < 300:
                raise HubError(502, f"fetching {topic} answered HTTP {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > s.websub_content_max_bytes:
                    raise HubError(
                        413, f"{topic} is larger than {s.websub_content_max_bytes} bytes"
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise HubError(502, f"cannot fetch {topic}: {type(exc).__name__}: {exc}") from exc
    return b"".join(chunks), response.headers.get("content-type", "application/octet-stream")
