"""Which workers are alive, as everyone but the worker itself reads it.

A worker's supervisor heartbeats (`worker.supervisor`): its description in the `keys.workers`
hash, and `keys.worker_alive(id)` with a TTL. A worker that died leaves its description behind
for `presence_ttl_seconds` (live supervisors prune it after), so only entries whose heartbeat
key still exists count. The server's caller, `fnhub status`, `fnhub cluster` (`fnhub.cluster`,
which shows the lapsed ones as stale meanwhile) and `QueueClient` all read through here.
"""

from __future__ import annotations

import json
from typing import Any

import redis
import redis.asyncio as aredis

from fnhub.keys import Keys
from fnhub.redis_replies import as_hash

Workers = dict[str, dict[str, Any]]


def _alive(raw: dict[bytes, bytes], ids: list[str], flags: list[Any]) -> Workers:
    return {wid: json.loads(raw[wid.encode()]) for wid, up in zip(ids, flags, strict=True) if up}


def worker_entries(client: redis.Redis, keys: Keys) -> tuple[dict[bytes, bytes], dict[str, bool]]:
    """Every worker entry, and whether each one's heartbeat key still exists."""
    raw = as_hash(client.hgetall(keys.workers))
    ids = [w.decode() for w in raw]
    pipe = client.pipeline(transaction=False)
    for wid in ids:
        pipe.exists(keys.worker_alive(wid))
    flags = pipe.execute() if ids else []
    return raw, {wid: bool(up) for wid, up in zip(ids, flags, strict=True)}


def live_workers(client: redis.Redis, keys: Keys) -> Workers:
    """Live workers' descriptions (queues, processes, host...) by worker id."""
    raw, alive = worker_entries(client, keys)
    return _alive(raw, list(alive), list(alive.values()))


async def live_workers_async(client: aredis.Redis, keys: Keys) -> Workers:
    """`live_workers` on an asyncio client."""
    raw = as_hash(await client.hgetall(keys.workers))
    ids = [w.decode() for w in raw]
    pipe = client.pipeline(transaction=False)
    for wid in ids:
        pipe.exists(keys.worker_alive(wid))
    return _alive(raw, ids, await pipe.execute() if ids else [])
