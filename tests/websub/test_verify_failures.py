"""Verifications that fail for an unexpected reason, and verifications longer than the time
after which an intent counts as stale.

- A corrupt intent (its lease not a number: the verifier raises ValueError, as a bug would) is
  verified `VERIFY_ATTEMPTS` times with backoff, then given up: acknowledged, listed with its
  reason by the API and `fnhub websub failed`, counted in `/metrics`. Before, the first error
  acknowledged it with a traceback in one server's log and nothing else.
- One that fails so once (PostgreSQL missing the table for a moment) is applied by the next
  verification, a backoff later.
- A subscriber slower to answer than `CLAIM_IDLE_MS` (a `websub_verify_timeout` above it) is
  asked once: the verifying server keeps its intent from going stale, so neither another
  server nor itself verifies it again meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from typing import Any

import redis
import sqlalchemy as sa
from tests.conftest import fresh_database
from typer.testing import CliRunner

from fnhub.cli import app
from fnhub.keys import Keys
from fnhub.websub import failed_intents, verify

from .harness import eventually
from .test_conformance import topic_url
from .test_metrics import _metrics, _value


def _redis(settings: Any) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


async def test_an_unexpected_error_is_retried_then_given_up_and_shown(
    hub, subscribers, monkeypatch
) -> None:
    monkeypatch.setattr(failed_intents, "BACKOFF_SECONDS", 0.05)
    keys = Keys(hub.settings.key_prefix)
    callback = subscribers.callback_url("corrupt")
    topic = topic_url(subscribers)
    intent = {"mode": "subscribe", "topic": topic, "callback": callback, "lease": "forever"}
    client = _redis(hub.settings)
    try:
        client.xadd(keys.websub_intents, intent)  # as a bug in the hub endpoint could write it
        r = await eventually(
            lambda: _given_up(hub), timeout=max(20, 4 * hub.settings.websub_verify_timeout)
        )
        assert client.xlen(keys.websub_intents) == 0  # acknowledged once given up
        assert client.hlen(keys.websub_verify_attempts) == 0
    finally:
        client.close()
    (failed,) = r
    assert failed["mode"] == "subscribe" and failed["callback"] == callback
    assert failed["topic"] == topic
    assert failed["attempts"] == failed_intents.VERIFY_ATTEMPTS
    assert failed["reason"].startswith("ValueError: invalid literal for int()")
    assert _value(await _metrics(hub), "fnhub_websub_verification_errors_total") == 1
    assert subscribers.cb("corrupt").verifications == []  # never asked: it failed before
    assert await hub.subscriptions(topic=topic) == []
    env = {k: None for k in os.environ if k.startswith("FNHUB_")}
    env.update(
        FNHUB_REDIS_URL=hub.settings.redis_url,
        FNHUB_KEY_PREFIX=hub.settings.key_prefix,
        FNHUB_DB_URL=hub.settings.resolved_db_url(),
    )
    project = str(hub.settings.project_dir)
    out = await asyncio.to_thread(
        CliRunner().invoke, app, ["websub", "failed", "--json", "-p", project], env=env
    )
    assert out.exit_code == 0, out.output
    assert [(f["callback"], f["reason"]) for f in json.loads(out.output)] == [
        (callback, failed["reason"])
    ]


async def _active(hub, topic: str) -> list[dict[str, Any]]:
    """The topic's active subscriptions; none while the API fails (the table away)."""
    r = await hub.api("GET", "/subscriptions", params={"topic": topic, "state": "active"})
    return r.json() if r.status_code == 200 else []


async def _given_up(hub) -> list[dict[str, Any]]:
    r = await hub.api("GET", "/failed-intents")
    return r.json() if r.status_code == 200 else []


async def test_a_slow_subscriber_is_asked_once(start_hub, subscribers, monkeypatch) -> None:
    """Two hubs; the subscriber answers after twice the stale time (the verification timeout
    allows it): the other hub does not claim the intent, nor does the verifying one."""
    monkeypatch.setattr(verify, "CLAIM_IDLE_MS", 3000)
    answer_after = 6.0
    first = await start_hub(websub_verify_timeout=30.0)
    await start_hub(websub_verify_timeout=30.0)
    cb = subscribers.cb("slow")

    async def slowly() -> None:
        await asyncio.sleep(answer_after)

    cb.on_verify = slowly
    topic = topic_url(subscribers)
    callback = subscribers.callback_url("slow")
    params = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback}
    r = await first.post(**params)
    assert r.status_code == 202, r.text
    active = await eventually(
        lambda: first.subscriptions(topic=topic, state="active"), timeout=answer_after + 20
    )
    assert len(active) == 1
    await asyncio.sleep(verify.CLAIM_IDLE_MS / 1000 * 1.5)  # a late second verification
    assert [v["hub.mode"] for v in cb.verifications] == ["subscribe"]
    client = _redis(first.settings)
    try:
        assert client.xlen(Keys(first.settings.key_prefix).websub_intents) == 0
    finally:
        client.close()


async def test_an_unexpected_error_that_goes_away_is_retried(
    start_hub, subscribers, tmp_path
) -> None:
    """PostgreSQL answers "no such table" (a ProgrammingError: no passing failure) to the first
    verification after the subscriber's answer; the next one, a backoff later, applies it."""
    urls = fresh_database("postgresql", tmp_path)
    url = next(urls)
    try:
        hub = await start_hub(db_url=url)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))

        def rename(old: str, new: str) -> None:
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))

        async def table_away_for_a_while() -> None:
            await asyncio.to_thread(rename, "websub_subscriptions", "websub_subscriptions_away")
            loop = asyncio.get_running_loop()
            back = functools.partial(rename, "websub_subscriptions_away", "websub_subscriptions")
            loop.call_later(0.3, lambda: loop.run_in_executor(None, back))

        cb = subscribers.cb("comeback")
        cb.on_verify = table_away_for_a_while
        topic = topic_url(subscribers)
        callback = subscribers.callback_url("comeback")
        r = await hub.post(
            **{"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback}
        )
        assert r.status_code == 202, r.text
        active = await eventually(lambda: _active(hub, topic), timeout=20)
        assert len(active) == 1
        assert len(cb.verifications) == 2  # asked again by the second verification
        assert await _given_up(hub) == []
        client = _redis(hub.settings)
        try:
            keys = Keys(hub.settings.key_prefix)
            await eventually(lambda: client.xlen(keys.websub_intents) == 0)
            assert client.hlen(keys.websub_verify_attempts) == 0
        finally:
            client.close()
        engine.dispose()
    finally:
        next(urls, None)
