"""NATS connection settings, JetStream source options and publish options."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from fnhub.connectors.settings import SettingsModel, TlsOptions


class NatsSettings(SettingsModel):
    servers: str | list[str] = Field(min_length=1)  # nats://host:4222 (comma-separated or list)
    user: str | None = None
    password: str | None = Field(None, repr=False)
    token: str | None = Field(None, repr=False)
    tls: bool | TlsOptions = False
    name: str | None = None  # the client name the server shows; default: the stable client id
    connect_timeout: float = Field(5.0, gt=0)
    ping_interval: float = Field(5.0, gt=0)  # a dead connection is noticed after 2 missed pings

    @field_validator("servers")
    @classmethod
    def _servers(cls, v: str | list[str]) -> list[str]:
        servers = [s.strip() for s in (v.split(",") if isinstance(v, str) else v)]
        if not servers or not all(servers):
            raise ValueError("must list at least one nats://host:port")
        for s in servers:
            if urlsplit(s).scheme not in ("nats", "tls", "ws", "wss"):
                raise ValueError(f"{s!r}: scheme must be nats://, tls://, ws:// or wss://")
        return servers


class NatsSourceOptions(SettingsModel):
    #: the JetStream stream to read; default: the stream whose subjects cover the first topic
    stream: str | None = None
    durable: str | None = None  # the durable consumer's name; default: the subscription's group
    deliver: Literal["all", "new"] = "all"  # where a new durable consumer starts
    ack_wait: float = Field(30.0, gt=0)  # seconds; in-flight messages are touched (+WPI) meanwhile
    max_deliver: int = Field(-1, ge=-1)
    max_batch: int = Field(256, ge=1)  # most messages one pull request asks for
    expires: float = Field(5.0, ge=1)  # seconds a pull request waits for messages
    drain_timeout: float = Field(10.0, ge=0)
    reconnect_max: float = Field(30.0, gt=0)


class NatsPublishOptions(SettingsModel):
    headers: dict[str, str] | None = None
    msg_id: str | None = None  # Nats-Msg-Id: the stream drops a duplicate within its window
    stream: str | None = None  # expect this stream to store it
    timeout: float = Field(10.0, gt=0)  # wait this long for the stream's ack
