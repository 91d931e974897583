"""Who is running: every server, beat and worker process describes itself in Redis.

Each process writes one JSON entry under its id into its role's hash (`keys.servers`,
`keys.beats`, `keys.workers`) every heartbeat: one HSET. The entry holds what every role has
(`process_facts`: host, pid, version, started), `beat` (when it was written), `every` (its
heartbeat period) and its role's own facts. Nobody needs a key per process or a SCAN:

- a clean stop removes its entry at once (`leave`);
- an entry that missed `STALE_BEATS` heartbeats is *stale* (the process is stuck, cut off or
  dead), shown as such until it is `presence_ttl_seconds` old; then it is *gone*: readers skip
  it and the role's live processes `prune` it, so a hash holds at most what one TTL left behind.

Workers write theirs the same way (`worker.supervisor`), plus their alive key, whose lapse also
releases a dead worker's tasks and makes its entry stale; live workers `prune` gone ones like
the other roles, so a worker killed with SIGKILL stays listed as stale, with when it was last
seen, until the TTL.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis

import fnhub
from fnhub.redis_replies import as_hash

#: heartbeats an entry may miss before it is shown as stale
STALE_BEATS = 3
#: at least this old before an entry is stale, whatever its period (a loaded machine's jitter)
MIN_STALE_SECONDS = 3.0


def process_facts(started: float | None = None) -> dict[str, Any]:
    """What every role's entry says of its process."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "version": fnhub.__version__,
        "started": time.time() if started is None else started,
    }


def entries(raw: dict[bytes, bytes]) -> list[tuple[str, dict[str, Any]]]:
    """A role hash's entries that parse, with a beat time (others are skipped)."""
    out = []
    for member_id, value in raw.items():
        try:
            entry = json.loads(value)
            entry["beat"] = float(entry["beat"])
        except (ValueError, KeyError, TypeError):
            continue
        out.append((member_id.decode(), entry))
    return out


def stale_after(entry: dict[str, Any]) -> float:
    """Seconds without a heartbeat after which this entry is stale."""
    try:
        every = float(entry.get("every") or 1.0)
    except (TypeError, ValueError):
        every = 1.0
    return max(STALE_BEATS * every, MIN_STALE_SECONDS)


def gone(entry: dict[str, Any], ttl: float, now: float) -> bool:
    return bool(now - entry["beat"] > ttl)


def gone_ids(raw: dict[bytes, bytes], ttl: float, now: float) -> list[str]:
    """The entries of a role hash to delete: gone, and stale too (a TTL shorter than three
    heartbeats must not delete a live process's entry between two of them)."""
    return [mid for mid, e in entries(raw) if gone(e, max(ttl, stale_after(e)), now)]


def prune(client: redis.Redis, key: str, ttl: float) -> None:
    """Delete a role hash's gone entries (the worker's supervisor, once per TTL)."""
    old = gone_ids(as_hash(client.hgetall(key)), ttl, time.time())
    if old:
        client.hdel(key, *old)


class Announcer:
    """One process's entry in its role's hash, for asyncio processes (server, beat)."""

    def __init__(
        self, client: aredis.Redis, key: str, member_id: str, every: float, ttl: float
    ) -> None:
        self.client = client
        self.key = key
        self.member_id = member_id
        self.every = every
        self.ttl = ttl
        self.facts = process_facts()
        self._pruned = 0.0

    async def beat(self, facts: dict[str, Any]) -> None:
        """Write the entry (one HSET); once per TTL, also drop the entries of dead processes."""
        now = time.time()
        entry = {**self.facts, **facts, "beat": now, "every": self.every}
        await self.client.hset(self.key, self.member_id, json.dumps(entry))
        if now - self._pruned >= self.ttl:
            self._pruned = now
            await self.prune(now)

    async def prune(self, now: float) -> None:
        old = gone_ids(as_hash(await self.client.hgetall(self.key)), self.ttl, now)
        if old:
            await self.client.hdel(self.key, *old)

    async def leave(self) -> None:
        """At a clean stop: this process no longer runs (never raises: Redis may be away)."""
        with contextlib.suppress(redis.RedisError, OSError):
            await self.client.hdel(self.key, self.member_id)


@dataclass
class Member:
    """One process as readers see it: its entry, how long ago it beat, whether that is stale."""

    id: str
    entry: dict[str, Any]
    age: float
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.entry,
            "id": self.id,
            "last_seen": self.entry["beat"],
            "age": round(self.age, 3),
            "stale": self.stale,
        }


def members(
    raw: dict[bytes, bytes], ttl: float, now: float, alive: dict[str, bool] | None = None
) -> list[Member]:
    """A role's processes not gone, oldest first. `alive`: the workers' alive keys, which say
    stale when lapsed whatever the beat time says."""
    out = []
    for member_id, entry in entries(raw):
        if gone(entry, ttl, now):
            continue
        age = max(0.0, now - entry["beat"])
        stale = age > stale_after(entry)
        if alive is not None and not alive.get(member_id, False):
            stale = True
        out.append(Member(member_id, entry, age, stale))
    return sorted(out, key=lambda m: (float(m.entry.get("started") or 0), m.id))
