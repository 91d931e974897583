"""Kafka publishers, sync (scripts, on a private thread or loop) and async (rules' outputs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from fnhub.connectors.base import (
    ConnectorError,
    describe_error,
    encode_payload,
    parse_model,
)
from fnhub.connectors.kafka.client import where
from fnhub.connectors.kafka.settings import KafkaPublishOptions, KafkaSettings
from fnhub.connectors.threaded import ThreadedPublisher

log = logging.getLogger("fnhub.connectors.kafka")

#: an idle source asks the cluster for metadata this often, to notice (and show) an outage
PROBE_SECONDS = 3.0
PROBE_TIMEOUT_SECONDS = 5.0


# --- publishers -----------------------------------------------------------------------------


class AsyncKafkaPublisher:
    """An aiokafka producer (acks=all); `publish` returns once the broker acknowledged."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        kw = settings.client_kwargs()
        kw.setdefault("client_id", "fnhub-publisher")
        self._producer = AIOKafkaProducer(acks="all", **kw)

    @classmethod
    async def open(
        cls, settings: KafkaSettings, timeout: float | None = None
    ) -> AsyncKafkaPublisher:
        self = cls(settings)
        try:
            await asyncio.wait_for(self._producer.start(), timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            raise ConnectorError(
                f"kafka {where(settings)}: cannot connect: {describe_error(exc)}"
            ) from exc
        return self

    async def publish(self, topic: str, message: Any, **options: Any) -> None:
        opts = parse_model(KafkaPublishOptions, options, "kafka publish options")
        key = opts.key.encode() if isinstance(opts.key, str) else opts.key
        headers = [
            (k, v.encode() if isinstance(v, str) else v) for k, v in (opts.headers or {}).items()
        ]
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    topic,
                    encode_payload(message),
                    key=key,
                    partition=opts.partition,
                    headers=headers or None,
                ),
                opts.timeout,
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"kafka {where(self.settings)}: publish to {topic!r} failed: {describe_error(exc)}"
            ) from exc

    async def close(self) -> None:
        await self._producer.stop()


class KafkaPublisher(ThreadedPublisher):
    """Synchronous: the async producer lives on a private event-loop thread."""

    def __init__(self, settings: KafkaSettings) -> None:
        timeout = settings.request_timeout_ms / 1000
        super().__init__(
            "kafka",
            lambda: AsyncKafkaPublisher.open(settings, timeout),
            open_timeout=timeout,
            publish_timeout=KafkaPublishOptions().timeout,
        )
