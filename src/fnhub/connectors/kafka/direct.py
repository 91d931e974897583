"""A Kafka consumer for a worker child: the direct path of a subscription (`path: direct`).

The child is synchronous and blocks in the function for as long as it runs, while a Kafka
consumer must keep talking to the cluster (heartbeats of a group member, fetching ahead). So
the aiokafka consumer lives on an event loop of its own, on a thread of the child, and the
child's calls (`read`, `ack`) hop onto it; everything that tracks offsets runs on that loop, so
the rebalance listener and the child never race over it.

Offsets: `ack` commits, per partition, the lowest offset handed out and not yet settled (or
one past the last settled): what is committed was handled. What a child read and did not
settle is read again: by the same child after a rewind (its fetch position is moved back to
the first unsettled offset before the next read), by its successor (a killed child's
partitions are read again from the committed offset), or by the partition's next owner.

Who reads which partition:
- `single` mode (`assignment: manual`, its default, as the queued path's): the lease holder's
  children assign partitions to themselves, child `index` of `children` taking the partitions
  whose (topic digest + partition number) falls to it. No group join: a replacement child
  reads its partitions at once, from the committed offset, and the lease is the one-reader
  guarantee across workers. Partitions that appear later are picked up (metadata every 3 s).
- `multiple` mode (`assignment: lease`, its default, as the queued path's): every child
  (of every worker) reads its share of the partitions, each under a Redis lease
  (`sharing.PartitionShare`, `fnhub.shares`; the share loop runs on the consumer's loop with a
  Redis client of its own). A killed child's partitions are taken once their leases lapse
  (3 s); a partition leaving a child is paused and released once the batch in hand settled
  (its commit is made at the settling), at most `drain_timeout`. Records of a partition not
  held (by the child's clock) are not handed out, and its commits are not sent.
- `multiple` mode with `assignment: group`: every child is a member of the group. A killed
  child's partitions move after its session timed out (`session_timeout_ms`). When a
  rebalance takes partitions away, the listener waits (at most `drain_timeout`) for the batch
  in hand to settle, so its commit lands before the partitions go.

A message is marked `redelivered` when it may have been handled before: the first `count`
messages read from a partition after it was assigned (a dead child handled at most one batch
past the committed offset). The child then looks up the supervisor's note on it (a timeout or
memory kill is final; deaths are counted towards `max_attempts`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from fnhub.connectors.base import (
    ConnectorConfigError,
    DirectPlace,
    Message,
    SourceStatus,
    describe_error,
)
from fnhub.connectors.kafka.client import consumer_kwargs, where
from fnhub.connectors.kafka.convert import partition_messages
from fnhub.connectors.kafka.settings import KafkaSettings, KafkaSourceOptions
from fnhub.connectors.kafka.sharing import PartitionShare
from fnhub.shares import Shares
from fnhub.supervised import spawn

log = logging.getLogger("fnhub.connectors.kafka")

T = TypeVar("T")

#: with manual assignment, how often the topics' partitions are looked up (new ones are read)
FOLLOW_SECONDS = 3.0
#: ... and while none of the topics has a partition yet
EMPTY_FOLLOW_SECONDS = 0.5
#: a group member is never dropped for reading too seldom: a child reads again once its batch
#: is settled, and a child stuck in a function is killed by its supervisor at the deadline
#: (its session then ends), so aiokafka's poll-interval check could only drop live members
MAX_POLL_INTERVAL_MS = 86_400_000
#: the lag lookup (once a second, from the child's status thread) gives up after this long
LAG_TIMEOUT_SECONDS = 5.0
#: a newly assigned partition: the next read marks as many of its messages as it asks for
_FROM_NEXT_READ = -1
#: lease assignment: a read waits at most this long, so a change of the share applies soon
LEASE_READ_MS = 250


def owns(place: DirectPlace, topic: str, partition: int) -> bool:
    """Whether the child at `place` reads this partition under manual assignment: stable when
    partitions or topics are added (no partition moves between children)."""
    return (zlib.crc32(topic.encode()) + partition) % max(place.children, 1) == place.index


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: KafkaDirectConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the batch in hand settle (and commit) before its partitions go."""
        owner = self.owner
        if revoked and not owner._idle.is_set():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, owner._idle.wait, owner.options.drain_timeout)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner._assigned(assigned)


