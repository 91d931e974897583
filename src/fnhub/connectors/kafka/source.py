"""The Kafka source: see the package docstring for how it reads and acknowledges."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError

from fnhub.backoff import Backoff
from fnhub.connectors.base import (
    ConnectorConfigError,
    Done,
    Message,
    ReadingSource,
    describe_error,
)
from fnhub.connectors.kafka.client import consumer_kwargs, where
from fnhub.connectors.kafka.convert import record_message
from fnhub.connectors.kafka.settings import KafkaSettings, KafkaSourceOptions
from fnhub.connectors.kafka.sharing import PartitionShare
from fnhub.shares import Shares
from fnhub.supervised import spawn

log = logging.getLogger("fnhub.connectors.kafka")

#: an idle source asks the cluster for metadata this often, to notice (and show) an outage
PROBE_SECONDS = 3.0
PROBE_TIMEOUT_SECONDS = 5.0
#: how often the lag of the assigned partitions is measured (one ListOffsets request)
LAG_SECONDS = 1.0
#: manual assignment: while none of the topics has a partition yet, look again this often
EMPTY_PROBE_SECONDS = 0.5
#: lease assignment: the reader applies the partitions held this soon after they changed
LEASE_READ_MS = 250


class _Partition:
    """Offsets handed out for one assigned partition, and the commit position they allow."""

    __slots__ = ("ack", "done", "inflight", "order", "position", "ready")

    def __init__(self, ack: Callable[[_Partition, Message, bool], None]) -> None:
        self.ack: Done = functools.partial(ack, self)  # the window's done(msg, ok), made once
        self.order: collections.deque[int] = collections.deque()
        self.done: set[int] = set()
        self.position: int | None = None  # next offset to commit (all below are finished)
        self.ready = 0  # finished messages below `position` not yet committed
        self.inflight = 0  # handed out, not settled yet (failed ones settled too)

    def finish(self, offset: int) -> None:
        self.done.add(offset)
        while self.order and self.order[0] in self.done:
            first = self.order.popleft()
            self.done.discard(first)
            self.position = first + 1
            self.ready += 1


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource, consumer: AIOKafkaConsumer) -> None:
        self.source = source
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.source._commit(self.consumer, only=set(revoked))
        self.source._forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.source._paused and assigned:
            self.consumer.pause(*assigned)


class KafkaSource(ReadingSource):
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: list[str],
        window: int,
        group_id: str,
        client_id: str,
        options: KafkaSourceOptions,
        shares: Shares | None = None,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one topic is required")
        if options.assignment == "lease" and shares is None:
            raise ConnectorConfigError(
                "assignment: lease shares partitions through fnhub's Redis: a subscription's "
                "source only (not available here)"
            )
        self.settings = settings
        self.topics = topics
        self.group_id = group_id
        self.client_id = settings.client_id or client_id
        self.options = options
        #: read every partition without joining the group (see `KafkaSourceOptions`)
        self.manual = options.assignment in ("manual", "lease")
        super().__init__(window, options.drain_timeout)
        self.status.lag_per_member = True
        self._consumer: AIOKafkaConsumer | None = None
        self._committer: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._overflow: collections.deque[ConsumerRecord] = collections.deque()
        self._paused = False
        #: lease assignment: this member's share of the partitions (the share loop decides,
        #: the reader applies)
        self.share: PartitionShare | None = None
        if options.assignment == "lease" and shares is not None:
            self.share = PartitionShare(
                shares,
                f"source {self.client_id}",
                self.status,
                drain_timeout=options.drain_timeout,
                settled=self._settled,
                commit=self._commit_some,
                forget=self._forget,
            )
        self._share_task: asyncio.Task[None] | None = None
        #: `single` mode: whether the subscription's lease is still ours (set by the runner,
        #: `CommitsPositions`); once it is not, nothing more is committed
        self.lease_held: Callable[[], bool] | None = None
        self._fenced_logged = False

    def _before_drain(self) -> None:
        self._overflow.clear()

    async def _close(self) -> None:
        if self._share_task is not None:
            self._share_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._share_task
            self._share_task = None
        await self._close_consumer(commit=True)
        if self.share is not None:
            await self.share.leave()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            group_id=self.group_id,
            max_poll_records=self._window.size,
            **consumer_kwargs(self.settings, self.options, self.client_id),
        )

    async def _read_forever(self) -> None:
        backoff = Backoff(cap=self.options.reconnect_max)
        if self.share is not None and self._share_task is None:
            # for the source's life, across reconnects: leases are kept while Kafka is away
            self._share_task = spawn("kafka-shares", self.share.run, label=self.client_id)
        while not self._stopping:
            self.status.state = "connecting" if self.status.state == "idle" else "reconnecting"
            started = time.monotonic()
            try:
                self._consumer = consumer = self._new_consumer()
                if self.manual:
                    await consumer.start()
                    await self._follow_partitions(consumer)
                else:
                    consumer.subscribe(self.topics, listener=_Rebalance(self, consumer))
                    await consumer.start()
                self.status.connected()
                self._committer = spawn(
                    "kafka-commits",
                    functools.partial(self._commit_loop, consumer),
                    label=self.client_id,
                )
                self._lag_task = spawn(
                    "kafka-lag", functools.partial(self._lag_loop, consumer), label=self.client_id
                )
                await self._consume(consumer)
            except (KafkaError, OSError) as exc:
                text = f"kafka {where(self.settings)}: {describe_error(exc)}"
                log.warning("kafka source %s: %s", self.client_id, text)
                self.status.disconnected("reconnecting", text)
            except Exception:  # unexpected: close this consumer; the reader is restarted
                await self._close_consumer(commit=False)
                raise
            await self._close_consumer(commit=False)
            if time.monotonic() - started > 10:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        window = self._window
        loop = asyncio.get_running_loop()
        alive_at = loop.time()  # last records, or the last probe
        share = self.share
        read_ms = LEASE_READ_MS if share is not None else 1000
        applied = -1
        while True:
            if share is not None and applied != share.changes:
                applied = share.changes
                self._forget(await share.apply(consumer, self._paused))
            if self.manual and loop.time() - alive_at >= self._probe_every(consumer):
                # manual: the probe also finds new partitions, so it runs while busy too
                await self._probe(consumer)
                alive_at = loop.time()
                continue
            if self.manual and not consumer.assignment():  # no topic has partitions yet
                if share is not None:  # or none is ours yet
                    await asyncio.sleep(LEASE_READ_MS / 1000 / 5)
                else:
                    await asyncio.sleep(EMPTY_PROBE_SECONDS)
                continue
            if window.free < window.refill:  # busy: take more once a quarter window is free
                if not self._paused:
                    self._paused = True
                    consumer.pause(*consumer.assignment())
                if not await window.wait_room(timeout=1.0, n=window.refill):
                    # Still full: poll anyway (all partitions paused, so nothing is fetched)
                    # so aiokafka does not leave the group for max_poll_interval.
                    self._take(await consumer.getmany(timeout_ms=0))
                continue
            while self._overflow and window.free > 0:
                self._spawn(self._overflow.popleft())
            if window.free <= 0:
                continue
            if self._paused:
                self._paused = False
                leaving = share.leaving.keys() if share is not None else set()
                consumer.resume(*(consumer.paused() - leaving))
            batch = await consumer.getmany(timeout_ms=read_ms, max_records=window.free)
            if batch:
                if not self.manual:
                    alive_at = loop.time()
                if self.status.state != "connected":
                    self.status.connected()
                self._take(batch)
            elif loop.time() - alive_at >= PROBE_SECONDS:
                await self._probe(consumer)
                alive_at = loop.time()

    def _probe_every(self, consumer: AIOKafkaConsumer) -> float:
        if self.share is not None:
            return PROBE_SECONDS if self.share.known else EMPTY_PROBE_SECONDS
        return PROBE_SECONDS if consumer.assignment() else EMPTY_PROBE_SECONDS

    async def _probe(self, consumer: AIOKafkaConsumer) -> None:
        """Ask the cluster for its metadata. aiokafka reconnects by itself and an idle getmany
        looks the same whether the broker is up or gone, so this is what tells the status."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                if self.manual:
                    await self._follow_partitions(consumer)
                else:
                    await consumer.topics()
        except (KafkaError, OSError, TimeoutError) as exc:
            text = f"kafka {where(self.settings)}: {describe_error(exc)}"
            if self.status.state == "connected":
                log.warning("kafka source %s: %s", self.client_id, text)
            self.status.disconnected("reconnecting", text)
            return
        if self.status.state != "connected":
            log.info("kafka source %s: the cluster answers again", self.client_id)
            self.status.connected()

    async def _follow_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """Manual assignment: read every partition the topics have now. One metadata request;
        the assignment changes only when partitions appeared (a topic created after the start,
        partitions added), and the partitions read before keep their fetch positions."""
        # aiokafka has no public call that returns partitions from a fresh metadata request
        cluster = await consumer._client.fetch_all_metadata()
        wanted = {
            TopicPartition(topic, p)
            for topic in self.topics
            for p in cluster.partitions_for_topic(topic) or ()
        }
        if self.share is not None:  # the share loop takes its share of them
            self.share.learn(wanted)
            return
        held = consumer.assignment()
        if wanted <= held:
            return
        wanted |= held  # a partition is never taken away (Kafka cannot delete one)
        positions = {}
        for tp in held:
            with contextlib.suppress(IllegalStateError):
                positions[tp] = await consumer.position(tp)
        consumer.assign(list(wanted))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        if self._paused:
            consumer.pause(*wanted)
        log.info(
            "kafka source %s: reading %d partition(s) of %s",
            self.client_id,
            len(wanted),
            ", ".join(self.topics),
        )

    # -- lease assignment: what the share asks of the reader ---------------------------------
    def _settled(self, tp: TopicPartition) -> bool:
        part = self._partitions.get(tp)
        return part is None or part.inflight <= 0

    async def _commit_some(self, tps: set[TopicPartition]) -> None:
        if self._consumer is not None:
            await self._commit(self._consumer, only=tps)

    def _take(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Spawn what the window has room for, together; keep the rest, in order, for later."""
        items: list[tuple[Message, Done]] = []
        room = self._window.free
        share = self.share
        for tp, records in batch.items():
            if share is not None and not share.ours(tp):
                continue  # handed over or lapsed since the fetch: its next reader has them
            part: _Partition | None = None
            for record in records:
                if room > 0 and not self._overflow:
                    part = part or self._partition(tp)
                    items.append(self._hand_out(part, record))
                    room -= 1
                else:
                    self._overflow.append(record)
        self._window.spawn_many(items)

    def _spawn(self, r: ConsumerRecord) -> None:
        tp = TopicPartition(r.topic, r.partition)
        if self.share is not None and not self.share.ours(tp):
            return
        part = self._partition(tp)
        self._window.spawn(*self._hand_out(part, r))

    def _hand_out(self, part: _Partition, r: ConsumerRecord) -> tuple[Message, Done]:
        """The window's item for a record; its offset now waits in the partition's commit order."""
        part.order.append(r.offset)
        part.inflight += 1
        return self._message(r), part.ack

    def _partition(self, tp: TopicPartition) -> _Partition:
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition(self._done)
        return part

    def _message(self, r: ConsumerRecord) -> Message:
        return record_message(r, self.client_id)

    def _done(self, part: _Partition, msg: Message, ok: bool) -> None:
        # A failed message stays in `order`: commits for its partition stop below it.
        part.inflight -= 1
        if ok:
            assert msg.offset is not None
            part.finish(msg.offset)

    def _forget(self, revoked: set[TopicPartition]) -> None:
        """Partitions given to another member: their late completions no longer commit."""
        for tp in revoked:
            self._partitions.pop(tp, None)
        if self._overflow:
            self._overflow = collections.deque(
                r for r in self._overflow if TopicPartition(r.topic, r.partition) not in revoked
            )

    async def _commit(
        self, consumer: AIOKafkaConsumer, only: set[TopicPartition] | None = None
    ) -> None:
        if self.lease_held is not None and not self.lease_held():
            # The next holder may have read the committed offsets already and goes on from
            # them: a commit now would move them under it, back past its own commits too
            # (seen over a lossy link: the old holder's drain committed for 2.6 s after its
            # lease lapsed). What finished here since the last commit is handled again there.
            if not self._fenced_logged:
                self._fenced_logged = True
                log.warning(
                    "kafka source %s: the subscription's lease is lost; committing nothing "
                    "more (its next holder reads from the last commit)",
                    self.client_id,
                )
            return
        self._fenced_logged = False
        offsets: dict[TopicPartition, int] = {}
        counted: list[tuple[_Partition, int]] = []
        share = self.share
        for tp, part in self._partitions.items():
            if share is not None and not share.holds(tp):
                continue  # lapsed: its next reader commits
            if part.ready and part.position is not None and (only is None or tp in only):
                offsets[tp] = part.position
                counted.append((part, part.ready))
        if not offsets:
            return
        for part, n in counted:  # taken before the wait: a commit running alongside (the
            part.ready -= n  # loop's, a hand-over's) does not count them again
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            for part, n in counted:
                part.ready += n
            log.warning("kafka source %s: commit failed (%s); will retry", self.client_id, exc)
            return
        self.status.acked += sum(n for _, n in counted)

    async def _commit_loop(self, consumer: AIOKafkaConsumer) -> None:
        interval = self.options.commit_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self._commit(consumer)

    async def _lag_loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                    self.status.lag = await self._lag(consumer)
            except (KafkaError, OSError, TimeoutError) as exc:  # the next round tries again
                log.debug("kafka source %s: lag not measured: %s", self.client_id, exc)
            await asyncio.sleep(LAG_SECONDS)

    async def _lag(self, consumer: AIOKafkaConsumer) -> int | None:
        """Messages of the assigned partitions not yet handed to the handler: each partition's
        end offset less the consumer's fetch position, plus records fetched and kept back
        while the window is full. None before any partition is assigned."""
        assigned = consumer.assignment()
        if not assigned:
            return None
        ends = await consumer.end_offsets(list(assigned))
        lag = len(self._overflow)
        for tp in assigned:
            with contextlib.suppress(IllegalStateError):  # revoked meanwhile
                lag += max(ends.get(tp, 0) - await consumer.position(tp), 0)
        return lag

    async def _close_consumer(self, *, commit: bool) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._lag_task
            self._lag_task = None
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._committer
            self._committer = None
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        if commit:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._commit(consumer), 10)
        try:
            await asyncio.wait_for(consumer.stop(), 15)
        except Exception as exc:
            log.warning("kafka source %s: consumer stop: %s", self.client_id, exc)
        self._partitions.clear()
        self._overflow.clear()
        self._paused = False
