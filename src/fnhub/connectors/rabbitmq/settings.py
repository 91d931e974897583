"""RabbitMQ (AMQP 0-9-1) connection settings, source options and publish options."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from fnhub.connectors.settings import SettingsModel, TlsOptions


class RabbitmqSettings(SettingsModel):
    url: str | None = None  # amqp:// or amqps://; wins over host/port/...
    host: str | None = None
    port: int = Field(5672, ge=1, le=65535)
    username: str = "guest"
    password: str | None = Field("guest", repr=False)
    virtualhost: str = "/"
    tls: bool | TlsOptions = False
    #: the exchange topics are routing keys on: subscriptions bind their queue to it with
    #: their topics as binding keys, rules and scripts publish to it
    exchange: str = "fnhub"
    exchange_type: Literal["topic", "direct", "fanout", "headers"] = "topic"
    connect_timeout: float = Field(10.0, gt=0)
    heartbeat: int = Field(30, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("amqp", "amqps"):
            raise ValueError("scheme must be amqp:// or amqps://")
        return v

    @model_validator(mode="after")
    def _where(self) -> RabbitmqSettings:
        if not self.url and not self.host:
            raise ValueError("give either url or host")
        return self


class RabbitmqSourceOptions(SettingsModel):
    queue: str | None = None  # the durable queue's name; default: the subscription's group
    #: queue arguments, e.g. {"x-queue-type": "quorum"} or a dead-letter exchange
    arguments: dict[str, Any] | None = None
    drain_timeout: float = Field(10.0, ge=0)
    reconnect_max: float = Field(30.0, gt=0)


class RabbitmqPublishOptions(SettingsModel):
    exchange: str | None = None  # default: the connector's exchange
    persistent: bool = True  # delivery mode 2: survives a broker restart in a durable queue
    mandatory: bool = False  # True: a message no queue is bound for is an error
    headers: dict[str, str] | None = None
    message_id: str | None = None
    timeout: float = Field(10.0, gt=0)  # wait this long for the publisher confirm