class KafkaDirectConsumer:
    """One worker child's Kafka consumer, read and committed a batch at a time."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: list[str],
        group: str,
        consumer: str,
        options: KafkaSourceOptions,
        place: DirectPlace,
        shares: Callable[[], Shares] | None = None,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one topic is required")
        assignment = options.assignment
        if "assignment" not in options.model_fields_set:  # as the queued path: `source_args`
            assignment = "manual" if place.mode == "single" else "lease"
        if assignment == "lease" and place.mode == "single":
            raise ConnectorConfigError(
                "assignment: lease shares the partitions among every reader: multiple mode's "
                "(single mode's holder reads them all: assignment: manual)"
            )
        if assignment == "manual" and place.mode != "single":
            raise ConnectorConfigError(
                "assignment: manual reads partitions without the group; in multiple mode every "
                "worker would read every message (use assignment: group, or mode: single)"
            )
        self.settings = settings
        self.topics = topics
        self.group_id = options.group_id or group
        self.client_id = settings.client_id or consumer
        self.options = options
        self.place = place
        self.manual = assignment in ("manual", "lease")
        self.lease = assignment == "lease"
        #: lease assignment: makes this child's `Shares` (on the consumer's loop thread)
        self._make_shares = shares
        self._share: PartitionShare | None = None
        self._share_task: asyncio.Task[None] | None = None
        self._applied = -1  # the share's changes applied to the consumer
        self.status = SourceStatus()
        self.status.lag_per_member = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._consumer: AIOKafkaConsumer | None = None
        #: per partition, the offsets handed out and not settled yet, in order (loop thread)
        self._handed: dict[TopicPartition, list[int]] = {}
        #: per newly assigned partition, how many of its next messages to mark redelivered
        self._suspect: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._followed_at = -FOLLOW_SECONDS
        #: set while no batch is in hand (a revocation waits for it)
        self._idle = threading.Event()
        self._idle.set()

    # -- the loop thread ----------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the consumer's loop and wait for it; Kafka errors as ConnectionError
        (the child reconnects with backoff, as for any broker)."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise ConnectionError("not open")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ConnectionError(
                f"kafka {where(self.settings)}: no answer in {timeout}s"
            ) from None
        except KafkaError as exc:
            raise ConnectionError(f"kafka {where(self.settings)}: {describe_error(exc)}") from exc

    @property
    def _request_seconds(self) -> float:
        return self.settings.request_timeout_ms / 1000 + 5

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise ConnectionError("not open")
        return self._consumer

    # -- the DirectConsumer interface -------------------------------------------------------
    def open(self) -> None:
        """Start the loop thread and the consumer: join the group, or assign this child's
        partitions. Reading starts at the group's committed offsets."""
        if self._loop is None:
            self._loop = loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name="kafka-direct", daemon=True
            )
            self._thread.start()
        self._call(self._start(), self._request_seconds)
        self.status.connected()

    async def _start(self) -> None:
        o = self.options
        self._consumer = consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            # how long the group waits for this member to rejoin: its revocation may first
            # wait for the batch in hand (`drain_timeout`)
            rebalance_timeout_ms=o.session_timeout_ms + int(o.drain_timeout * 1000),
            **consumer_kwargs(self.settings, self.options, self.client_id),
        )
        if not self.manual:
            consumer.subscribe(self.topics, listener=_Rebalance(self))
        if self.lease:
            if self._make_shares is None:
                raise ConnectorConfigError("assignment: lease needs fnhub's Redis (a worker's)")
            self._share = PartitionShare(
                self._make_shares(),
                f"direct {self.client_id}",
                self.status,
                drain_timeout=o.drain_timeout,
                settled=lambda tp: not self._handed.get(tp),
                commit=self._committed_already,
                forget=lambda tps: None,  # what is in hand settles; its commit is refused
            )
            self._applied = -1
        try:
            await consumer.start()
            if self.manual:
                await self._follow()
        except BaseException:
            self._consumer = self._share = None
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        if self._share is not None:
            self._share_task = spawn("kafka-direct-shares", self._share.run, label=self.client_id)

    async def _committed_already(self, tps: set[TopicPartition]) -> None:
        """A partition handed over: its last batch was committed when it was settled."""

    def inherit(self, consumers: Sequence[str]) -> None:
        """Nothing to claim: a dead child's uncommitted messages are read again from the
        committed offsets, by its replacement (manual assignment: the same partitions) or by
        the group's member that gets its partitions."""

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to `count` messages, waiting up to `block_ms` for them."""
        consumer = self._require()
        if self.manual:
            every = FOLLOW_SECONDS if consumer.assignment() else EMPTY_FOLLOW_SECONDS
            if time.monotonic() - self._followed_at >= every:
                self._call(self._follow(), self._request_seconds)
            if not self.lease and not consumer.assignment():  # no topic has partitions yet
                time.sleep(min(block_ms / 1000, EMPTY_FOLLOW_SECONDS))
                return []
        if self.lease:
            block_ms = min(block_ms, LEASE_READ_MS)
        msgs = self._call(self._fetch(count, block_ms), block_ms / 1000 + self._request_seconds)
        self.status.received += len(msgs)
        return msgs

    async def _fetch(self, count: int, block_ms: int) -> list[Message]:
        consumer = self._require()
        share = self._share
        if share is not None:
            if self._applied != share.changes:
                self._applied = share.changes
                self._gained(await share.apply(consumer, False))
            if not consumer.assignment():  # none of the partitions is ours yet
                await asyncio.sleep(block_ms / 1000)
                return []
        self._rewind(consumer)
        batch = await consumer.getmany(timeout_ms=block_ms, max_records=count)
        out: list[Message] = []
        client_id = self.client_id
        handed_all = self._handed  # after the wait: a rebalance in it replaces the dict
        for tp, records in batch.items():
            if share is not None and not share.ours(tp):
                continue  # handed over or lapsed since the fetch: its next reader has them
            msgs = partition_messages(tp.topic, tp.partition, records, client_id)
            handed = handed_all.get(tp)
            if handed is None:
                handed_all[tp] = [r.offset for r in records]
            else:
                handed.extend([r.offset for r in records])
            suspect = self._suspect.pop(tp, 0)
            if suspect:
                if suspect == _FROM_NEXT_READ:
                    suspect = count
                for msg in msgs[:suspect]:
                    msg.redelivered = True
                if suspect > len(msgs):
                    self._suspect[tp] = suspect - len(msgs)
            out.extend(msgs)
        if out:
            self._idle.clear()  # on the loop: a revocation from now on waits for the ack
        return out

    def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        """Messages handed out and never settled (the child stopped in the middle of a
        batch): read them again, from the first of each partition."""
        if not self._handed:
            return
        assigned = consumer.assignment()
        for tp, handed in self._handed.items():
            if handed and tp in assigned:
                consumer.seek(tp, handed[0])
        self._handed.clear()
        self._idle.set()

    def ack(self, msgs: Sequence[Message]) -> None:
        """Commit, per partition, up to the lowest offset still unsettled: one commit for the
        batch."""
        try:
            if msgs:
                self._call(self._settle(msgs), self._request_seconds)
                self.status.acked += len(msgs)
        finally:
            if not self._handed:
                self._idle.set()

    async def _settle(self, msgs: Sequence[Message]) -> None:
        consumer = self._require()
        # grouped by (topic, partition): a TopicPartition is that tuple, and finds its key
        settled: dict[tuple[str, int | None], set[int | None]] = {}
        for msg in msgs:
            key = (msg.topic, msg.partition)
            group = settled.get(key)
            if group is None:
                settled[key] = {msg.offset}
            else:
                group.add(msg.offset)
        assigned = consumer.assignment()
        offsets: dict[TopicPartition, int] = {}
        for (topic, partition), offsets_done in settled.items():
            if partition is None or None in offsets_done:
                raise ValueError(f"kafka direct: message of {topic} without partition/offset")
            done = cast("set[int]", offsets_done)
            tp = TopicPartition(topic, partition)
            handed = self._handed.pop(tp, [])
            left = [] if done.issuperset(handed) else [o for o in handed if o not in done]
            position = left[0] if left else max(done) + 1
            if left:
                self._handed[tp] = left
            share = self._share
            if share is not None and not share.holds(tp):
                continue  # lapsed: its next reader commits
            if tp in assigned and position > self._committed.get(tp, -1):
                offsets[tp] = position
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # the partitions went to another member, which reads them again from the last
            # commit: at least once, the records replaced (the task ids are the messages')
            log.warning("kafka direct %s: commit refused (%s)", self.client_id, exc)
            return
        self._committed.update(offsets)

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        """Partitions (re)assigned: their first messages may have been handled before."""
        for tp in assigned:
            self._suspect[tp] = _FROM_NEXT_READ
            self._committed.pop(tp, None)
        self._handed = {tp: h for tp, h in self._handed.items() if tp in assigned}

    def _gained(self, fresh: set[TopicPartition]) -> None:
        """Lease assignment: partitions (re)gained, read from the committed offsets; their
        first messages may have been handled before."""
        for tp in fresh:
            self._suspect[tp] = _FROM_NEXT_READ
            self._committed.pop(tp, None)

    async def _follow(self) -> None:
        """Manual assignment: take this child's partitions of the topics (new ones added;
        those held keep their fetch positions)."""
        consumer = self._require()
        self._followed_at = time.monotonic()
        # aiokafka has no public call that returns partitions from a fresh metadata request
        cluster = await consumer._client.fetch_all_metadata()
        wanted = {
            TopicPartition(topic, p)
            for topic in self.topics
            for p in cluster.partitions_for_topic(topic) or ()
            if self.lease or owns(self.place, topic, p)
        }
        if self._share is not None:  # the share loop takes this child's share of them
            self._share.learn(wanted)
            return
        held = consumer.assignment()
        if wanted <= held:
            return
        positions = {}
        for tp in held:
            with contextlib.suppress(IllegalStateError):
                positions[tp] = await consumer.position(tp)
        consumer.assign(list(wanted | held))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        self._assigned(wanted - held)
        log.info(
            "kafka direct %s: reading %d partition(s) of %s",
            self.client_id,
            len(wanted | held),
            ", ".join(self.topics),
        )

    def update_lag(self) -> None:
        """Messages of this child's partitions not yet read (end offset less fetch position;
        Tansu's end offsets are approximate), and those in hand. Also the status's probe:
        aiokafka reconnects by itself and an idle read looks the same whether the cluster is
        up or gone, so a lookup that fails (or succeeds again) is what tells the state."""
        if self._consumer is None:
            return
        try:
            self.status.lag = self._call(self._lag(), LAG_TIMEOUT_SECONDS)
        except ConnectionError as exc:
            if self.status.state == "connected":
                log.warning("kafka direct %s: %s", self.client_id, exc)
            self.status.disconnected("reconnecting", str(exc))
            raise
        if self.status.state == "reconnecting":
            log.info("kafka direct %s: the cluster answers again", self.client_id)
            self.status.connected()
        self.status.pending = sum(len(h) for h in list(self._handed.values()))

    async def _lag(self) -> int | None:
        consumer = self._require()
        assigned = consumer.assignment()
        if not assigned:
            return None
        ends = await consumer.end_offsets(list(assigned))
        lag = 0
        for tp in assigned:
            with contextlib.suppress(IllegalStateError):
                lag += max(ends.get(tp, 0) - await consumer.position(tp), 0)
        return lag

    def close(self) -> None:
        """Leave the group (or drop the assignment) and stop the loop thread; what was read
        and not committed is read again by whoever reads these partitions next."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._call(self._stop(), 15.0)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = None
        self._handed.clear()
        self._suspect.clear()
        self._committed.clear()
        self._idle.set()
        self.status.disconnected("stopped")

    async def _stop(self) -> None:
        task, self._share_task = self._share_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        share, self._share = self._share, None
        if share is not None:
            await share.leave()
            await share.shares.client.aclose()  # this child's own
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
