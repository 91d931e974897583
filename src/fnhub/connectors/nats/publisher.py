"""NATS JetStream publishers: each publish waits for the stream's ack (it is stored), so a
rule's input is acknowledged only once its output is safe. Sync for scripts, async for rules."""

from __future__ import annotations

import contextlib
from typing import Any

from nats.aio.client import Client
from nats.errors import Error as NatsError

from fnhub.connectors.base import ConnectorError, describe_error, encode_payload, parse_model
from fnhub.connectors.nats.client import connect, where
from fnhub.connectors.nats.settings import NatsPublishOptions, NatsSettings
from fnhub.connectors.threaded import ThreadedPublisher


class AsyncNatsPublisher:
    def __init__(self, settings: NatsSettings, nc: Client) -> None:
        self.settings = settings
        self._nc = nc
        self._js = nc.jetstream()

    @classmethod
    async def open(cls, settings: NatsSettings) -> AsyncNatsPublisher:
        try:
            nc = await connect(settings, "fnhub-publisher")
        except ConnectorError:
            raise
        except (NatsError, OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"nats {where(settings)}: cannot connect: {describe_error(exc)}"
            ) from exc
        return cls(settings, nc)

    async def check(self) -> None:
        """Ask for the account's JetStream limits: fails clearly if JetStream is off."""
        try:
            await self._js.account_info()
        except (NatsError, OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"nats {where(self.settings)}: JetStream: {describe_error(exc)}"
            ) from exc

    async def publish(self, topic: str, message: Any, **options: Any) -> None:
        o = parse_model(NatsPublishOptions, options, "nats publish options")
        headers = dict(o.headers or {})
        if o.msg_id:
            headers["Nats-Msg-Id"] = o.msg_id
        try:
            await self._js.publish(
                topic,
                encode_payload(message),
                timeout=o.timeout,
                stream=o.stream,
                headers=headers or None,
            )
        except (NatsError, OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"nats {where(self.settings)}: publish to {topic!r} failed: {describe_error(exc)}"
            ) from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._nc.drain()


class NatsPublisher(ThreadedPublisher):
    def __init__(self, settings: NatsSettings) -> None:
        super().__init__(
            "nats",
            lambda: AsyncNatsPublisher.open(settings),
            open_timeout=settings.connect_timeout,
            publish_timeout=NatsPublishOptions.model_validate({}).timeout,
        )
