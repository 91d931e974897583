"""Database access for topics, subscriptions and dead letters (sync; call through a thread)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import case, delete, exists, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from fnhub.store.db import Database, rows_changed
from fnhub.websub.models import WebSubDeadLetter, WebSubSubscription, WebSubTopic
from fnhub.websub.policy import url_hash


@dataclass(slots=True)
class Verified:
    subscription: WebSubSubscription
    fresh: bool  # new or re-activated: its cursor starts at the topic's end


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- topics --------------------------------------------------------------------------

    def topic(self, topic: str) -> WebSubTopic | None:
        with self.db.session() as s:
            return s.get(WebSubTopic, url_hash(topic))

    def ensure_topic(self, topic: str, *, registered: bool = False) -> WebSubTopic:
        """Create the topic row if missing; `registered=True` also marks an existing one."""
        h = url_hash(topic)
        with self.db.session() as s:
            row = s.get(WebSubTopic, h)
            if row is None:
                row = WebSubTopic(hash=h, url=topic, registered=registered, created_at=time.time())
                s.add(row)
                try:
                    s.commit()
                except IntegrityError:  # another server created it meanwhile
                    s.rollback()
                    row = s.get(WebSubTopic, h)
                    assert row is not None
            if registered and not row.registered:
                row.registered = True
                s.commit()
            return row

    def deregister_topic(self, topic_hash: str) -> bool:
        with self.db.session() as s:
            done = s.execute(
                update(WebSubTopic).where(WebSubTopic.hash == topic_hash).values(registered=False)
            )
            s.commit()
            return bool(rows_changed(done))

    def topics(self) -> list[tuple[WebSubTopic, int]]:
        """Topics with their count of active subscriptions: the topic rows (registered, or
        published to through the hub) and the topics only subscriptions name (on an open hub
        a subscription makes no topic row), oldest first."""
        active = func.sum(case((WebSubSubscription.state == "active", 1), else_=0))
        by_topic = select(
            WebSubSubscription.topic_hash,
            func.min(WebSubSubscription.topic),
            func.min(WebSubSubscription.created_at),
            active,
        ).group_by(WebSubSubscription.topic_hash)
        with self.db.session() as s:
            rows = list(s.execute(select(WebSubTopic)).scalars())
            counts = {h: (url, created, int(n or 0)) for h, url, created, n in s.execute(by_topic)}
        listed = [(t, counts.get(t.hash, ("", 0.0, 0))[2]) for t in rows]
        known = {t.hash for t in rows}
        for topic_hash, (url, created, n) in counts.items():
            if topic_hash not in known:  # shown, not stored: listing changes nothing
                topic = WebSubTopic(hash=topic_hash, url=url, registered=False, created_at=created)
                listed.append((topic, n))
        return sorted(listed, key=lambda pair: pair[0].created_at)

    # --- subscriptions -------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> WebSubSubscription | None:
        with self.db.session() as s:
            return s.get(WebSubSubscription, subscription_id)

    def find(self, topic: str, callback: str) -> WebSubSubscription | None:
        with self.db.session() as s:
            return s.execute(
                select(WebSubSubscription).where(
                    WebSubSubscription.topic_hash == url_hash(topic),
                    WebSubSubscription.callback_hash == url_hash(callback),
                )
            ).scalar_one_or_none()

    def subscriptions(
        self,
        *,
        state: str | None = None,
        topic: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[WebSubSubscription]:
        """Oldest first; with `limit`, a page resuming after subscription `after` (keyset on
        creation time and id, so a page costs the same however deep)."""
        order = (WebSubSubscription.created_at, WebSubSubscription.id)
        query = select(WebSubSubscription).order_by(*order)
        if state:
            query = query.where(WebSubSubscription.state == state)
        if topic:
            query = query.where(WebSubSubscription.topic_hash == url_hash(topic))
        if limit is not None:
            query = query.limit(limit)
        with self.db.session() as s:
            if after is not None:
                mark = s.get(WebSubSubscription, after)
                if mark is None:
                    return []  # removed meanwhile: its place is unknown
                query = query.where(tuple_(*order) > (mark.created_at, mark.id))
            return list(s.execute(query).scalars())

    def active(self, now: float) -> list[WebSubSubscription]:
        with self.db.session() as s:
            return list(
                s.execute(
                    select(WebSubSubscription).where(
                        WebSubSubscription.state == "active",
                        WebSubSubscription.lease_expires > now,
                    )
                ).scalars()
            )

    def publish_state(self, topic_hash: str, now: float) -> tuple[bool, bool]:
        """(whether any subscription of the topic is active, whether its topic row exists), in
        one statement: what a publish asks, one query instead of two."""
        subscribed = exists().where(
            WebSubSubscription.topic_hash == topic_hash,
            WebSubSubscription.state == "active",
            WebSubSubscription.lease_expires > now,
        )
        known = exists().where(WebSubTopic.hash == topic_hash)
        with self.db.session() as s:
            row = s.execute(select(subscribed, known)).one()
            return bool(row[0]), bool(row[1])

    def active_by_topic(self, now: float) -> dict[str, list[str]]:
        """Topic hash → ids of its active subscriptions (what the reclaimer must keep for)."""
        query = select(WebSubSubscription.topic_hash, WebSubSubscription.id).where(
            WebSubSubscription.state == "active", WebSubSubscription.lease_expires > now
        )
        out: dict[str, list[str]] = {}
        with self.db.session() as s:
            for topic_hash, sid in s.execute(query):
                out.setdefault(topic_hash, []).append(sid)
        return out

    def verified_subscribe(
        self,
        topic: str,
        callback: str,
        secret: str | None,
        lease: int,
        verified_at: float,
        new_id: str | None = None,
    ) -> Verified:
        """Apply a verified subscription: update the pair's row in place, or create it (with
        the id `new_id`, when its cursor was written first)."""
        with self.db.session() as s:
            row = s.execute(
                select(WebSubSubscription).where(
                    WebSubSubscription.topic_hash == url_hash(topic),
                    WebSubSubscription.callback_hash == url_hash(callback),
                )
            ).scalar_one_or_none()
            fresh = row is None or row.state != "active" or row.lease_expires <= verified_at
            if row is None:
                row = WebSubSubscription(
                    id=new_id or uuid.uuid4().hex,
                    topic_hash=url_hash(topic),
                    topic=topic,
                    callback_hash=url_hash(callback),
                    callback=callback,
                    created_at=verified_at,
                )
                s.add(row)
            row.secret = secret
            row.lease_seconds = lease
            row.lease_expires = verified_at + lease
            row.state = "active"
            row.verified_at = verified_at
            row.ended_at = None
            s.commit()
            return Verified(row, fresh)

    def remove(self, subscription_id: str) -> bool:
        with self.db.session() as s:
            done = s.execute(
                delete(WebSubSubscription).where(WebSubSubscription.id == subscription_id)
            )
            s.commit()
            return bool(rows_changed(done))

    def end(self, subscription_id: str, state: str) -> bool:
        """Stop an active subscription (`expired`, `gone` after a 410, `denied`)."""
        with self.db.session() as s:
            done = s.execute(
                update(WebSubSubscription)
                .where(
                    WebSubSubscription.id == subscription_id, WebSubSubscription.state == "active"
                )
                .values(state=state, ended_at=time.time())
            )
            s.commit()
            return bool(rows_changed(done))

    def expire_due(self, now: float) -> int:
        with self.db.session() as s:
            done = s.execute(
                update(WebSubSubscription)
                .where(
                    WebSubSubscription.state == "active", WebSubSubscription.lease_expires <= now
                )
                .values(state="expired", ended_at=now)
            )
            s.commit()
            return rows_changed(done)

    # --- dead letters --------------------------------------------------------------------

    def add_dead_letter(self, row: WebSubDeadLetter) -> int:
        with self.db.session() as s:
            s.add(row)
            s.commit()
            return row.id

    def dead_letters(
        self, subscription_id: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[WebSubDeadLetter]:
        """Newest first; `before`: the id of the last one of the page before."""
        query = select(WebSubDeadLetter).order_by(WebSubDeadLetter.id.desc()).limit(limit)
        if before is not None:
            query = query.where(WebSubDeadLetter.id < before)
        if subscription_id:
            query = query.where(WebSubDeadLetter.subscription_id == subscription_id)
        with self.db.session() as s:
            return list(s.execute(query).scalars())

    def dead_letter(self, dead_id: int) -> WebSubDeadLetter | None:
        with self.db.session() as s:
            return s.get(WebSubDeadLetter, dead_id)

    def delete_dead_letter(self, dead_id: int) -> bool:
        with self.db.session() as s:
            done = s.execute(delete(WebSubDeadLetter).where(WebSubDeadLetter.id == dead_id))
            s.commit()
            return bool(rows_changed(done))
