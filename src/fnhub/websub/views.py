"""What the management API and the CLI show and do, in one place (sync: DB + sync Redis).

Backlog and topic counters come from the store; hot counters (deliveries, failures) from Redis.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.exceptions import ResponseError

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_replies import as_entries, as_hash, as_optional_bytes
from fnhub.websub import failed_intents
from fnhub.websub.delivery import to_redeliver
from fnhub.websub.models import WebSubDeadLetter, WebSubSubscription
from fnhub.websub.registry import Registry

BACKLOG_LIMIT = 10_000
NOTHING_STORED = {"stored": 0, "stored_bytes": 0, "dropped": 0}


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class Views:
    def __init__(self, settings: Settings, registry: Registry, client: redis.Redis) -> None:
        self.settings = settings
        self.registry = registry
        self.redis = client
        self.keys = Keys(settings.key_prefix)

    def _kafka(self) -> bool:
        return self.settings.websub_store == "kafka"

    def topic_stats(self, topic_hash: str) -> dict[str, Any]:
        if self._kafka():
            end = self.redis.hget(self.keys.websub_kafka_end, topic_hash)
            return {"notifications": int(end or 0), "last_published_at": None, **NOTHING_STORED}
        try:
            info = self.redis.xinfo_stream(self.keys.websub_topic(topic_hash))
        except ResponseError:
            return {"notifications": 0, "last_published_at": None, **NOTHING_STORED}
        last = info["last-generated-id"]
        last = last.decode() if isinstance(last, bytes) else str(last)
        millis = int(last.split("-")[0])
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.websub_stored, topic_hash)
            pipe.hget(self.keys.websub_dropped, topic_hash)
            stored_bytes, dropped = pipe.execute()
        return {
            "notifications": int(info.get("entries-added", info["length"])),
            "last_published_at": millis / 1000 if millis else None,
            "stored": int(info["length"]),  # not yet delivered to every subscriber
            "stored_bytes": int(stored_bytes or 0),
            "dropped": int(dropped or 0),  # over the topic's cap before every subscriber had it
        }

    def backlog(self, sub: WebSubSubscription, cursor: str | None) -> int | None:
        if cursor is None:
            return None
        if self._kafka():
            end = self.redis.hget(self.keys.websub_kafka_end, sub.topic_hash)
            return max(0, int(end or 0) - 1 - int(cursor))  # cursor: last finished offset
        rows = self.redis.xrange(
            self.keys.websub_topic(sub.topic_hash), min=f"({cursor}", count=BACKLOG_LIMIT
        )
        return len(as_entries(rows))

    def topics(self, limit: int | None = None, after: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; with `limit`, the page after topic hash `after`."""
        listed = self.registry.topics()
        if after is not None:
            at = next((i for i, (t, _n) in enumerate(listed) if t.hash == after), None)
            listed = [] if at is None else listed[at + 1 :]
        if limit is not None:
            listed = listed[:limit]
        return [
            {
                "hash": t.hash,
                "url": t.url,
                "registered": t.registered,
                "subscribers": n,
                "created_at": t.created_at,
                **self.topic_stats(t.hash),
            }
            for t, n in listed
        ]

    def subscription(self, sub: WebSubSubscription) -> dict[str, Any]:
        stats = {
            k.decode(): v.decode()
            for k, v in as_hash(self.redis.hgetall(self.keys.websub_stats(sub.id))).items()
        }
        cursor = as_optional_bytes(self.redis.hget(self.keys.websub_cursors, sub.id))
        owner = as_optional_bytes(self.redis.get(self.keys.websub_owner(sub.id)))
        last = stats.get("last_delivery_at")
        return {
            "id": sub.id,
            "topic": sub.topic,
            "callback": sub.callback,
            "state": sub.state,
            "signed": sub.secret is not None,
            "lease_seconds": sub.lease_seconds,
            "lease_expires": sub.lease_expires,
            "created_at": sub.created_at,
            "verified_at": sub.verified_at,
            "ended_at": sub.ended_at,
            "delivered": int(stats.get("delivered", 0)),
            "failures": int(stats.get("failures", 0)),
            "failed_attempts": int(stats.get("failed_attempts", 0)),
            "dead_letters": int(stats.get("dead", 0)),
            "last_delivery_at": float(last) if last else None,
            "last_status": stats.get("last_status") or None,
            "last_error": stats.get("last_error") or None,
            "backlog": self.backlog(sub, cursor.decode() if cursor else None)
            if sub.state == "active"
            else None,
            "owner": owner.decode() if owner else None,
        }

    def subscriptions(
        self,
        state: str | None = None,
        topic: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        found = self.registry.subscriptions(state=state, topic=topic, limit=limit, after=after)
        return [self.subscription(s) for s in found]

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        sub = self.registry.subscription(subscription_id)
        if sub is None:
            raise NotFound(f"no subscription {subscription_id}")
        return self.subscription(sub)

    def remove_subscription(self, subscription_id: str) -> None:
        """Admin removal: the subscriber is not asked (like a lease that ended)."""
        if not self.registry.remove(subscription_id):
            raise NotFound(f"no subscription {subscription_id}")
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.keys.websub_cursors, subscription_id)
            pipe.delete(
                self.keys.websub_stats(subscription_id), self.keys.websub_redeliver(subscription_id)
            )
            pipe.publish(self.keys.websub_events, f"u:{subscription_id}")
            pipe.execute()

    @staticmethod
    def dead_letter(row: WebSubDeadLetter, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": row.id,
            "subscription_id": row.subscription_id,
            "topic": row.topic,
            "callback": row.callback,
            "position": row.entry_id,
            "content_type": row.content_type,
            "size": len(row.body),
            "published_at": row.published_at,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at,
        }
        if with_body:
            out["body"] = row.body.decode("utf-8", "replace")
        return out

    def dead_letters(
        self, subscription_id: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]:
        found = self.registry.dead_letters(subscription_id, limit, before)
        return [self.dead_letter(r) for r in found]

    def get_dead_letter(self, dead_id: int) -> dict[str, Any]:
        row = self.registry.dead_letter(dead_id)
        if row is None:
            raise NotFound(f"no dead letter {dead_id}")
        return self.dead_letter(row, with_body=True)

    def retry_dead_letter(self, dead_id: int) -> dict[str, Any]:
        """Put it back in front of the subscription's queue; its deliverer retries it next."""
        row = self.registry.dead_letter(dead_id)
        if row is None:
            raise NotFound(f"no dead letter {dead_id}")
        sub = self.registry.subscription(row.subscription_id)
        if sub is None or sub.state != "active" or sub.lease_expires <= time.time():
            raise Conflict("its subscription is no longer active; the notification cannot be sent")
        # push before deleting the row: a crash in between repeats, never loses
        self.redis.rpush(self.keys.websub_redeliver(sub.id), to_redeliver(row))
        self.registry.delete_dead_letter(dead_id)
        self.redis.publish(self.keys.websub_events, f"r:{sub.id}")
        return {"queued": True, "subscription_id": sub.id}

    def delete_dead_letter(self, dead_id: int) -> None:
        if not self.registry.delete_dead_letter(dead_id):
            raise NotFound(f"no dead letter {dead_id}")

    def failed_intents(self, limit: int = 50) -> list[dict[str, Any]]:
        """(Un)subscription requests given up after unexpected errors, newest first."""
        return failed_intents.failed_intents(self.redis, self.keys, limit)

    def cluster_metrics(self) -> dict[str, Any]:
        counters = {
            k.decode(): int(v)
            for k, v in as_hash(self.redis.hgetall(self.keys.websub_metrics)).items()
        }
        servers = self.redis.zcard(self.keys.websub_servers)
        stored = int(self.redis.get(self.keys.websub_stored_total) or 0)
        active = len(self.registry.subscriptions(state="active"))
        return {
            "servers": servers,
            "active_subscriptions": active,
            "stored_bytes": stored,
            "storage_max_bytes": self.settings.websub_storage_max_bytes,
            **counters,
        }
