"""A source on the in-process broker, with the same window and ack-after-done as the others."""

from __future__ import annotations

import asyncio

from fnhub.connectors.base import ConnectorConfigError, Message, ReadingSource
from fnhub.connectors.memory.broker import Entry, broker
from fnhub.connectors.memory.settings import MemorySettings, MemorySourceOptions


class MemorySource(ReadingSource):
    def __init__(
        self,
        settings: MemorySettings,
        *,
        topics: list[str],
        window: int,
        group: str,
        client_id: str,
        options: MemorySourceOptions,
    ) -> None:
        if not topics:
            raise ConnectorConfigError("topics: at least one topic is required")
        super().__init__(window, options.drain_timeout)
        self.broker = broker(settings.broker)
        self.topics = topics
        self.group = group
        self.client_id = client_id
        self._ready = asyncio.Event()
        self._held: set[int] = set()  # taken from the broker and not yet settled

    async def _read_forever(self) -> None:
        self.broker.subscribe(self.group, self.topics, self._ready)
        self.status.connected()
        window = self._window
        while True:
            await window.wait_room(n=min(window.refill, window.free) or 1)
            entries = self.broker.take(self.group, window.free)
            if not entries:
                self._ready.clear()
                await self._ready.wait()
                continue
            self._held.update(e.id for e in entries)
            window.spawn_many([(self._message(e), self._done) for e in entries])

    def _message(self, e: Entry) -> Message:
        return Message(
            topic=e.topic,
            payload=e.payload,
            qos=1,
            timestamp=e.at,
            message_id=str(e.id),
            client_id=self.client_id,
            redelivered=e.redelivered,
        )

    def _done(self, msg: Message, ok: bool) -> None:
        entry_id = int(msg.message_id or 0)
        if ok:
            self._held.discard(entry_id)
            self.broker.ack(self.group, entry_id)
            self.status.acked += 1

    async def _close(self) -> None:
        self.broker.leave(self.group, self._ready)
        held, self._held = self._held, set()
        self.broker.give_back(self.group, list(held))
