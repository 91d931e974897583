"""One Kafka reader's share of a subscription's partitions under Redis leases (`assignment:
lease`): what the server's source and a direct child's consumer share.

A share loop (`run`) ticks `fnhub.shares.Shares` every `ttl / 6`, and at once when the
partitions or the members seen change: it takes the free partitions of this member's share,
stops handing out the records of any partition whose lease it lost, and hands over those no
longer in its share once the reader says their messages settled (at most `drain_timeout`):
the reader commits what finished, then the lease is released. The reader applies `changes`
between reads (`apply`: partitions kept go on from their fetch positions, those gained read
from the committed offsets, those leaving stay assigned, paused, until handed over) and hands
out a partition's records only while it is `ours` (held by our own clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from fnhub.connectors.base import SourceStatus
from fnhub.shares import Shares

log = logging.getLogger("fnhub.connectors.kafka")


def item(tp: TopicPartition) -> str:
    """A partition as a shared item: Kafka topic names have no colon."""
    return f"{tp.topic}:{tp.partition}"


class PartitionShare:
    def __init__(
        self,
        shares: Shares,
        label: str,
        status: SourceStatus,
        *,
        drain_timeout: float,
        settled: Callable[[TopicPartition], bool],
        commit: Callable[[set[TopicPartition]], Awaitable[None]],
        forget: Callable[[set[TopicPartition]], None],
    ) -> None:
        self.shares = shares
        self.label = label  # names the reader in logs
        self.status = status
        self.drain_timeout = drain_timeout
        self._settled = settled  # nothing of this partition in flight
        self._commit = commit  # commit what finished of these partitions
        self._forget = forget  # drop what the reader keeps of these partitions
        self.known: dict[str, TopicPartition] = {}  # every partition of the topics, by item
        self.reading: dict[TopicPartition, str] = {}  # held and handed out, → item
        self.fresh: set[TopicPartition] = set()  # (re)gained: read from the committed offset
        self.leaving: dict[TopicPartition, float] = {}  # handed over once settled, since
        self.changes = 0  # counts changes of the three above, for the reader
        self.wake = asyncio.Event()

    def learn(self, partitions: set[TopicPartition]) -> None:
        """The topics' partitions, as the reader's metadata request found them."""
        if not partitions.issubset(self.known.values()):
            self.known.update((item(tp), tp) for tp in partitions)
            self.wake.set()

    def ours(self, tp: TopicPartition) -> bool:
        """Whether the reader may hand out this partition's records now."""
        name = self.reading.get(tp)
        return name is not None and tp not in self.fresh and self.shares.holds(name)

    def holds(self, tp: TopicPartition) -> bool:
        """Whether the reader may commit this partition now."""
        return self.shares.holds(item(tp))

    async def run(self) -> None:
        shares = self.shares
        while True:
            await self.tick()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(shares.renew_in()):
                    await self.wake.wait()
            self.wake.clear()

    async def tick(self) -> None:
        shares, known = self.shares, self.known
        members = shares.members
        asking = shares.wanted(known) | {item(tp) for tp in self.leaving}
        await shares.tick(asking)
        if shares.error is not None:
            self.status.error(f"partition leases: {shares.error}")
        if shares.members != members:  # the view moved: ask for the share it gives, at once
            self.wake.set()
        changed = False
        for tp, name in list(self.reading.items()):
            if not shares.holds(name):  # lapsed, or another member holds it: no commit
                log.warning("kafka %s: lease of %s lost; not reading it", self.label, name)
                del self.reading[tp]
                self._forget({tp})
                changed = True
        wanted = shares.wanted(known)
        now = time.monotonic()
        for tp, name in list(self.reading.items()):
            if name not in wanted:  # another member's share now: hand it over once settled
                del self.reading[tp]
                self.leaving[tp] = now
                changed = True
        stray: list[str] = []  # taken by the view before this tick, not ours by this one
        for name in asking:
            tp = known.get(name)
            if tp is None or not shares.holds(name) or tp in self.reading or tp in self.leaving:
                continue
            if name in wanted:
                self.reading[tp] = name
                self.fresh.add(tp)
                changed = True
            else:
                stray.append(name)
        if stray:  # nothing was read from them
            await shares.release(stray)
        changed = await self._hand_over(now) or changed
        if changed:
            self.changes += 1
            log.info(
                "kafka %s: reading %d of %d partition(s) (%d member(s))",
                self.label,
                len(self.reading),
                len(known),
                len(shares.members),
            )

    async def _hand_over(self, now: float) -> bool:
        """Partitions leaving this member: once nothing of them is in flight (at most
        `drain_timeout`), commit what finished and give their leases up."""
        done: set[TopicPartition] = set()
        lapsed: set[TopicPartition] = set()
        for tp, since in self.leaving.items():
            if not self.holds(tp):
                lapsed.add(tp)  # no commit: its next reader may have committed since
            elif self._settled(tp) or now - since >= self.drain_timeout:
                done.add(tp)
        for tp in lapsed:
            del self.leaving[tp]
        self._forget(lapsed)
        if not done:
            return bool(lapsed)
        await self._commit(done)
        for tp in done:
            self.leaving.pop(tp, None)
        self._forget(done)
        await self.shares.release([item(tp) for tp in done])
        return True

    async def apply(self, consumer: AIOKafkaConsumer, paused: bool) -> set[TopicPartition]:
        """Assign the partitions held now (see the module docstring); the partitions gained,
        whose records the reader kept from before must go."""
        target = set(self.reading)
        fresh, self.fresh = self.fresh & target, set()
        leaving = set(self.leaving)
        target |= leaving
        held = consumer.assignment()
        positions = {}
        for tp in (held & target) - fresh:
            with contextlib.suppress(IllegalStateError):
                positions[tp] = await consumer.position(tp)
        if target != held or fresh:
            consumer.assign(list(target))
            for tp, offset in positions.items():
                consumer.seek(tp, offset)
        if paused and target:
            consumer.pause(*target)
        elif leaving:
            consumer.pause(*leaving)
        return fresh

    async def leave(self) -> None:
        """Give every lease up and leave the members (the reader stopped)."""
        await self.shares.leave()
        self.reading.clear()
        self.leaving.clear()
