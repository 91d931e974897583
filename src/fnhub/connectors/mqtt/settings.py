"""Connection settings, source options and publish options, validated with per-field errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fnhub.connectors.settings import SettingsModel, TlsOptions


class MqttSettings(SettingsModel):
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


class MqttSourceOptions(SettingsModel):
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


class MqttPublishOptions(SettingsModel):
    qos: int = Field(0, ge=0, le=2)
    retain: bool = False
    properties: dict[str, object] | None = None
    timeout: float = Field(10.0, gt=0)
