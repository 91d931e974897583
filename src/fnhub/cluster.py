"""What `GET /api/cluster`, `fnhub cluster` and the console's Cluster page show: every server,
beat and worker process with its facts (`fnhub.presence`; a worker's busy children and the
tasks they run), the beat leader, and the Redis and database everything shares.

Synchronous: the CLI calls it directly, the server in a thread (it also asks the database).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import redis
import redis.sentinel
from sqlalchemy import text

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.presence import members
from fnhub.redis_client import redacted_url, redis_url
from fnhub.redis_replies import as_hash, as_optional_bytes
from fnhub.store.db import MIGRATIONS_DIR, Database, script_heads
from fnhub.worker.presence import worker_entries


def gather(client: redis.Redis, keys: Keys, db: Database, settings: Settings) -> dict[str, Any]:
    """The cluster as Redis and the database say it now."""
    ttl = settings.presence_ttl_seconds
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.servers)
    pipe.hgetall(keys.beats)
    pipe.get(keys.beat_leader)
    servers, beats, leader = pipe.execute()
    workers, alive = worker_entries(client, keys)
    now = time.time()
    holder = as_optional_bytes(leader)
    return {
        "at": now,
        "presence_ttl_seconds": ttl,
        "servers": [m.as_dict() for m in members(as_hash(servers), ttl, now)],
        "beats": [m.as_dict() for m in members(as_hash(beats), ttl, now)],
        "beat_leader": holder.decode() if holder is not None else None,
        "workers": [with_running_for(m.as_dict(), now) for m in members(workers, ttl, now, alive)],
        "redis": redis_facts(client, settings),
        "database": database_facts(db),
    }


def with_running_for(worker: dict[str, Any], now: float) -> dict[str, Any]:
    """A worker's running tasks with how long each has run: until now, or until its last
    heartbeat when it is stale (a dead worker's tasks ran no further, as far as it can tell)."""
    until = worker["last_seen"] if worker["stale"] else now
    for task in worker.get("running") or ():
        task["running_for"] = round(max(0.0, until - float(task.get("since") or until)), 1)
    return worker


def redis_facts(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Where Redis is (the primary the Sentinels name, when through Sentinel), its role,
    version and memory."""
    pool = client.connection_pool
    sentinel = isinstance(pool, redis.sentinel.SentinelConnectionPool)
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        host, port = pool.get_master_address()
        address = f"{host}:{port}"
    else:
        kwargs = pool.connection_kwargs
        address = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    pipe = client.pipeline(transaction=False)
    for section in ("server", "memory", "replication", "clients"):
        pipe.info(section)
    info: dict[str, Any] = {}
    for part in pipe.execute():
        info.update(part)
    return {
        "url": redacted_url(redis_url(settings)),
        "sentinel": sentinel,
        "address": address,
        "role": info.get("role"),
        "version": info.get("redis_version"),
        "used_memory": info.get("used_memory"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": info.get("maxmemory") or None,
        "replicas": info.get("connected_slaves"),
        "clients": info.get("connected_clients"),
        "uptime_seconds": info.get("uptime_in_seconds"),
    }


def database_facts(db: Database) -> dict[str, Any]:
    """Which database (its URL without password), and whether its schema is the newest."""
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        revisions = sorted(str(r) for r in rows)
    heads = list(newest_revisions())
    return {
        "dialect": db.engine.dialect.name,
        "url": redacted_url(db.url),
        "server_version": ".".join(str(p) for p in db.engine.dialect.server_version_info or ()),
        "revision": revisions,
        "head": heads,
        "current": revisions == heads,
    }


@functools.cache
def newest_revisions() -> tuple[str, ...]:
    """The migration heads this fnhub ships (read once), without Alembic when its scripts say
    them plainly (`script_heads`: importing Alembic cost the first `GET /cluster` ~0.3 s)."""
    heads = script_heads()
    if heads is not None:
        return tuple(sorted(heads))
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))
