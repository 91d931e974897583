"""Connection settings, source options and publish options, validated with per-field errors."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from fnhub.connectors.settings import SettingsModel, TlsOptions


class RedisSettings(SettingsModel):
    url: str | None = None  # redis://, rediss://, unix://; wins over host/port/db
    host: str | None = None
    port: int = Field(6379, ge=1, le=65535)
    db: int = Field(0, ge=0)
    username: str | None = None
    password: str | None = Field(None, repr=False)
    tls: bool | TlsOptions = False
    socket_timeout: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            scheme = urlsplit(v).scheme
            if scheme not in ("redis", "rediss", "unix"):
                raise ValueError("scheme must be redis://, rediss:// or unix://")
        return v

    @model_validator(mode="after")
    def _where(self) -> RedisSettings:
        if not self.url and not self.host:
            raise ValueError("give either url or host")
        return self


class RedisSourceOptions(SettingsModel):
    kind: Literal["pubsub", "stream"] = "pubsub"
    buffer: int = Field(10000, ge=1)  # pubsub: messages held while the window is full
    start: Literal["$", "0"] = "$"  # stream: where a new consumer group starts
    field: str = "data"  # stream: the entry field holding the payload
    claim_idle_ms: int = Field(60000, ge=100)  # stream: claim any entry idle this long
    block_ms: int = Field(1000, ge=10)  # stream: XREADGROUP BLOCK
    ack_interval_ms: int = Field(20, ge=0)  # stream: one XACK per interval for what finished
    drain_timeout: float = Field(10.0, ge=0)
    reconnect_max: float = Field(30.0, gt=0)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: object) -> object:
        return {"latest": "$", "earliest": "0", 0: "0"}.get(v, v)


class RedisPublishOptions(SettingsModel):
    kind: Literal["pubsub", "stream"] = "pubsub"
    maxlen: int | None = Field(None, ge=1)  # stream: approximate trim (XADD MAXLEN ~)
    field: str = "data"
    # stream: more fields beside the payload's (a subscription reads them as headers);
    # a pub/sub message has none
    headers: dict[str, str] | None = None
