"""The Redis source: see the package docstring for how it reads and acknowledges."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError, ResponseError
from redis.typing import KeyT, StreamIdT

from fnhub.backoff import Backoff
from fnhub.connectors.base import (
    ConnectorConfigError,
    Done,
    Message,
    RateLimitedLog,
    ReadingSource,
    describe_error,
)
from fnhub.connectors.redis.client import as_text, async_client, where
from fnhub.connectors.redis.liveness import RENEW_SECONDS, ConsumerLiveness
from fnhub.connectors.redis.settings import (
    RedisSettings,
    RedisSourceOptions,
)
from fnhub.redis_replies import PendingEntry, as_pending_streams, as_streams
from fnhub.supervised import spawn

log = logging.getLogger("fnhub.connectors.redis")

GLOB_CHARS = set("*?[")


class _RedisSource(ReadingSource):
    """Shared run/stop skeleton: a reader task that reconnects with backoff, and a window."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        topics: list[str],
        window: int,
        client_id: str,
        options: RedisSourceOptions,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one channel or stream is required")
        self.settings = settings
        self.topics = topics
        self.client_id = client_id
        self.options = options
        super().__init__(window, options.drain_timeout)

    async def _read_forever(self) -> None:
        backoff = Backoff(cap=self.options.reconnect_max)
        while not self._stopping:
            self.status.state = "connecting" if self.status.state == "idle" else "reconnecting"
            started = time.monotonic()
            try:
                await self._session()
            except (RedisError, OSError) as exc:
                text = f"redis {where(self.settings)}: {describe_error(exc)}"
                log.warning("redis source %s: %s", self.client_id, text)
                self.status.disconnected("reconnecting", text)
            except Exception:  # unexpected: close this session; the reader is restarted
                await self._disconnect()
                raise
            await self._disconnect()
            if time.monotonic() - started > 10:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def _session(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        """Close the reading connection after an error (state is kept for the next session)."""

    async def _close(self) -> None:
        await self._disconnect()


# --- pub/sub --------------------------------------------------------------------------------


class RedisPubSubSource(_RedisSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer: list[Message] = []
        self._head = 0
        self._window.on_release = self._pump
        self._client: aredis.Redis | None = None
        self._pubsub: Any = None
        self._drop_log = RateLimitedLog()
        self.channels = [t for t in self.topics if not GLOB_CHARS & set(t)]
        self.patterns = [t for t in self.topics if GLOB_CHARS & set(t)]

    async def _session(self) -> None:
        self._client = async_client(self.settings, blocking=True)
        self._pubsub = self._client.pubsub()
        if self.channels:
            await self._pubsub.subscribe(*self.channels)
        if self.patterns:
            await self._pubsub.psubscribe(*self.patterns)
        confirmations = len(self.channels) + len(self.patterns)
        async for m in self._pubsub.listen():
            kind = m["type"]
            if kind in (b"message", "message", b"pmessage", "pmessage"):
                self._offer(m)
            elif kind in (b"subscribe", "subscribe", b"psubscribe", "psubscribe"):
                confirmations -= 1
                if confirmations == 0:  # only now are publishes guaranteed to reach us
                    self.status.connected()
        raise ConnectionError("subscription ended")

    def _offer(self, m: dict[str, Any]) -> None:
        msg = Message(
            topic=as_text(m["channel"]),
            payload=m["data"],
            timestamp=time.time(),
            client_id=self.client_id,
        )
        if m.get("pattern") is not None:
            msg.headers["pattern"] = (
                m["pattern"] if isinstance(m["pattern"], bytes) else m["pattern"].encode()
            )
        queued = len(self._buffer) - self._head
        if queued == 0 and self._window.free > 0:
            self._window.spawn(msg, self._done)
        elif queued < self.options.buffer:
            self._buffer.append(msg)
        else:
            self.status.dropped += 1
            self._drop_log.warning(
                "redis pubsub source %s: buffer full (%d), newest message dropped (total %d)",
                self.client_id,
                self.options.buffer,
                self.status.dropped,
            )

    def _pump(self) -> None:
        while self._head < len(self._buffer) and self._window.free > 0 and not self._stopping:
            msg = self._buffer[self._head]
            self._head += 1
            self._window.spawn(msg, self._done)
        if self._head > 1024 and self._head * 2 > len(self._buffer):
            del self._buffer[: self._head]
            self._head = 0

    def _done(self, _msg: Message, ok: bool) -> None:
        if ok:
            self.status.acked += 1

    async def _disconnect(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    async def _close(self) -> None:
        lost = len(self._buffer) - self._head
        if lost:  # buffered but never handed out: gone with the process, so count them
            self.status.dropped += lost
            log.warning(
                "redis pubsub source %s: %d buffered messages dropped at stop", self.client_id, lost
            )
        self._buffer.clear()
        self._head = 0
        await self._disconnect()


# --- streams --------------------------------------------------------------------------------


def entry_message(
    key: str, entry_id: str, fields: dict[Any, Any], field: str, client_id: str
) -> Message:
    """A stream entry as a message. The usual entry holds the payload field alone. Other
    fields become headers, and an entry without the payload field is handed over as a JSON
    object of its fields."""
    payload = fields.get(field.encode())
    headers: dict[str, bytes] = {}
    if payload is None or len(fields) != 1:
        headers = {as_text(k): v for k, v in fields.items() if as_text(k) != field}
        if payload is None:
            payload = json.dumps(
                {k: v.decode(errors="replace") for k, v in headers.items()}
            ).encode()
    return Message(
        topic=key,
        payload=payload,
        timestamp=int(entry_id.partition("-")[0]) / 1000,
        headers=headers,
        message_id=entry_id,
        client_id=client_id,
    )


def group_lag(groups_per_stream: list[Any], group: str) -> tuple[int, int | None]:
    """The group's pending entries and lag (entries not yet delivered to it) over its streams,
    from each stream's XINFO GROUPS; lag None where Redis cannot tell it."""
    lag = pending = 0
    known = True
    for groups in groups_per_stream:
        for g in groups:
            if as_text(g["name"]) == group:
                pending += g.get("pending") or 0
                if g.get("lag") is None:
                    known = False
                else:
                    lag += g["lag"]
    return pending, lag if known else None


class RedisStreamSource(_RedisSource):
    def __init__(self, *args: Any, group: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._window.size < len(self.topics):
            raise ConnectorConfigError(
                f"window: must be at least the number of streams ({len(self.topics)})"
            )
        self.group = group
        self._client: aredis.Redis | None = None
        self._inflight: set[tuple[str, str]] = set()  # spawned and not yet XACKed
        self._to_ack: dict[str, list[str]] = {}
        self._ack_wake = asyncio.Event()
        self._acker: asyncio.Task[None] | None = None
        self._maintainer: asyncio.Task[None] | None = None

    async def _session(self) -> None:
        self._client = client = async_client(self.settings, blocking=True)
        for key in self.topics:
            try:
                await client.xgroup_create(key, self.group, id=self.options.start, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        liveness = ConsumerLiveness(client, self.group, self.client_id)
        await liveness.renew()  # before re-reading our own entries, so nobody claims them
        self.status.connected()
        label = self.client_id
        self._acker = spawn("redis-stream-acks", lambda: self._ack_loop(client), label=label)
        self._maintainer = spawn(
            "redis-stream-upkeep", lambda: self._maintain(client, liveness), label=label
        )
        await self._read_own_pending(client)
        per_stream_keys: dict[KeyT, StreamIdT] = {key: ">" for key in self.topics}
        n = len(self.topics)
        while True:
            await self._window.wait_room(n=max(n, self._window.refill))
            count = self._window.free // n
            resp = await client.xreadgroup(
                self.group,
                self.client_id,
                per_stream_keys,
                count=count,
                block=self.options.block_ms,
            )
            for stream, entries in as_streams(resp):
                self._spawn_entries(as_text(stream), entries)

    async def _read_own_pending(self, client: aredis.Redis) -> None:
        """After a restart or reconnect, entries delivered to us but never acked come first."""
        for key in self.topics:
            last = "0"
            while True:
                await self._window.wait_room()
                pending = as_pending_streams(
                    await client.xreadgroup(
                        self.group, self.client_id, {key: last}, count=self._window.free
                    )
                )
                entries = pending[0][1] if pending else []
                if not entries:
                    break
                last = as_text(entries[-1][0])
                self._spawn_entries(key, entries)

    def _spawn_entries(self, key: str, entries: Sequence[PendingEntry]) -> None:
        inflight, done = self._inflight, self._done
        items: list[tuple[Message, Done]] = []
        for raw_id, fields in entries:
            entry_id = as_text(raw_id)
            ident = (key, entry_id)
            if ident in inflight:
                continue  # already being handled (re-read after reconnect, or claimed back)
            inflight.add(ident)
            if not fields:  # trimmed or deleted while pending: nothing to handle
                self._queue_ack(key, entry_id)
                continue
            items.append((self._message(key, entry_id, fields), done))
        self._window.spawn_many(items)

    def _message(self, key: str, entry_id: str, fields: dict[Any, Any]) -> Message:
        return entry_message(key, entry_id, fields, self.options.field, self.client_id)

    def _done(self, msg: Message, ok: bool) -> None:
        assert msg.message_id is not None
        if ok:
            self._queue_ack(msg.topic, msg.message_id)
        else:  # left pending: XAUTOCLAIM (here or elsewhere) retries it after claim_idle_ms
            self._inflight.discard((msg.topic, msg.message_id))

    def _queue_ack(self, key: str, entry_id: str) -> None:
        self._to_ack.setdefault(key, []).append(entry_id)
        self._ack_wake.set()

    async def _ack_loop(self, client: aredis.Redis) -> None:
        """XACK finished entries in batches: at most one round trip per `ack_interval_ms`, for
        all that finished meanwhile. A round trip costs the server about as much CPU as a
        hundred messages' own work, and results come back a few dozen at a time."""
        interval = self.options.ack_interval_ms / 1000
        while True:
            try:
                await self._flush_acks(client)  # first: acks left over from a lost connection
            except (RedisError, OSError) as exc:  # kept; the reader reconnects if it must
                log.warning("redis stream source %s: XACK failed: %s", self.client_id, exc)
                await asyncio.sleep(1.0)
                continue
            await self._ack_wake.wait()
            self._ack_wake.clear()
            if interval:
                await asyncio.sleep(interval)

    async def _flush_acks(self, client: aredis.Redis) -> None:
        batch, self._to_ack = self._to_ack, {}
        if not batch:
            return
        try:
            async with client.pipeline(transaction=False) as pipe:
                for key, ids in batch.items():
                    pipe.xack(key, self.group, *ids)
                await pipe.execute()
        except BaseException:
            for key, ids in batch.items():  # keep them for the next connection
                self._to_ack.setdefault(key, [])[:0] = ids
            raise
        for key, ids in batch.items():
            self.status.acked += len(ids)
            for entry_id in ids:
                self._inflight.discard((key, entry_id))

    async def _maintain(self, client: aredis.Redis, liveness: ConsumerLiveness) -> None:
        """Keep ourselves alive and take over dead consumers' entries (every second), keep our
        in-flight entries fresh and claim entries idle for `claim_idle_ms`, update lag."""
        period = min(max(self.options.claim_idle_ms / 3000, 0.05), 20.0)
        tick = min(period, RENEW_SECONDS)
        last_claim = -period
        loop = asyncio.get_running_loop()
        while True:
            try:
                await liveness.renew()
                await self._claim_from_dead(liveness)
                if loop.time() - last_claim >= period:
                    last_claim = loop.time()
                    await self._touch_inflight(client)
                    await self._claim(client)
                await self._update_lag(client)
            except (RedisError, OSError) as exc:  # the next tick tries again
                log.warning("redis stream source %s: upkeep failed: %s", self.client_id, exc)
            await asyncio.sleep(tick)

    async def _touch_inflight(self, client: aredis.Redis) -> None:
        by_key: dict[str, list[StreamIdT]] = {}
        for key, entry_id in self._inflight:
            by_key.setdefault(key, []).append(entry_id)
        for key, ids in by_key.items():
            for i in range(0, len(ids), 1000):
                await client.xclaim(
                    key, self.group, self.client_id, 0, ids[i : i + 1000], justid=True
                )

    async def _claim(self, client: aredis.Redis) -> None:
        for key in self.topics:
            start = "0-0"
            while self._window.free > 0 and not self._stopping:
                resp = await client.xautoclaim(
                    key,
                    self.group,
                    self.client_id,
                    self.options.claim_idle_ms,
                    start_id=start,
                    count=self._window.free,
                )
                start, entries = as_text(resp[0]), resp[1]
                entries = [(i, f) for i, f in entries if f is not None]
                if entries:
                    log.info(
                        "redis stream source %s: claimed %d idle entries of %s",
                        self.client_id,
                        len(entries),
                        key,
                    )
                    self._spawn_entries(key, entries)
                if start == "0-0":
                    break

    async def _claim_from_dead(self, liveness: ConsumerLiveness) -> None:
        for key in self.topics:
            if self._window.free <= 0 or self._stopping:
                return
            for dead in await liveness.dead_consumers(key):
                while self._window.free > 0 and not self._stopping:
                    entries = await liveness.claim_from(key, dead, self._window.free)
                    if not entries:
                        break
                    log.info(
                        "redis stream source %s: claimed %d entries of %s from dead consumer %s",
                        self.client_id,
                        len(entries),
                        key,
                        dead,
                    )
                    self._spawn_entries(key, entries)

    async def _update_lag(self, client: aredis.Redis) -> None:
        groups = [await client.xinfo_groups(key) for key in self.topics]
        self.status.pending, self.status.lag = group_lag(groups, self.group)

    async def _disconnect(self) -> None:
        for task in (self._maintainer, self._acker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._maintainer = self._acker = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    async def _close(self) -> None:
        await self._disconnect()
        if self._to_ack:
            client = async_client(self.settings)
            try:
                await self._flush_acks(client)
            except (RedisError, OSError) as exc:
                log.warning(
                    "redis stream source %s: final XACK failed (%s); entries stay "
                    "pending and will be handled again",
                    self.client_id,
                    exc,
                )
            finally:
                await client.aclose()
