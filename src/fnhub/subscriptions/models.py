"""The subscription resource: connector + topics → function (or SQL), optional publish target."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Boolean, Double, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fnhub.store.models import Base


class Subscription(Base):
    __tablename__ = "subscriptions"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    connector: Mapped[str] = mapped_column(String(128))
    topics: Mapped[list[str]] = mapped_column(JSON)
    function: Mapped[str | None] = mapped_column(String(256), nullable=True)
    sql: Mapped[str | None] = mapped_column(Text, nullable=True)
    mode: Mapped[str] = mapped_column(String(16), default="single")
    window: Mapped[int] = mapped_column(Integer, default=100)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    publish: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_publish: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record: Mapped[bool] = mapped_column(Boolean, default=True)
    record_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    path: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    provisioned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
