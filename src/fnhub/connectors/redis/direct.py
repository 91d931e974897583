"""A Redis Streams consumer for a worker child: the direct path of a subscription.

The child reads a batch (XREADGROUP COUNT), runs the function on each message, writes their
records, then acknowledges the batch with one XACK per stream. Synchronous, as the child is.
Entries of a dead consumer come back two ways: the supervisor names its dead child's consumer
(`inherit`: claimed at once by the replacement), and any consumer whose liveness key lapsed is
claimed within seconds, as the server's stream source does (`liveness`), so a whole worker's
death is covered too; sooner when the dead consumer named its connections (`fnhub-child:
<consumer>`, `fnhub.holders`): once its key is stale (two 0.5 s renewals missed) and CLIENT LIST
shows none of its connections twice `CONFIRM_SECONDS` apart, its entries are claimed before the
key lapses. A renewal thread keeps this consumer's key alive while a long function runs, so
nobody steals its entries meanwhile; a stopped (SIGSTOP) or cut-off consumer keeps its
connections open on Redis's side and is claimed only once its key lapses.
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
from fnhub.connectors.redis.liveness import (
    ALIVE_TTL_MS,
    FAST_RENEW_SECONDS,
    LAPSED,
    SyncConsumerLiveness,
)
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions
from fnhub.connectors.redis.source import entry_message, group_lag
from fnhub.holders import Unconnected, connection_name
from fnhub.redis_replies import PendingEntry

log = logging.getLogger("fnhub.connectors.redis")

#: how often the reader looks for dead consumers' entries (their keys lapse after 3 s, and
#: are stale 1 s after their last renewal)
DEAD_CHECK_SECONDS = 1.0
#: a renewal that failed (a connection closed under it) is tried again this soon, so a live
#: consumer reconnects long before its key looks stale
RENEW_RETRY_SECONDS = 0.1
#: a stale consumer is dead once two CLIENT LISTs this far apart showed none of its
#: connections (a reconnection in flight is not a death); its second check comes this soon
CONFIRM_SECONDS = 0.25
#: the kind of this consumer's Redis connection names: a worker child's (`fnhub.holders`)
CONNECTION_KIND = "child"

#: XACK of a batch with its ids in one argument. KEYS: the stream; ARGV: the group, the ids
#: separated by spaces. A plain XACK costs redis-py a Python call per id to encode; this is
#: four arguments for the whole batch (Lua's unpack takes at most a few thousand at a time).
ACK_JOINED = """
local ids = {}
for id in string.gmatch(ARGV[2], '%S+') do ids[#ids + 1] = id end
local n = 0
for i = 1, #ids, 1000 do
  n = n + redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, i, math.min(i + 999, #ids)))
end
return n
"""


def _raw_reply(response: Any, **_options: Any) -> Any:
    """XREADGROUP's reply as Redis sent it: redis-py's own parsing builds a dict per entry,
    which the direct path would take apart again at once."""
    return response


def _stream_items(reply: Any) -> list[Any]:
    """[(stream, [(id, flat fields or None), ...]), ...] of a raw XREADGROUP reply (RESP2
    sends a list of pairs, RESP3 a map; None when the block timed out)."""
    if not reply:
        return []
    return list(reply.items()) if isinstance(reply, dict) else reply


def _fields(flat: list[bytes] | None) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}


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
        alive_ttl_ms: int = ALIVE_TTL_MS,
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
        self._field = options.field.encode()
        self._unsent: dict[str, list[str]] = {}  # acknowledged, sent with the next read
        self._unsent_count = 0
        self._ack_sha = ""
        self.status = SourceStatus()
        self._client: redis.Redis | None = None
        self._liveness: SyncConsumerLiveness | None = None
        self._backlog: list[Message] = []  # claimed (inherited, a dead consumer's, our own)
        self._dead_checked = 0.0
        self.dead_checks = 0  # passes looking for dead consumers
        self.alive_ttl_ms = alive_ttl_ms  # our key's TTL (tests make it long)
        self.named = False  # our connections carry our name (`connection_name`)
        self._unconnected = Unconnected(CONNECTION_KIND, consumer, CONFIRM_SECONDS)
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
        client.set_response_callback("XREADGROUP", _raw_reply)  # this client's own reads
        # loaded here, sent by its digest: a pipeline holding a Script object asks Redis
        # whether it is loaded on every execute, a round trip per batch (NOSCRIPT after a
        # Redis restart fails the call, and the reconnection that follows loads it again)
        self._ack_sha = str(client.script_load(ACK_JOINED))
        self.named = _name(client, connection_name(CONNECTION_KIND, self.consumer))
        for key in self.topics:
            try:
                client.xgroup_create(key, self.group, id=self.options.start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._liveness = self._liveness_on(client)
        self._liveness.renew()
        if self._renewer is None or self._closed.is_set():  # new, or closed to reconnect
            self._closed = threading.Event()
            self._renewer = threading.Thread(
                target=self._renew, args=(self._closed,), name="stream-liveness", daemon=True
            )
            self._renewer.start()
        for key in self.topics:
            reply = client.xreadgroup(self.group, self.consumer, {key: "0"}, count=100_000)
            for _stream, entries in _stream_items(reply):
                self._take(key, [(entry_id, _fields(flat)) for entry_id, flat in entries])
        self.status.connected()

    def _renew(self, closed: threading.Event) -> None:
        """Keep our liveness key while the child lives, even while a function runs long,
        until `closed` (each opening has its own: a reconnection starts a new renewer)."""
        client = sync_client(self.settings, retries=0)
        if self.named:
            client.connection_pool.connection_kwargs["client_name"] = connection_name(
                CONNECTION_KIND, self.consumer
            )
        liveness = self._liveness_on(client)
        wait = FAST_RENEW_SECONDS
        while not closed.wait(wait):
            try:
                liveness.renew()
                wait = FAST_RENEW_SECONDS
            except (redis.RedisError, OSError) as exc:
                if wait != RENEW_RETRY_SECONDS:  # once per outage, not every retry
                    log.warning(
                        "stream consumer %s: liveness renewal failed: %s", self.consumer, exc
                    )
                wait = RENEW_RETRY_SECONDS
        client.close()

    def _liveness_on(self, client: redis.Redis) -> SyncConsumerLiveness:
        return SyncConsumerLiveness(
            client, self.group, self.consumer, named=self.named, ttl_ms=self.alive_ttl_ms
        )

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
        every = CONFIRM_SECONDS if self._unconnected.confirming else DEAD_CHECK_SECONDS
        if now - self._dead_checked >= every:
            self._dead_checked = now
            self._claim_dead(count)
        if self._backlog:
            if self._unsent:
                self._send_acks(client.pipeline(transaction=False)).execute()
                self._sent()
            batch, self._backlog = self._backlog[:count], self._backlog[count:]
            return batch
        streams: dict[KeyT, StreamIdT] = {key: ">" for key in self.topics}
        pipe = self._send_acks(client.pipeline(transaction=False))
        pipe.xreadgroup(
            self.group,
            self.consumer,
            streams,
            count=max(1, count // len(self.topics)),
            block=block_ms,
        )
        reply = pipe.execute()[-1]
        self._sent()
        out: list[Message] = []
        field = self._field
        consumer = self.consumer
        for raw_stream, entries in _stream_items(reply):
            key = as_text(raw_stream)
            for raw_id, flat in entries:
                entry_id = raw_id.decode()
                if len(flat) == 2 and flat[0] == field:  # the usual entry: the payload alone
                    ms = int(entry_id.partition("-")[0])
                    out.append(Message(key, flat[1], 0, ms / 1000, None, {}, None, None, entry_id,
                                       consumer))  # fmt: skip
                else:
                    out.append(self._message(key, entry_id, _fields(flat), False))
        self.status.received += len(out)
        return out

    def _claim_dead(self, count: int) -> None:
        """Claim the entries of consumers whose key lapsed, and of those whose key is stale
        and who have no connection left (`holders.Unconnected`: a CLIENT LIST only then)."""
        liveness = self._liveness
        assert liveness is not None
        self.dead_checks += 1
        found = [(key, *liveness.dead_consumers(key)) for key in self.topics]
        stale = {name for _key, _lapsed, of_key in found for name in of_key}
        gone = self._unconnected.judge_sync(self.client, stale)
        for key, lapsed, of_key in found:
            dead = [(name, LAPSED) for name in lapsed]
            dead += [(name, below) for name, below in of_key.items() if name in gone]
            for name, below in dead:
                while len(self._backlog) < count:
                    entries = liveness.claim_from(key, name, count, below)
                    if not entries:
                        break
                    log.info(
                        "stream consumer %s: claimed %d entries of %s from dead consumer %s (%s)",
                        self.consumer,
                        len(entries),
                        key,
                        name,
                        "its key lapsed" if below == LAPSED else "its connections closed",
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
        """Acknowledge the batch with the next read, in its round trip: one XACK per stream
        (`ACK_JOINED`) ahead of the XREADGROUP. The child reads again as soon as it acked,
        so an acknowledgement waits no longer than that; one left unsent when the child dies
        only means its batch is handled again (at-least-once); `close` sends what is left."""
        unsent = self._unsent
        for msg in msgs:
            assert msg.message_id is not None
            unsent.setdefault(msg.topic, []).append(msg.message_id)
        self._unsent_count += len(msgs)

    def _send_acks(self, pipe: Any) -> Any:
        """Queue the acknowledgements not sent yet on `pipe` (kept until `_sent`: a failed
        round trip sends them again after the reconnection)."""
        for key, ids in self._unsent.items():
            pipe.evalsha(self._ack_sha, 1, key, self.group, " ".join(ids))
        return pipe

    def _sent(self) -> None:
        self.status.acked += self._unsent_count
        self._unsent, self._unsent_count = {}, 0

    def update_lag(self) -> None:
        """The group's pending and not-yet-delivered entries, for the status."""
        groups = [self.client.xinfo_groups(key) for key in self.topics]
        self.status.pending, self.status.lag = group_lag(groups, self.group)

    def close(self) -> None:
        """Stop renewing (the key lapses on its own) and disconnect; what was read and not
        acknowledged stays pending for the next holder."""
        self._closed.set()
        if self._client is not None and self._unsent:
            try:
                self._send_acks(self._client.pipeline(transaction=False)).execute()
                self._sent()
            except (redis.RedisError, OSError) as exc:  # handled again by their next holder
                log.warning("stream consumer %s: acknowledgement failed: %s", self.consumer, exc)
        if self._client is not None:
            self._client.close()
            self._client = None
        self.status.disconnected("stopped")


def _name(client: redis.Redis, name: str) -> bool:
    """Name `client`'s connections (this one now, every new one at connect); refused (an ACL
    without CLIENT SETNAME): left unnamed, and this consumer's entries wait for its key to
    lapse when it dies."""
    try:
        client.client_setname(name)
    except redis.ResponseError as exc:
        log.info("stream consumer connections left unnamed (%s)", exc)
        return False
    client.connection_pool.connection_kwargs["client_name"] = name
    return True
