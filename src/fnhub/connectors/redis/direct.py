"""A Redis Streams consumer for a worker child: the direct path of a subscription.

The child reads a batch (XREADGROUP COUNT), runs the function on each message, writes their
records, then acknowledges the batch with one XACK per stream. Synchronous, as the child is.
Entries of a dead consumer come back two ways: the supervisor names its dead child's consumer
(`inherit`: claimed at once by the replacement), and any consumer whose liveness key lapsed is
claimed within seconds, as the server's stream source does (`liveness`), so a whole worker's
death is covered too. A renewal thread keeps this consumer's key alive while a long function
runs, so nobody steals its entries meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.typing import KeyT, StreamIdT

from fnhub.connectors.base import ConnectorConfigError, Message, SourceStatus
from fnhub.connectors.redis.client import as_text, sync_client
from fnhub.connectors.redis.liveness import RENEW_SECONDS, SyncConsumerLiveness
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions
from fnhub.connectors.redis.source import entry_message, group_lag
from fnhub.redis_replies import PendingEntry, as_pending_streams, as_streams

log = logging.getLogger("fnhub.connectors.redis")

#: how often the reader looks for dead consumers' entries (their keys lapse after 3 s)
DEAD_CHECK_SECONDS = 1.0


class RedisDirectConsumer:
    """One consumer of the subscription's group, read and acknowledged a batch at a time."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        topics: list[str],
        group: str,
        consumer: str,
        options: RedisSourceOptions,
    ) -> None:
        if options.kind != "stream":
            raise ConnectorConfigError(
                "path: direct needs a Redis stream (options.kind: stream); pub/sub has no "
                "acknowledgement to hold back"
            )
        if not topics:
            raise ConnectorConfigError("topics: at least one stream is required")
        self.settings = settings
        self.topics = topics
        self.group = group
        self.consumer = consumer
        self.options = options
        self.status = SourceStatus()
        self._client: redis.Redis | None = None
        self._liveness: SyncConsumerLiveness | None = None
        self._backlog: list[Message] = []  # claimed (inherited, a dead consumer's, our own)
        self._dead_checked = 0.0
        self._renewer: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise ConnectionError("not open")
        return self._client

    def open(self) -> None:
        """Connect, make sure the group exists, announce ourselves and re-read our own pending
        entries (none for a new consumer name)."""
        self._client = client = sync_client(self.settings, retries=0)
        for key in self.topics:
            try:
                client.xgroup_create(key, self.group, id=self.options.start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._liveness = SyncConsumerLiveness(client, self.group, self.consumer)
        self._liveness.renew()
        if self._renewer is None:
            self._renewer = threading.Thread(
                target=self._renew, name="stream-liveness", daemon=True
            )
            self._renewer.start()
        for key in self.topics:
            reply = client.xreadgroup(self.group, self.consumer, {key: "0"}, count=100_000)
            for _stream, entries in as_pending_streams(reply):
                self._take(key, entries)
        self.status.connected()

    def _renew(self) -> None:
        """Keep our liveness key while the child lives, even while a function runs long."""
        client = sync_client(self.settings, retries=0)
        liveness = SyncConsumerLiveness(client, self.group, self.consumer)
        while not self._closed.wait(RENEW_SECONDS):
            try:
                liveness.renew()
            except (redis.RedisError, OSError) as exc:
                log.warning("stream consumer %s: liveness renewal failed: %s", self.consumer, exc)
        client.close()

    def inherit(self, consumers: Sequence[str]) -> None:
        """Claim every pending entry of these consumers, known dead (our supervisor saw their
        child die), without waiting for their keys to lapse."""
        client = self.client
        for dead in consumers:
            for key in self.topics:
                while True:
                    pending = client.xpending_range(
                        key, self.group, "-", "+", 1000, consumername=dead
                    )
                    if not pending:
                        break
                    ids: list[StreamIdT] = [p["message_id"] for p in pending]
                    claimed = client.xclaim(key, self.group, self.consumer, 0, ids)
                    self._take(key, claimed)
                    gone = {p["message_id"] for p in pending} - {e[0] for e in claimed}
                    if gone:  # deleted or trimmed while pending: nothing to handle
                        client.xack(key, self.group, *gone)
            for key in self.topics:
                client.xgroup_delconsumer(key, self.group, dead)

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to `count` messages: what was claimed first, then new entries (waiting up to
        `block_ms` for them)."""
        client = self.client
        now = time.monotonic()
        if now - self._dead_checked >= DEAD_CHECK_SECONDS:
            self._dead_checked = now
            self._claim_dead(count)
        if self._backlog:
            batch, self._backlog = self._backlog[:count], self._backlog[count:]
            return batch
        streams: dict[KeyT, StreamIdT] = {key: ">" for key in self.topics}
        reply = client.xreadgroup(
            self.group,
            self.consumer,
            streams,
            count=max(1, count // len(self.topics)),
            block=block_ms,
        )
        out: list[Message] = []
        for raw_stream, entries in as_streams(reply):
            key = as_text(raw_stream)
            out += [self._message(key, as_text(eid), fields, False) for eid, fields in entries]
        self.status.received += len(out)
        return out

    def _claim_dead(self, count: int) -> None:
        liveness = self._liveness
        assert liveness is not None
        for key in self.topics:
            for dead in liveness.dead_consumers(key):
                while len(self._backlog) < count:
                    entries = liveness.claim_from(key, dead, count)
                    if not entries:
                        break
                    log.info(
                        "stream consumer %s: claimed %d entries of %s from dead consumer %s",
                        self.consumer,
                        len(entries),
                        key,
                        dead,
                    )
                    self._take(key, entries)

    def _take(self, key: str, entries: Sequence[PendingEntry] | Any) -> None:
        """Claimed entries into the backlog (deleted ones are acknowledged: nothing to do)."""
        for raw_id, fields in entries:
            entry_id = as_text(raw_id)
            if not fields:
                self.client.xack(key, self.group, entry_id)
                continue
            self._backlog.append(self._message(key, entry_id, fields, True))
            self.status.received += 1

    def _message(self, key: str, entry_id: str, fields: Any, again: bool) -> Message:
        msg = entry_message(key, entry_id, fields, self.options.field, self.consumer)
        msg.redelivered = again
        return msg

    def ack(self, msgs: Sequence[Message]) -> None:
        """One XACK per stream for the batch, in one round trip."""
        by_key: dict[str, list[str]] = {}
        for msg in msgs:
            assert msg.message_id is not None
            by_key.setdefault(msg.topic, []).append(msg.message_id)
        if not by_key:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, ids in by_key.items():
            pipe.xack(key, self.group, *ids)
        pipe.execute()
        self.status.acked += len(msgs)

    def update_lag(self) -> None:
        """The group's pending and not-yet-delivered entries, for the status."""
        groups = [self.client.xinfo_groups(key) for key in self.topics]
        self.status.pending, self.status.lag = group_lag(groups, self.group)

    def close(self) -> None:
        """Stop renewing (the key lapses on its own) and disconnect; what was read and not
        acknowledged stays pending for the next holder."""
        self._closed.set()
        if self._client is not None:
            self._client.close()
            self._client = None
        self.status.disconnected("stopped")
