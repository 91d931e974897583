"""The `env_vars` and `store_items` tables (migrations `0011_envs_and_store`,
`0013_env_updated_by`)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Boolean, Dialect, Double, Index, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from fnhub.store.models import Base, LongText


class ExactText(TypeDecorator[str]):
    """Text compared byte for byte everywhere: on MySQL/MariaDB a VARBINARY (4 bytes a
    character), since their text collations ignore case or trailing spaces (`a`, `A` and `a `
    would be one key), even `utf8mb4_bin`."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(self.length * 4))
        return dialect.type_descriptor(String(self.length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in ("mysql", "mariadb"):
            return value.encode()
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode()
        return value  # type: ignore[no-any-return]  # str or None from the other drivers


class EnvVar(Base):
    """One env variable: its type and value as text (a password's sealed, `enc:v1:...`)."""

    __tablename__ = "env_vars"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(LongText)
    description: Mapped[str] = mapped_column(String(2000), default="")
    provisioned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
    #: who made the last change, as the audit log names actors (user:<name>, key:<id>, cli,
    #: project); "" for a row written before migration 0013
    updated_by: Mapped[str] = mapped_column(String(140), default="")


class StoreItem(Base):
    """One key of `fnhub.store`: a JSON document (as text, read back exactly) in a scope (the
    script's name unless the script chose one), until `expires_at` (epoch seconds; None:
    never). Expired rows are invisible to reads and deleted by the servers' purge."""

    __tablename__ = "store_items"
    __table_args__ = (Index("ix_store_items_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(ExactText(128), primary_key=True)
    key: Mapped[str] = mapped_column(ExactText(256), primary_key=True)
    value: Mapped[str] = mapped_column(LongText)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
