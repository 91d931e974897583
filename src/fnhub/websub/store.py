"""Where notifications live until every subscriber has them: the store interface and Redis Streams.

A position (`Notification.id`) is opaque to callers: a stream entry id here, a Kafka offset in
`kafka_store`. Each subscription keeps its own cursor (the last position it finished), so a
restart resumes exactly there and a new subscription starts at `end()` (no old backlog).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aredis
from redis.exceptions import ResponseError

from fnhub.keys import Keys


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


def entry_fields(content_type: str, body: bytes, at: float | None = None) -> dict[str, object]:
    return {"ct": content_type, "body": body, "ts": repr(at if at is not None else time.time())}


def parse_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Notification:
    return Notification(
        entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        fields[b"ct"].decode(),
        fields[b"body"],
        float(fields[b"ts"]),
    )


def new_notification_event(topic_hash: str) -> str:
    return f"n:{topic_hash}"


class RedisStore:
    """One stream per topic, trimmed to about `max_len` entries."""

    def __init__(self, client: aredis.Redis, keys: Keys, max_len: int) -> None:
        self.redis = client
        self.keys = keys
        self.max_len = max_len

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def order(self, position: str) -> tuple[int, int]:
        millis, _, seq = position.partition("-")
        return int(millis), int(seq or 0)

    async def append(self, topic_hash: str, content_type: str, body: bytes) -> str:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                self.keys.websub_topic(topic_hash),
                entry_fields(content_type, body),  # type: ignore[arg-type]
                maxlen=self.max_len,
                approximate=True,
            )
            pipe.publish(self.keys.websub_events, new_notification_event(topic_hash))
            pipe.hincrby(self.keys.websub_metrics, "published", 1)
            entry_id, *_ = await pipe.execute()
        return entry_id.decode()

    async def end(self, topic_hash: str) -> str:
        try:
            info = await self.redis.xinfo_stream(self.keys.websub_topic(topic_hash))
        except ResponseError:  # no stream yet: everything that comes is new
            return "0-0"
        last = info["last-generated-id"]
        return last.decode() if isinstance(last, bytes) else str(last)

    async def read(self, topic_hash: str, after: str, count: int) -> list[Notification]:
        rows = await self.redis.xrange(
            self.keys.websub_topic(topic_hash), min=f"({after}", count=count
        )
        return [parse_entry(entry_id, fields) for entry_id, fields in rows]

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
        return len(rows)
