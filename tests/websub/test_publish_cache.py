"""What publishes ask SQL (`fnhub.websub.publish_cache`): a server that saw a topic with an active
subscription answers the next publishes to it without a query, and never keeps a "no", so a new
subscription, made on this server or another, gets the very next publish; a kept "yes" gone
stale (its subscription ended) stores a notification that nobody is sent, not even a later
subscriber. Real servers, Redis and databases (SQLite, PostgreSQL, MariaDB); the statements
counted with SQLAlchemy's cursor events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from tests.conftest import fresh_database

from fnhub.websub.area import hub_of
from fnhub.websub.hub import Hub
from fnhub.websub.policy import url_hash

from .harness import eventually
from .test_conformance import subscribe, topic_url

PUBLISHES = 20


class TopicQueries:
    """Counts the statements, on every engine, whose parameters name one topic's hash: those a
    publish to it makes (the servers' background passes name no topic)."""

    def __init__(self, topic_hash: str) -> None:
        self.topic_hash = topic_hash
        self.statements: list[str] = []
        event.listen(Engine, "before_cursor_execute", self._before)

    def remove(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.topic_hash in repr(params):
            self.statements.append(statement)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    urls = fresh_database(request.param, tmp_path)
    yield next(urls)
    next(urls, None)


async def hub_object(client: Any) -> Hub:
    """The `Hub` a test server runs (to give it a stale "yes", as another server's would be)."""
    hub = await hub_of(client.served.server.config.app.state.ctx)
    assert hub is not None
    return hub


async def published(client: Any, topic: str, content: str) -> str:
    r = await client.post(
        **{"hub.mode": "publish", "hub.url": topic, "hub.content": content},
    )
    assert r.status_code == 202, r.text
    return r.text


async def test_publishes_to_a_subscribed_topic_ask_sql_once_not_each(
    start_hub, subscribers, db_url
):
    """Fails before the cache: two statements per publish (its subscribers, its topic row)."""
    hub = await start_hub(db_url=db_url, websub_subscribed_cache_seconds=60.0)
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "counted", topic)
    queries = TopicQueries(url_hash(topic))
    try:
        for i in range(PUBLISHES):
            assert "published to 1 topic(s)" in await published(hub, topic, f"n{i}")
    finally:
        queries.remove()
    # the first: whether it has subscribers and a row, in one statement; its row made (2)
    assert len(queries.statements) <= 3, (len(queries.statements), queries.statements)
    await eventually(lambda: len(cb.notices) == PUBLISHES)
    assert sorted(cb.bodies(), key=lambda b: int(b[1:])) == [
        f"n{i}".encode() for i in range(PUBLISHES)
    ]


async def test_a_new_subscription_gets_the_next_publish_after_a_no_and_a_yes(
    start_hub, subscribers
):
    """Subscriptions applied by one server, publishes through another that answered before."""
    a = await start_hub(websub_subscribed_cache_seconds=60.0)
    b = await start_hub(websub_subscribed_cache_seconds=60.0)
    topic = topic_url(subscribers)
    assert "without subscribers" in await published(b, topic, "to nobody")
    first = await subscribe(a, subscribers, "first", topic)
    assert "published to 1 topic(s)" in await published(b, topic, "one")  # no "no" kept
    await eventually(lambda: first.bodies() == [b"one"])
    second = await subscribe(a, subscribers, "second", topic)  # b keeps a "yes" meanwhile
    assert "published to 1 topic(s)" in await published(b, topic, "two")
    await eventually(lambda: second.bodies() == [b"two"] and first.bodies() == [b"one", b"two"])


@pytest.mark.parametrize("ending", ["unsubscribed", "expired"])
async def test_a_stale_yes_stores_but_delivers_to_nobody(start_hub, subscribers, ending):
    """The "yes" a server kept while the subscription ended elsewhere (an expiry announces
    nothing): the notification is stored, sent to nobody, and a subscriber that comes back
    starts after it."""
    client = await start_hub(websub_subscribed_cache_seconds=60.0)
    hub = await hub_object(client)
    topic = topic_url(subscribers)
    lease = {"hub.lease_seconds": "1"} if ending == "expired" else {}
    cb = await subscribe(client, subscribers, "ends", topic, **lease)
    assert "published to 1 topic(s)" in await published(client, topic, "before")
    await eventually(lambda: cb.bodies() == [b"before"])
    if ending == "unsubscribed":
        r = await client.post(
            **{
                "hub.mode": "unsubscribe",
                "hub.topic": topic,
                "hub.callback": subscribers.callback_url("ends"),
            }
        )
        assert r.status_code == 202, r.text
        await eventually(lambda: _subscriptions(client, topic, 0))
    else:
        await eventually(lambda: _state(client, topic, "expired"), timeout=5)
    await eventually(lambda: not hub.deliverers)  # released on its `u:` event, or at its end
    topic_hash = url_hash(topic)
    assert "without subscribers" in await published(client, topic, "ended")  # nothing kept
    cache = hub.publish_cache
    cache.note_subscribed(topic_hash, cache.generation)  # as another server may still hold
    assert "published to 1 topic(s)" in await published(client, topic, "stale yes")
    await asyncio.sleep(1.0)
    assert cb.bodies() == [b"before"]
    await subscribe(client, subscribers, "ends", topic)  # back (expired: the same row)
    assert "published to 1 topic(s)" in await published(client, topic, "after")
    await eventually(lambda: cb.bodies() == [b"before", b"after"])
    await asyncio.sleep(0.3)
    assert cb.bodies() == [b"before", b"after"]


async def _subscriptions(client: Any, topic: str, n: int) -> bool:
    return len(await client.subscriptions(topic=topic)) == n


async def _state(client: Any, topic: str, state: str) -> bool:
    subs = await client.subscriptions(topic=topic)
    return bool(subs) and subs[0]["state"] == state
