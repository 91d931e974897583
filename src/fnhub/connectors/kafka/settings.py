"""Connection settings, source options and publish options, validated with per-field errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from fnhub.connectors.settings import SettingsModel, TlsOptions


class KafkaSettings(SettingsModel):
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


class KafkaSourceOptions(SettingsModel):
    group_id: str | None = None  # default: the group given by the caller
    # 'earliest' by default: a new group must not skip what was produced before it joined, and
    # Tansu's ListOffsets(latest) is wrong (it replays the tail of the last batch).
    start: Literal["earliest", "latest"] = "earliest"
    # How partitions reach this source. `manual`: it reads every partition of its topics
    # itself (no group join, no rebalance: the subscription's lease makes it the only reader)
    # and commits under the group id; `single` mode's default. `lease`: the servers reading
    # the subscription share its partitions through Redis, each partition read under a lease
    # by one of them (`fnhub.shares`), assigned by hand and committed under the group id;
    # `multiple` mode's default (a killed server's or direct child's partitions move within
    # about 3.5 s). `group`: a consumer-group member sharing the partitions with the other
    # members through the broker.
    # The default is per mode (`source_args`), so the schema shows none: `group` is only what a
    # caller building these options without a mode gets.
    assignment: Literal["manual", "lease", "group"] = Field(
        "group",
        description="manual (single mode's default), lease (multiple mode's) or group",
        json_schema_extra={"default": None},
    )
    # Group mode only. 6 s is the lowest session a Kafka broker accepts by default
    # (group.min.session.timeout.ms): a killed member's partitions move after about that long,
    # and Tansu's first assignment takes about half of it. Heartbeats every second, not every
    # third of the session: survivors learn of a dead member's expiry only at a heartbeat (and
    # Tansu checks the expiry only when a member heartbeats); 2 s -> 1 s took a failover on
    # Tansu from ~10.8 to ~9.8 s (docs/subscriptions.md).
    session_timeout_ms: int = Field(6000, ge=500)
    heartbeat_interval_ms: int = Field(1000, ge=100)
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


class KafkaPublishOptions(SettingsModel):
    key: bytes | str | None = None
    headers: dict[str, bytes | str] | None = None
    partition: int | None = Field(None, ge=0)
    timeout: float = Field(30.0, gt=0)
