"""A verification whose stores fail around the subscriber's answer: the database (a real
PostgreSQL database of the test's own, refusing connections for a while) is away just after
the subscriber echoed the challenge. The intent is acknowledged only once the subscription is
applied: retried in place without asking the subscriber again, or, past the retries, left for
another verification. Before, the error acknowledged the intent and the subscription was lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from tests.conftest import POSTGRES_URL, fresh_database

from fnhub.keys import Keys
from fnhub.websub import verify

from .harness import eventually
from .test_conformance import topic_url
from .test_delivery import fat_publish

OUTAGE_SECONDS = 3.0


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("postgresql", tmp_path)


def _allow_connections(url: str, allowed: bool) -> None:
    """The database takes connections again, or refuses new ones and drops those it has."""
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_URL + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}"))
            if not allowed:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": name},
                )
    finally:
        admin.dispose()


def _outage(url: str, seconds: float) -> Any:
    """A verification hook: the database away for `seconds` from now, then back."""

    async def hook() -> None:
        await asyncio.to_thread(_allow_connections, url, False)
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, lambda: loop.run_in_executor(None, _allow_connections, url, True))

    return hook


async def _active(hub, topic: str) -> list[dict[str, Any]]:
    """The topic's active subscriptions; none while the database is away (the API fails)."""
    r = await hub.api("GET", "/subscriptions", params={"topic": topic, "state": "active"})
    return r.json() if r.status_code == 200 else []


def _intents_left(settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.xlen(Keys(settings.key_prefix).websub_intents))
    finally:
        client.close()


async def _subscribe_with_an_outage(start_hub, subscribers, pg_url: str, name: str):
    """A hub on the database, and a subscription whose subscriber takes the database away for
    `OUTAGE_SECONDS` as it answers; returns the hub, the topic and the callback."""
    hub = await start_hub(db_url=pg_url)
    topic = topic_url(subscribers)
    cb = subscribers.cb(name)
    cb.on_verify = _outage(pg_url, OUTAGE_SECONDS)
    callback = subscribers.callback_url(name)
    r = await hub.post(**{"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback})
    assert r.status_code == 202, r.text
    return hub, topic, cb


async def test_the_database_away_after_the_answer_delays_the_subscription(
    start_hub, subscribers, pg_url
):
    hub, topic, cb = await _subscribe_with_an_outage(start_hub, subscribers, pg_url, "outage")
    active = await eventually(lambda: _active(hub, topic), timeout=OUTAGE_SECONDS + 12)
    assert len(active) == 1
    assert len(cb.verifications) == 1  # applied once the database was back, not asked again
    assert _intents_left(hub.settings) == 0  # acknowledged once applied
    await fat_publish(hub, topic, "after the outage")
    await eventually(lambda: cb.notices)
    assert cb.bodies() == [b"after the outage"]


async def test_past_its_retries_the_intent_is_verified_again(
    start_hub, subscribers, pg_url, monkeypatch
):
    """The verifier gives up before the database is back: the intent stays unacknowledged, is
    claimed as stale and verified again (the subscriber asked again), then applied."""
    monkeypatch.setattr(verify, "APPLY_ATTEMPTS", 2)
    monkeypatch.setattr(verify, "RETRY_AFTER_SECONDS", 0.2)
    monkeypatch.setattr(verify, "CLAIM_IDLE_MS", 1000)
    hub, topic, cb = await _subscribe_with_an_outage(start_hub, subscribers, pg_url, "later")
    await eventually(lambda: _active(hub, topic), timeout=OUTAGE_SECONDS + 12)
    assert len(cb.verifications) >= 2  # given up on once at least, then verified again
    assert all(v["hub.mode"] == "subscribe" for v in cb.verifications)
    await eventually(lambda: _intents_left(hub.settings) == 0)
