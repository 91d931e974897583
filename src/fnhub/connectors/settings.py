"""Connection settings and source options per broker, validated with clear per-field errors.

Unknown keys are rejected (`extra="forbid"`) so a typo such as `hots` fails at save time instead
of silently connecting to the default host.
"""

from __future__ import annotations

import ssl
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsOptions(_Model):
    """TLS for any broker. `insecure` skips certificate and host name checks (test brokers only)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_certs)
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def tls_options(value: bool | TlsOptions | None) -> TlsOptions | None:
    if value is True:
        return TlsOptions()
    if isinstance(value, TlsOptions):
        return value
    return None


Port = Field(ge=1, le=65535)


# --- MQTT -----------------------------------------------------------------------------------


class MqttSettings(_Model):
    host: str = Field(min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(None, repr=False)
    tls: bool | TlsOptions = False
    client_id: str | None = None  # overrides the stable id the caller derives
    protocol: Literal["5", "3.1.1"] = "5"
    clean_start: bool = False  # False: the broker keeps the session (and unacked messages)
    session_expiry: int = Field(3600, ge=0)  # seconds the broker keeps the session offline
    keepalive: int = Field(30, ge=5, le=65535)
    connect_timeout: float = Field(10.0, gt=0)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_str(cls, v: object) -> object:
        if v in (5, 5.0, "v5", "5.0", "mqttv5"):
            return "5"
        if v in ("3", "311", "v3.1.1", "mqttv311"):
            return "3.1.1"
        return v


class MqttSourceOptions(_Model):
    qos: int = Field(1, ge=0, le=2)
    share_group: str | None = None  # subscribe as `$share/<group>/<topic>` (multiple mode)
    buffer: int = Field(10000, ge=1)  # QoS 0 only: messages held while the window is full
    drain_timeout: float = Field(10.0, ge=0)
    reconnect_max: float = Field(30.0, gt=0)

    @field_validator("share_group")
    @classmethod
    def _group_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "/+#")):
            raise ValueError("must be non-empty and contain none of / + #")
        return v


class MqttPublishOptions(_Model):
    qos: int = Field(0, ge=0, le=2)
    retain: bool = False
    properties: dict[str, object] | None = None
    timeout: float = Field(10.0, gt=0)


# --- Kafka ----------------------------------------------------------------------------------


class KafkaSettings(_Model):
    bootstrap_servers: str | list[str]
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(None, repr=False)
    ssl: TlsOptions | None = None
    client_id: str | None = None
    request_timeout_ms: int = Field(30000, ge=1000)

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, v: str | list[str]) -> str | list[str]:
        servers = [s.strip() for s in (v.split(",") if isinstance(v, str) else v)]
        if not servers or not all(servers):
            raise ValueError("must list at least one host:port")
        for s in servers:
            host, _, port = s.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{s!r} is not host:port")
        return servers

    @model_validator(mode="after")
    def _sasl(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                f
                for f in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, f) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs " + ", ".join(missing)
                )
        return self

    def client_kwargs(self) -> dict[str, object]:
        """Keyword arguments shared by aiokafka consumers, producers and admin clients."""
        kw: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.client_id:
            kw["client_id"] = self.client_id
        if self.sasl_mechanism:
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kw["ssl_context"] = (self.ssl or TlsOptions()).context()
        return kw


class KafkaSourceOptions(_Model):
    group_id: str | None = None  # default: the group given by the caller
    # 'earliest' by default: a new group must not skip what was produced before it joined, and
    # Tansu's ListOffsets(latest) is wrong (it replays the tail of the last batch).
    start: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = Field(10000, ge=500)
    heartbeat_interval_ms: int = Field(3000, ge=100)
    commit_interval_ms: int = Field(500, ge=10)
    # How long the broker may hold a fetch that found nothing. Kafka answers as soon as data
    # arrives; Tansu later, sooner the lower this is (a message after a quiet spell waited
    # 70-85 ms with aiokafka's default of 500, 10-35 ms with 20), at the cost of an empty
    # fetch every this-many ms while idle.
    fetch_max_wait_ms: int = Field(100, ge=10)
    metadata_max_age_ms: int = Field(30000, ge=100)  # how soon topics created later are seen
    drain_timeout: float = Field(10.0, ge=0)
    reconnect_max: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat(self) -> KafkaSourceOptions:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        return self


class KafkaPublishOptions(_Model):
    key: bytes | str | None = None
    headers: dict[str, bytes | str] | None = None
    partition: int | None = Field(None, ge=0)
    timeout: float = Field(30.0, gt=0)


# --- Redis ----------------------------------------------------------------------------------


class RedisSettings(_Model):
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


class RedisSourceOptions(_Model):
    kind: Literal["pubsub", "stream"] = "pubsub"
    buffer: int = Field(10000, ge=1)  # pubsub: messages held while the window is full
    start: Literal["$", "0"] = "$"  # stream: where a new consumer group starts
    field: str = "data"  # stream: the entry field holding the payload
    claim_idle_ms: int = Field(60000, ge=100)  # stream: claim others' entries idle this long
    block_ms: int = Field(1000, ge=10)  # stream: XREADGROUP BLOCK
    ack_interval_ms: int = Field(20, ge=0)  # stream: one XACK per interval for what finished
    drain_timeout: float = Field(10.0, ge=0)
    reconnect_max: float = Field(30.0, gt=0)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: object) -> object:
        return {"latest": "$", "earliest": "0", 0: "0"}.get(v, v)  # type: ignore[call-overload]


class RedisPublishOptions(_Model):
    kind: Literal["pubsub", "stream"] = "pubsub"
    maxlen: int | None = Field(None, ge=1)  # stream: approximate trim (XADD MAXLEN ~)
    field: str = "data"
