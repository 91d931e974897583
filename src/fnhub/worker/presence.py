"""Which workers are alive, as everyone but the worker itself reads it.

A worker's supervisor heartbeats (`worker.supervisor`): its description in the `keys.workers`
hash, and `keys.worker_alive(id)` with a TTL. A worker that died leaves its description behind
for `presence_ttl_seconds` (live supervisors prune it after), so only entries whose heartbeat
key still exists count. The server's caller, `fnhub status`, `fnhub cluster` (`fnhub.cluster`,
which shows the lapsed ones as stale meanwhile) and `QueueClient` all read through here.

A supervisor's Redis connections also carry its name (`connection_name`), so that a worker
whose process died is seen dead before its key lapses: the kernel closed its connections, and
Redis lists none under its name (`holders.Unconnected`). A worker that is merely slow keeps its
connections; one cut off from Redis keeps them too (on Redis' side, until TCP gives up), and is
found dead by its key alone. To be looked at that soon, a worker renews its key
`RENEWALS_PER_BEAT` times a beat (SET PX alone) and says so in its description (`renew`): it is
stale once it missed `holders.STALE_RENEWALS` renewals (`stale_after_ms`), half a second with
the default beat, rather than once its description's beat is late.
"""

from __future__ import annotations

import json
from typing import Any

import redis
import redis.asyncio as aredis

from fnhub import holders
from fnhub.keys import Keys
from fnhub.redis_replies import as_hash

Workers = dict[str, dict[str, Any]]

#: the kind in a worker supervisor's Redis connection names (`holders.connection_name`)
CONNECTION_KIND = "worker"


#: a supervisor renews its heartbeat key this many times a beat (`renew` in its description),
#: and writes its description once a beat
RENEWALS_PER_BEAT = 4
#: a worker whose description names no renewal period (an older version renews its key once a
#: beat, with its description) is stale after this many of its beats
STALE_BEATS = 1.25


def renew_seconds(every: float) -> float:
    """How often a supervisor beating every `every` seconds renews its heartbeat key."""
    return every / RENEWALS_PER_BEAT


def stale_after_ms(info: dict[str, Any], every: float) -> float:
    """How old a worker's heartbeat key may get (its `ttl_ms` less its PTTL) before the worker
    is stale, from its description (`every`: the reader's beat, for a description without
    one): `holders.STALE_RENEWALS` of its renewals, or STALE_BEATS of its beats when it names
    no renewal period (an older version, whose key is renewed with each beat)."""
    renew = info.get("renew")
    if renew:
        return holders.STALE_RENEWALS * float(renew) * 1000
    return STALE_BEATS * float(info.get("every") or every) * 1000


def heartbeat_ttl_ms(every: float) -> int:
    """The TTL of a worker's heartbeat key, beating every `every` seconds: 3.5 beats, and at
    least 3 s."""
    return int(1000 * max(every * 3.5, 3.0))


def connection_name(worker_id: str) -> str:
    return holders.connection_name(CONNECTION_KIND, worker_id)


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


def supervisor_consumer(worker_id: str) -> str:
    """The consumer a supervisor claims released entries as (`queue.release_consumer`)."""
    return f"{worker_id}.supervisor"


def split_consumer(name: str) -> tuple[str, str, str]:
    """A consumer's (worker id, slot, pid): `<id>.<slot>.<pid>` for a child (`d<n>` slots for a
    direct child) or `<id>.supervisor`, the slot "supervisor" and no pid. A worker id holds
    its host name, which may have dots, so the name is split from the right."""
    if name.endswith(".supervisor"):
        return name[: -len(".supervisor")], "supervisor", ""
    parts = name.rsplit(".", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (name, "", "")
