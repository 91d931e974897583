"""Settings of the in-memory broker: which of the process's named brokers to use."""

from __future__ import annotations

from pydantic import Field

from fnhub.connectors.settings import SettingsModel


class MemorySettings(SettingsModel):
    broker: str = Field("default", min_length=1)


class MemorySourceOptions(SettingsModel):
    drain_timeout: float = Field(10.0, ge=0)
