"""Where notifications live until every subscriber has them: the store interface and Redis Streams.

A position (`Notification.id`) is opaque to callers: a stream entry id here, a Kafka offset in
`kafka_store`. Each subscription keeps its own cursor (the last position it finished), so a
restart resumes exactly there and a new subscription starts at `end()` (no old backlog).

The Redis streams share their server with the task queue, so they are bounded: per topic by
count and bytes (the oldest entries are dropped and counted), in all by bytes (a publish that
does not fit is refused with `StorageFull`). Every entry records its body size (`sz`) so one Lua
call keeps the byte counts exact; `reclaim` removes what no subscription needs any more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aredis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_replies import as_entries
from fnhub.redis_wait import confirmer


@dataclass(slots=True)
class Notification:
    id: str
    content_type: str
    body: bytes
    published_at: float


class NotificationStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, topic_hash: str, content_type: str, body: bytes) -> str:
        """Store one notification and wake the deliverers; returns its position."""
        ...

    async def end(self, topic_hash: str) -> str:
        """The cursor of a subscription that should receive only what comes next."""
        ...

    async def since(self, topic_hash: str, when: float) -> str:
        """The cursor of a subscription that should receive what was published from `when`
        (a Unix time) on: a lost cursor's repair (`Hub.repair_cursor`)."""
        ...

    async def read(self, topic_hash: str, after: str, count: int) -> list[Notification]:
        """Up to `count` notifications after the cursor `after`, oldest first."""
        ...

    async def stats(self, topic_hash: str) -> dict[str, object]:
        """Notifications stored and the last publish time (for the topics view)."""
        ...

    async def backlog(self, topic_hash: str, after: str, limit: int = 10_000) -> int: ...

    def order(self, position: str) -> Any:
        """A sort key for positions of one topic (the fan-out window compares cursors)."""
        ...


RECLAIM_CALL_ENTRIES = 200
RECLAIM_CALL_BYTES = 4_000_000


class StorageFull(RuntimeError):
    """The hub's notification storage is at `websub_storage_max_bytes`: the publish is refused."""


def entry_fields(
    content_type: str, body: bytes, at: float | None = None
) -> dict[FieldT, EncodableT]:
    return {"ct": content_type, "body": body, "ts": repr(at if at is not None else time.time())}


_ENTRY_SIZE = """
local function entry_size(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'sz' then return tonumber(fields[i + 1]) end
  end
  return 0  -- written before sizes were recorded: never counted
end
"""

#: KEYS stream, stored (hash), stored total, dropped (hash), metrics;
#: ARGV topic hash, content type, body, ts, max entries, max topic bytes, max total bytes,
#: events channel, event. Returns {1, id, dropped} or {0, stored total} when refused.
APPEND_SCRIPT = (
    _ENTRY_SIZE
    + """
local size = string.len(ARGV[3])
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local max_total = tonumber(ARGV[7])
if max_total > 0 and total + size > max_total then
  redis.call('HINCRBY', KEYS[5], 'refused_storage_full', 1)
  return {0, total}
end
local id = redis.call('XADD', KEYS[1], '*',
  'ct', ARGV[2], 'body', ARGV[3], 'ts', ARGV[4], 'sz', size)
local stored = redis.call('HINCRBY', KEYS[2], ARGV[1], size)
local len = redis.call('XLEN', KEYS[1])
local max_len, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
local dropped, freed = 0, 0
local function over()
  return (max_len > 0 and len > max_len) or (max_bytes > 0 and stored - freed > max_bytes)
end
while len > 1 and over() do
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[1], first[1])
  freed = freed + entry_size(first[2])
  len = len - 1
  dropped = dropped + 1
end
if dropped > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], -freed)
  redis.call('HINCRBY', KEYS[4], ARGV[1], dropped)
  redis.call('HINCRBY', KEYS[5], 'dropped_over_cap', dropped)
end
redis.call('INCRBY', KEYS[3], size - freed)
redis.call('HINCRBY', KEYS[5], 'published', 1)
redis.call('PUBLISH', ARGV[8], ARGV[9])
return {1, id, dropped}
"""
)

#: KEYS stream, stored (hash), stored total, metrics; ARGV topic hash, last position to remove,
#: most entries, most bytes read. Returns {removed, 1 if more is left to remove}.
RECLAIM_SCRIPT = (
    _ENTRY_SIZE
    + """
local removed, freed, more = 0, 0, 1
local max_entries, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
while removed < max_entries and freed < max_bytes do
  local rows = redis.call('XRANGE', KEYS[1], '-', ARGV[2], 'COUNT', 10)
  if #rows == 0 then more = 0; break end
  for _, e in ipairs(rows) do
    redis.call('XDEL', KEYS[1], e[1])
    freed = freed + entry_size(e[2])
    removed = removed + 1
  end
end
if removed > 0 then
  redis.call('DECRBY', KEYS[3], freed)
  redis.call('HINCRBY', KEYS[4], 'reclaimed', removed)
end
-- not HINCRBY by -freed when it is 0: Lua's -0 reaches Redis as "-0", not an integer to it
local left = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if freed > 0 then left = redis.call('HINCRBY', KEYS[2], ARGV[1], -freed) end
if left <= 0 and redis.call('XLEN', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return {removed, more}
"""
)


