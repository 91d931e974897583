"""Notifications in Kafka (`websub_store: kafka`, connection in `websub_kafka`): one Kafka topic
with one partition (order) per hub topic; positions are offsets.

Tansu (and any broker whose ListOffsets(latest) is unreliable) cannot tell where a topic ends,
so the hub records the next offset it wrote itself in `<prefix>:websub:kafka:end` (hash topic →
offset, only ever raised). That is where new subscriptions start and how a deliverer knows there
is nothing to read without asking Kafka. Cursors stay in the shared Redis cursor hash.

Scripts cannot hold a Kafka producer cheaply, so `fnhub.websub.publish` writes to the
`<prefix>:websub:ingest` stream and hub servers forward it (consumer group, at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from typing import TYPE_CHECKING

import redis.asyncio as aredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from fnhub.config import Settings
from fnhub.connectors.kafka.settings import KafkaSettings
from fnhub.keys import Keys
from fnhub.lease import RENEWALS_PER_TTL, Lease
from fnhub.redis_replies import PendingEntry, as_optional_bytes, as_pending_streams, as_streams
from fnhub.websub.store import Notification, new_notification_event

if TYPE_CHECKING:
    from fnhub.websub.hub import Hub

log = logging.getLogger("fnhub.websub")

FETCH_SECONDS = 5.0
INGEST_GROUP = "forwarders"
INGEST_CONSUMER = "forwarder"  # the same name on every server: pending entries pass on

# raise the recorded end of a topic (offsets from concurrent writers may arrive out of order)
_RAISE_END = """
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PUBLISH', KEYS[2], ARGV[3])
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[3], 'published', 1) end
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5]) end
return 1
"""


class KafkaStoreError(RuntimeError):
    pass


def kafka_topic(prefix: str, topic_hash: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{prefix}.websub.{topic_hash}")[:249]


class KafkaStore:
    def __init__(self, settings: Settings, client: aredis.Redis, keys: Keys) -> None:
        if not settings.websub_kafka:
            raise KafkaStoreError(
                "websub_store is 'kafka' but websub_kafka has no connection "
                "(e.g. websub_kafka: {bootstrap_servers: 'host:9092'})"
            )
        self.kafka = KafkaSettings.model_validate(settings.websub_kafka)
        self.prefix = settings.key_prefix
        self.redis = client
        self.keys = keys
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self._created: set[str] = set()
        self._read_lock = asyncio.Lock()  # one consumer, repositioned per read
        self._raise_end = client.register_script(_RAISE_END)

    async def start(self) -> None:
        kw = self.kafka.client_kwargs()
        kw.setdefault("client_id", f"fnhub-websub-{socket.gethostname()}")
        self.producer = AIOKafkaProducer(acks="all", linger_ms=0, **kw)
        self.consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **kw
        )
        self.admin = AIOKafkaAdminClient(**kw)
        try:
            await self.producer.start()
            await self.consumer.start()
            await self.admin.start()
        except (KafkaError, OSError) as exc:
            await self.close()
            raise KafkaStoreError(f"websub Kafka store cannot connect: {exc}") from exc

    async def close(self) -> None:
        for part in (self.producer, self.consumer):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
        if self.admin is not None:
            with contextlib.suppress(Exception):
                await self.admin.close()

    def order(self, position: str) -> int:
        return int(position)

    async def _ensure(self, name: str) -> None:
        """One partition, created before the first write (auto-create would make several)."""
        if name in self._created:
            return
        assert self.admin is not None
        with contextlib.suppress(TopicAlreadyExistsError):
            result = await self.admin.create_topics([NewTopic(name, 1, 1)])
            for _topic, code, *_ in getattr(result, "topic_errors", ()):
                if code not in (0, 36):  # 36: already exists
                    raise KafkaStoreError(f"cannot create Kafka topic {name}: error {code}")
        self._created.add(name)

    async def append(
        self,
        topic_hash: str,
        content_type: str,
        body: bytes,
        at: float | None = None,
        count: bool = True,  # False when forwarding (the script's publish counted it)
        ingest_id: str = "",  # the forwarded ingest entry, recorded with the end
    ) -> str:
        assert self.producer is not None
        name = kafka_topic(self.prefix, topic_hash)
        await self._ensure(name)
        meta = await self.producer.send_and_wait(
            name,
            body,
            partition=0,
            headers=[
                ("ct", content_type.encode()),
                ("ts", repr(at if at is not None else time.time()).encode()),
            ],
        )
        await self._raise_end(
            keys=[
                self.keys.websub_kafka_end,
                self.keys.websub_events,
                self.keys.websub_metrics,
                f"{self.keys.websub_ingest}:forwarded",
            ],
            args=[
                topic_hash,
                meta.offset + 1,
                new_notification_event(topic_hash),
                "1" if count else "0",
                ingest_id,
            ],
        )
        return str(meta.offset)

    async def _end(self, topic_hash: str) -> int:
        raw = await self.redis.hget(self.keys.websub_kafka_end, topic_hash)
        return int(raw or 0)

    async def end(self, topic_hash: str) -> str:
        return str(await self._end(topic_hash) - 1)  # the last written offset: read after it

    async def since(self, topic_hash: str, when: float) -> str:
        """The end: brokers like Tansu cannot find an offset by time (ListOffsets, see the
        module), so a repaired cursor resumes here (`Hub.repair_cursor` logs where)."""
        return await self.end(topic_hash)

    async def read(self, topic_hash: str, after: str, count: int) -> list[Notification]:
        start = int(after) + 1
        end = await self._end(topic_hash)
        if start >= end:
            return []
        assert self.consumer is not None
        tp = TopicPartition(kafka_topic(self.prefix, topic_hash), 0)
        want = min(count, end - start)
        out: list[Notification] = []
        async with self._read_lock:
            if self.consumer.assignment() != {tp}:  # (re)assigning logs at INFO: not per read
                self.consumer.assign([tp])
            self.consumer.seek(tp, start)
            deadline = time.monotonic() + FETCH_SECONDS
            while len(out) < want and time.monotonic() < deadline:
                got = await self.consumer.getmany(tp, timeout_ms=500, max_records=want - len(out))
                for record in got.get(tp, []):
                    if record.offset < start + len(out):
                        continue  # the rest of a batch that began before our position
                    headers = dict(record.headers)
                    out.append(
                        Notification(
                            str(record.offset),
                            headers.get("ct", b"application/octet-stream").decode(),
                            record.value or b"",
                            float(headers.get("ts", b"0").decode()),
                        )
                    )
        return out[:want]

    async def stats(self, topic_hash: str) -> dict[str, object]:
        end = await self._end(topic_hash)
        return {"notifications": end, "stored": end, "last_published_at": None}

    async def backlog(self, topic_hash: str, after: str, limit: int = 10_000) -> int:
        return min(limit, max(0, await self._end(topic_hash) - 1 - int(after)))

    async def forward_ingest(self, hub: Hub) -> None:
        """Move what scripts published (`<prefix>:websub:ingest`) into Kafka, in order.

        One server forwards at a time (a lease), always as the same group consumer, so a new
        forwarder first re-sends what the previous one read but had not acked (at most a
        duplicate, never a gap or a reordering), then reads on.
        """
        stream = self.keys.websub_ingest
        ttl_ms = int(hub.settings.websub_owner_ttl * 1000)
        lease = Lease(self.redis, f"{stream}:forwarder", hub.server_id, ttl_ms / 1000)
        with contextlib.suppress(Exception):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        while True:
            try:
                if not await lease.hold():  # a dead forwarder's taken early: poll at its pace
                    await asyncio.sleep(ttl_ms / 6000)
                    continue
                pending = as_pending_streams(
                    await self.redis.xreadgroup(
                        INGEST_GROUP, INGEST_CONSUMER, {stream: "0"}, count=100
                    )
                )
                entries: list[PendingEntry] = list(pending[0][1]) if pending else []
                if not entries:
                    new = as_streams(
                        await self.redis.xreadgroup(
                            INGEST_GROUP,
                            INGEST_CONSUMER,
                            {stream: ">"},
                            count=100,
                            block=ttl_ms // RENEWALS_PER_TTL,  # renewed at its pace
                        )
                    )
                    entries = list(new[0][1]) if new else []
                done = as_optional_bytes(await self.redis.get(f"{stream}:forwarded"))
                for entry_id, fields in entries:
                    # a pending entry already in Kafka (the last forwarder died before acking)
                    if fields and (done is None or _sid(entry_id) > _sid(done)):
                        await self.append(
                            _url_hash(fields[b"topic"].decode()),
                            fields[b"ct"].decode(),
                            fields[b"body"],
                            float(fields[b"ts"]),
                            count=False,
                            ingest_id=entry_id.decode(),
                        )
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.xack(stream, INGEST_GROUP, entry_id)
                        pipe.xdel(stream, entry_id)
                        await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("websub ingest forwarding failed, retrying: %s", exc)
                await asyncio.sleep(1.0)


def _sid(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    millis, _, seq = text.partition("-")
    return int(millis), int(seq or 0)


def _url_hash(topic: str) -> str:
    from fnhub.websub.policy import url_hash

    return url_hash(topic)
