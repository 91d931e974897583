"""Hub tables: topics, subscriptions and dead letters (notifications that exhausted retries).

Hot per-delivery state (cursors, counters, ownership) lives in Redis; these rows change only on
subscription changes, publishes of new topics and dead letters.
"""

from __future__ import annotations

import time

from sqlalchemy import Double, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from fnhub.store.models import Base

#: bodies up to `websub_content_max_bytes`, above MySQL's 64 KiB BLOB
LongBlob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class WebSubTopic(Base):
    """A topic URL the hub knows: registered through the API, or seen on an open hub."""

    __tablename__ = "websub_topics"

    hash: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    registered: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)


class WebSubSubscription(Base):
    """One (topic, callback) pair; a verified re-subscription updates this row in place."""

    __tablename__ = "websub_subscriptions"
    __table_args__ = (
        UniqueConstraint("topic_hash", "callback_hash"),
        Index("ix_websub_subscriptions_state", "state", "lease_expires"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    topic_hash: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(Text)
    callback_hash: Mapped[str] = mapped_column(String(40))
    callback: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet token
    lease_seconds: Mapped[int] = mapped_column(Integer)
    lease_expires: Mapped[float] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active|expired|gone
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
    verified_at: Mapped[float] = mapped_column(Double, default=time.time)
    ended_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class WebSubDeadLetter(Base):
    """A notification that could not be delivered within the retry limits; can be retried."""

    __tablename__ = "websub_dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(32), index=True)
    topic: Mapped[str] = mapped_column(Text)
    callback: Mapped[str] = mapped_column(Text)
    entry_id: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(255))
    body: Mapped[bytes] = mapped_column(LongBlob)
    published_at: Mapped[float] = mapped_column(Double)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double, default=time.time)
