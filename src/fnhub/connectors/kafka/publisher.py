"""Kafka publishers, sync (scripts, on a private thread or loop) and async (rules' outputs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
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


class KafkaPublisher:
    """Synchronous wrapper: the async producer lives on a private event-loop thread."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kafka-publisher", daemon=True
        )
        self._thread.start()
        timeout = settings.request_timeout_ms / 1000
        try:
            self._inner = self._call(AsyncKafkaPublisher.open(settings, timeout), timeout + 5)
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coro: Any, timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise ConnectorError(f"kafka: no answer within {timeout}s") from None

    def publish(self, topic: str, message: Any, **options: Any) -> None:
        timeout = float(options.get("timeout", KafkaPublishOptions().timeout))
        self._call(self._inner.publish(topic, message, **options), timeout + 5)

    def close(self) -> None:
        try:
            self._call(self._inner.close(), 15)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
