"""The one reader of the active scripts and the one of live workers, on the machine's Redis."""

from __future__ import annotations

import json

import redis

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.scripts.registry import read_active
from fnhub.worker.presence import live_workers


def _script(version: int) -> bytes:
    return json.dumps({"version": version, "hash": f"h{version}", "functions": []}).encode()


def test_the_active_scripts_are_read_again_only_when_their_revision_moved(
    settings: Settings,
) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.key_prefix)
    client.hset(keys.scripts, "a", _script(1))
    client.set(keys.scripts_revision, 1)
    first = read_active(client, keys)
    assert first.revision == 1 and first.scripts["a"].version == 1
    assert read_active(client, keys, first) is first  # revision unchanged: kept as is
    client.hset(keys.scripts, "a", _script(2))
    client.incr(keys.scripts_revision)
    second = read_active(client, keys, first)
    assert second.revision == 2 and second.scripts["a"].version == 2
    client.close()


def test_only_workers_whose_heartbeat_lives_count(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.key_prefix)
    client.hset(keys.workers, "up", json.dumps({"queues": ["sync"], "processes": 2}))
    client.hset(keys.workers, "gone", json.dumps({"queues": ["sync"], "processes": 2}))
    client.set(keys.worker_alive("up"), "1", ex=30)
    assert live_workers(client, keys) == {"up": {"queues": ["sync"], "processes": 2}}
    client.close()
