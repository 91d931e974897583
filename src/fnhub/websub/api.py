"""The public hub endpoint `/websub/hub` (§5.1 subscribe/unsubscribe, §6 publish).

Bad requests get a 400 with a plain-text reason and change nothing. Accepted (un)subscriptions
are queued for verification and answered 202 before any callback is contacted (§5.1.2); behind
Redis Sentinel only once a replica has the intent (`fnhub.redis_wait`; 503 if none confirmed).
Publishing needs a credential unless the hub is open (`publishers`); both kinds of request are
rate-limited per client (429 with `Retry-After`); a topic without subscribers is neither fetched
nor stored; a publish the storage cannot take is refused with 503.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from redis.typing import EncodableT, FieldT

from fnhub.calling.errors import CallError
from fnhub.redis_wait import run_confirmed
from fnhub.server import throttle
from fnhub.server.auth import api_key_header, bearer
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError
from fnhub.websub.area import hub_of
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
from fnhub.websub.publishers import Unauthorized, publisher
from fnhub.websub.store import StorageFull

public_router = APIRouter(tags=["websub"])

FORM = "application/x-www-form-urlencoded"
FORM_OVERHEAD = 16_384  # parameters around fat-ping content


STORAGE_FULL_RETRY_SECONDS = 30


class HubError(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.headers = headers


async def current_hub(request: Request) -> Hub:
    """The hub of this server process (run by `area.service`)."""
    hub = await hub_of(context_of(request))
    if hub is None:
        raise HubError(503, "the WebSub hub is not running on this server")
    return hub


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status, headers=headers)


_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, **_TEXT}
    for status, description in (
        (202, "accepted: verification of intent follows, or published"),
        (400, "the request is refused; the text says why"),
        (401, "publishing needs a credential, or the one given is wrong"),
        (413, "the body or the fetched content is too large"),
        (429, "too many requests from this client (with Retry-After)"),
        (502, "the topic could not be fetched"),
    )
}
# 503: the hub is not running here or its storage is full (text), or Redis is unavailable
# (fnhub's JSON error)
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
async def hub_endpoint(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    x_api_key: str | None = Depends(api_key_header),
) -> Response:
    try:
        hub = await current_hub(request)
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
            per_minute = hub.settings.websub_subscribe_per_minute
            await _throttle(hub, f"subscribe:{client_address(request)}", per_minute)
            await _subscription(hub, mode, params)
            return _text(202, f"{mode} request accepted; verification of intent follows")
        if mode == "publish":
            token = credentials.credentials if credentials is not None else x_api_key
            who = await _publisher(request, hub, token)
            per_minute = hub.settings.websub_publish_per_minute
            await _throttle(hub, f"publish:{who or client_address(request)}", per_minute)
            stored, idle = await _publish(
                hub, params, raw_content, request.headers.get("content-type")
            )
            text = f"published to {stored} topic(s)"
            if idle:
                text += f"; {idle} topic(s) without subscribers: nothing fetched or stored"
            return _text(202, text)
        if not mode:
            raise HubError(400, "hub.mode is required")
        raise HubError(400, f"unsupported hub.mode {mode!r} (subscribe, unsubscribe, publish)")
    except HubError as exc:
        return _text(exc.status, str(exc), exc.headers)
    except (PolicyError, ContentError) as exc:
        return _text(400, str(exc))


def client_address(request: Request) -> str:
    """Who a request comes from, for rate limits (uvicorn applies `X-Forwarded-For` only from
    the proxies it trusts: 127.0.0.1 unless `FORWARDED_ALLOW_IPS` says otherwise)."""
    return request.client.host if request.client is not None else "unknown"


async def _throttle(hub: Hub, who: str, per_minute: int) -> None:
    """`fnhub.server.throttle`'s per-minute window, counted per client; 429 with Retry-After."""
    if per_minute <= 0:
        return
    try:
        await throttle.check(hub.redis, hub.keys, f"websub:{who}", {"minute": per_minute})
    except ApiError as exc:
        raise HubError(exc.status, exc.message, exc.headers) from None


async def _publisher(request: Request, hub: Hub, token: str | None) -> str | None:
    """The publisher's identity; 401 for a wrong credential, or for none on a closed hub."""
    challenge = {"WWW-Authenticate": "Bearer"}
    try:
        who = await publisher(request, hub.settings, token)
    except Unauthorized as exc:
        raise HubError(401, str(exc), challenge) from None
    if who is None and not hub.settings.websub_open:
        raise HubError(
            401,
            "publishing to this hub needs a credential (Authorization: Bearer <admin API key "
            "or publisher token>, or X-Api-Key)",
            challenge,
        )
    return who


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
    await check_address(callback, "hub.callback", hub.addresses, hub.resolver)
    intent: dict[FieldT, EncodableT] = {
        "mode": mode,
        "topic": topic,
        "callback": callback,
        "lease": str(lease),
        "secret": hub.box.encrypt(secret) if secret else "",
    }
    # answered 202: behind Sentinel once a replica has the intent (a failover cannot drop it)
    pipe = hub.redis.pipeline(transaction=False)
    pipe.xadd(hub.keys.websub_intents, intent)
    try:
        await run_confirmed(hub.settings, hub.redis, pipe, f"the {mode} request")
    except CallError as exc:
        raise _not_replicated(exc) from None


async def _publish(
    hub: Hub, params: list[tuple[str, str]], raw: bytes | None, raw_type: str | None
) -> tuple[int, int]:
    """Store the notification for every topic that has subscribers; returns (stored, without
    subscribers)."""
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
            hub.publish_cache.note_known(row.hash)  # `publish` need not look for it again
    fat = _one(params, "hub.content")
    given: tuple[bytes, str] | None = None
    if raw:  # content in the body, parameters in the query string
        given = (raw, raw_type or "application/octet-stream")
    elif fat is not None:
        ctype = _one(params, "hub.content_type") or "text/plain; charset=utf-8"
        given = encode(fat, ctype, s.websub_content_max_bytes)
    if given is not None and len(given[0]) > s.websub_content_max_bytes:
        raise HubError(413, f"content larger than {s.websub_content_max_bytes} bytes")
    wanted = [t for t in topics if await hub.has_subscribers(url_hash(t))]
    if len(wanted) < len(topics):
        await hub.count_unsubscribed(len(topics) - len(wanted))
    for topic in wanted:
        body, ctype = given if given is not None else await fetch_topic(hub, topic)
        if len(body) > s.websub_content_max_bytes:
            raise HubError(413, f"content larger than {s.websub_content_max_bytes} bytes")
        try:
            await hub.publish(topic, ctype, body)
        except StorageFull as exc:
            retry = {"Retry-After": str(STORAGE_FULL_RETRY_SECONDS)}
            raise HubError(503, str(exc), retry) from None
        except CallError as exc:
            raise _not_replicated(exc) from None
    return len(wanted), len(topics) - len(wanted)


def _not_replicated(exc: CallError) -> HubError:
    """No replica confirmed the write in time (`fnhub.redis_wait`): 503, try again shortly."""
    return HubError(503, str(exc), {"Retry-After": f"{exc.retry_after:g}"})


async def fetch_topic(hub: Hub, topic: str) -> tuple[bytes, str]:
    """GET the topic URL and keep its Content-Type (§7: distribute the topic's full content)."""
    s = hub.settings
    await check_address(topic, "hub.url", hub.addresses, hub.resolver)
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
