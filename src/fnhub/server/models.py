"""Tables of the HTTP server: API keys and published endpoints."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Boolean, Double, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from fnhub.store.models import Base


class ApiKey(Base):
    """An API key with a role; only the SHA-256 of the token is kept (the token is shown once)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class Endpoint(Base):
    """A function published at `/e/<name>`: mode, fixed kwargs, auth, throttling, cache, expiry."""

    __tablename__ = "endpoints"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    function: Mapped[str] = mapped_column(String(256))
    mode: Mapped[str] = mapped_column(String(8), default="sync")  # sync | async
    description: Mapped[str] = mapped_column(Text, default="")
    kwargs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    auth: Mapped[dict[str, Any]] = mapped_column(JSON)  # secret fields encrypted
    throttle: Mapped[dict[str, int]] = mapped_column(JSON)
    cache_result: Mapped[float | None] = mapped_column(Double, nullable=True)
    timeout: Mapped[float | None] = mapped_column(Double, nullable=True)
    show_traceback: Mapped[bool] = mapped_column(Boolean, default=False)
    show_logs: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    record_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: declared in fnhub.yaml: `fnhub apply` owns it (and removes it when no longer declared)
    provisioned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
