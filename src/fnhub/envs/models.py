"""The `env_vars` and `store_items` tables (migration `0011_envs_and_store`)."""

from __future__ import annotations

import time

from sqlalchemy import Boolean, Double, Index, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from fnhub.store.models import Base, LongText

#: store keys are compared byte for byte: MySQL's default collation would make `A` and `a`
#: (and `a` and `a `) one key
StoreKey = String(256).with_variant(
    mysql.VARCHAR(256, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)
StoreScope = String(128).with_variant(
    mysql.VARCHAR(128, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


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


class StoreItem(Base):
    """One key of `fnhub.store`: a JSON document (as text, read back exactly) in a scope (the
    script's name unless the script chose one), until `expires_at` (epoch seconds; None:
    never). Expired rows are invisible to reads and deleted by the servers' purge."""

    __tablename__ = "store_items"
    __table_args__ = (Index("ix_store_items_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(StoreScope, primary_key=True)
    key: Mapped[str] = mapped_column(StoreKey, primary_key=True)
    value: Mapped[str] = mapped_column(LongText)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_at: Mapped[float] = mapped_column(Double, default=time.time)