def append_call(
    keys: Keys, settings: Settings, topic_hash: str, content_type: str, body: bytes
) -> tuple[list[str], list[EncodableT]]:
    """KEYS and ARGV of `APPEND_SCRIPT` (the hub's store and scripts' `publish` share it)."""
    return (
        [
            keys.websub_topic(topic_hash),
            keys.websub_stored,
            keys.websub_stored_total,
            keys.websub_dropped,
            keys.websub_metrics,
        ],
        [
            topic_hash,
            content_type,
            body,
            repr(time.time()),
            settings.websub_stream_max_len,
            settings.websub_topic_max_bytes,
            settings.websub_storage_max_bytes,
            keys.websub_events,
            new_notification_event(topic_hash),
        ],
    )


def appended(result: list[Any], settings: Settings) -> str:
    """The position `APPEND_SCRIPT` stored at, or `StorageFull`."""
    if int(result[0]) == 0:
        raise StorageFull(
            f"the hub's notification storage is full ({int(result[1])} of "
            f"{settings.websub_storage_max_bytes} bytes); try again later"
        )
    position = result[1]
    return position.decode() if isinstance(position, bytes) else str(position)


def parse_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Notification:
    return Notification(
        entry_id.decode(),
        fields[b"ct"].decode(),
        fields[b"body"],
        float(fields[b"ts"]),
    )


def new_notification_event(topic_hash: str) -> str:
    return f"n:{topic_hash}"


class RedisStore:
    """One stream per topic, capped per topic (entries, bytes) and in all (bytes)."""

    def __init__(self, client: aredis.Redis, keys: Keys, settings: Settings) -> None:
        self.redis = client
        self.keys = keys
        self.settings = settings
        self._append = client.register_script(APPEND_SCRIPT)
        self._reclaim = client.register_script(RECLAIM_SCRIPT)
        # behind Sentinel, a publish is answered 202 once a replica has it (`redis_wait`)
        self.confirm = confirmer(settings)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def order(self, position: str) -> tuple[int, int]:
        millis, _, seq = position.partition("-")
        return int(millis), int(seq or 0)

    async def append(self, topic_hash: str, content_type: str, body: bytes) -> str:
        keys, args = append_call(self.keys, self.settings, topic_hash, content_type, body)
        if self.confirm is None:
            return appended(await self._append(keys=keys, args=args), self.settings)
        pipe = self.redis.pipeline(transaction=True)
        await self._append(keys=keys, args=args, client=pipe)
        (result,) = await self.confirm.execute(self.redis, pipe)
        return appended(result, self.settings)

    async def reclaim(self, upto: dict[str, str]) -> int:
        """Remove every notification at or before `upto[topic hash]`; returns how many.

        One pipelined round of Lua calls for all topics, then more rounds only for topics with
        more to remove: each call reads at most `RECLAIM_CALL_*`, so none holds Redis long."""
        removed, todo = 0, dict(upto)
        while todo:
            async with self.redis.pipeline(transaction=False) as pipe:
                for topic_hash, position in todo.items():
                    await self._reclaim(
                        keys=[
                            self.keys.websub_topic(topic_hash),
                            self.keys.websub_stored,
                            self.keys.websub_stored_total,
                            self.keys.websub_metrics,
                        ],
                        args=[topic_hash, position, RECLAIM_CALL_ENTRIES, RECLAIM_CALL_BYTES],
                        client=pipe,
                    )
                results = await pipe.execute()
            removed += sum(int(n) for n, _ in results)
            todo = {t: p for (t, p), (_, more) in zip(todo.items(), results, strict=True) if more}
        return removed

    async def end(self, topic_hash: str) -> str:
        try:
            info = await self.redis.xinfo_stream(self.keys.websub_topic(topic_hash))
        except ResponseError:  # no stream yet: everything that comes is new
            return "0-0"
        last = info["last-generated-id"]
        return last.decode() if isinstance(last, bytes) else str(last)

    async def since(self, topic_hash: str, when: float) -> str:
        """The last entry before `when` (entry ids begin with the primary's clock in ms), or
        "0-0" when there is none: everything stored from `when` on comes after it."""
        rows = await self.redis.xrevrange(
            self.keys.websub_topic(topic_hash), max=f"({int(when * 1000)}-0", min="-", count=1
        )
        found = as_entries(rows)
        return found[0][0].decode() if found else "0-0"

    async def read(self, topic_hash: str, after: str, count: int) -> list[Notification]:
        rows = await self.redis.xrange(
            self.keys.websub_topic(topic_hash), min=f"({after}", count=count
        )
        return [parse_entry(entry_id, fields) for entry_id, fields in as_entries(rows)]

    async def stats(self, topic_hash: str) -> dict[str, object]:
        try:
            info = await self.redis.xinfo_stream(self.keys.websub_topic(topic_hash))
        except ResponseError:
            return {"notifications": 0, "stored": 0, "last_published_at": None}
        last = info["last-generated-id"]
        last = last.decode() if isinstance(last, bytes) else str(last)
        millis = int(last.split("-")[0])
        return {
            "notifications": int(info.get("entries-added", info["length"])),
            "stored": int(info["length"]),
            "last_published_at": millis / 1000 if millis else None,
        }

    async def backlog(self, topic_hash: str, after: str, limit: int = 10_000) -> int:
        rows = await self.redis.xrange(
            self.keys.websub_topic(topic_hash), min=f"({after}", count=limit
        )
        return len(as_entries(rows))
