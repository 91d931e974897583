"""Publishers on the in-process broker (sync for scripts, async for rules' outputs)."""

from __future__ import annotations

from typing import Any

from fnhub.connectors.base import encode_payload
from fnhub.connectors.memory.broker import broker
from fnhub.connectors.memory.settings import MemorySettings


class _OnBroker:
    def __init__(self, settings: MemorySettings) -> None:
        self.broker = broker(settings.broker)


class MemoryPublisher(_OnBroker):
    def publish(self, topic: str, message: Any, **_options: Any) -> None:
        self.broker.publish(topic, encode_payload(message))

    def close(self) -> None:
        pass


class AsyncMemoryPublisher(_OnBroker):
    async def publish(self, topic: str, message: Any, **_options: Any) -> None:
        self.broker.publish(topic, encode_payload(message))

    async def close(self) -> None:
        pass
