"""The `fnhub.cache` store seen from outside: list keys of a scope, read one, delete one."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Path, Query, Request

from fnhub import audit
from fnhub.redis_replies import as_hash, as_list, as_optional_bytes
from fnhub.server.access import actor
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import CacheEntry, CacheList, Deleted

router = APIRouter(tags=["cache"])
SCAN_CALLS_PER_PAGE = 100  # a page scans at most this many times 1000 keys of the database
Scope = Path(pattern=r"^[^:*?\[\]]{1,200}$", description="a script name, 'global', ...")


async def _entry(request: Request, scope: str, key: str, with_value: bool) -> dict[str, Any]:
    ctx = context_of(request)
    full = ctx.keys.cache(scope, key)
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.type(full)
    pipe.pttl(full)
    kind, pttl = await pipe.execute()
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "none":
        raise ApiError(404, "unknown_key", f"no cache key '{key}' in scope '{scope}'")
    entry: dict[str, Any] = {
        "scope": scope,
        "key": key,
        "type": kind,
        "ttl": pttl / 1000 if pttl >= 0 else None,
    }
    if with_value:
        if kind == "string":
            raw = as_optional_bytes(await ctx.redis.get(full))
            entry["value"] = _load(raw)
        elif kind == "hash":
            raw_hash = as_hash(await ctx.redis.hgetall(full))
            entry["value"] = {k.decode(errors="replace"): _load(v) for k, v in raw_hash.items()}
    return entry


def _load(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


@router.get("/cache/{scope}", response_model=CacheList, responses=responses(401))
async def list_cache(
    request: Request,
    scope: str = Scope,
    pattern: str = Query("*", max_length=200),
    cursor: int = Query(0, ge=0, le=2**63),
    count: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """Keys of one scope matching a glob `pattern`, a page at a time (Redis SCAN).

    One SCAN call looks at about `count` keys of the whole database, not of the scope, so on a
    Redis holding much else a single call often finds none: the page goes on scanning until it
    has `count` keys, the scan ends (cursor 0), or `SCAN_CALLS_PER_PAGE` calls were made."""
    ctx = context_of(request)
    prefix = ctx.keys.cache(scope, "")
    found: list[bytes] = []
    next_cursor = cursor
    for _ in range(SCAN_CALLS_PER_PAGE):
        next_cursor, batch = await ctx.redis.scan(
            next_cursor, match=prefix + pattern, count=max(count, 1000)
        )
        found.extend(as_list(batch))
        if not next_cursor or len(found) >= count:
            break
    items = []
    for full in found:
        key = full.decode(errors="replace")[len(prefix) :]
        try:
            items.append(await _entry(request, scope, key, with_value=False))
        except ApiError:  # expired between SCAN and TYPE
            continue
    return {"items": sorted(items, key=lambda e: e["key"]), "cursor": int(next_cursor)}


@router.get("/cache/{scope}/{key}", response_model=CacheEntry, responses=responses(401, 404))
async def get_cache(request: Request, key: str, scope: str = Scope) -> dict[str, Any]:
    return await _entry(request, scope, key, with_value=True)


@router.delete("/cache/{scope}/{key}", response_model=Deleted, responses=responses(401, 404))
async def delete_cache(request: Request, key: str, scope: str = Scope) -> dict[str, bool]:
    """Delete one key (audited with its type and TTL; the value is not kept)."""
    ctx = context_of(request)
    gone = await _entry(request, scope, key, with_value=False)
    if not await ctx.redis.delete(ctx.keys.cache(scope, key)):
        raise ApiError(404, "unknown_key", f"no cache key '{key}' in scope '{scope}'")
    before = {"type": gone["type"], "ttl": gone["ttl"]}
    resource = f"cache:{scope}/{key}"
    await asyncio.to_thread(audit.record, ctx.db, actor(request), "cache.delete", resource, before)
    return {"deleted": True}
