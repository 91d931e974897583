"""An active subscription without a delivery cursor (made before verifiers wrote the cursor,
confirmed, ahead of the row; or its cursor lost with Redis's data) gets one at the position of
its last verification, logged: what was published for it meanwhile (stored, and kept by the
reclaimer) is delivered. Before, a deliverer silently started it at the topic's end, skipping
all of it, and a renewal left it without one."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from fnhub.keys import Keys

from .harness import eventually, script_publish
from .test_conformance import subscribe, topic_url

MISSED = ["missed 1", "missed 2"]


def _lose_cursor_and_publish(settings, sid: str, topic: str) -> list[str]:
    """The pre-fix state: the subscription active in SQL, no cursor in Redis; then publishes
    (as a script does, while no hub runs) it has not received."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        assert client.hdel(Keys(settings.key_prefix).websub_cursors, sid) == 1
    finally:
        client.close()
    return script_publish(settings, topic, MISSED)


async def _subscribed_then_stopped(start_hub, subscribers, name: str) -> tuple[Any, str, str]:
    """A hub's settings, a subscription it made and its topic; the hub stopped."""
    hub = await start_hub()
    topic = topic_url(subscribers)
    await subscribe(hub, subscribers, name, topic)
    (sub,) = await hub.subscriptions(topic=topic)
    await hub.served.stop()
    return hub.settings, sub["id"], topic


def _order(position: bytes | str) -> tuple[int, int]:
    millis, _, seq = (position.decode() if isinstance(position, bytes) else position).partition("-")
    return int(millis), int(seq)


async def test_a_deliverer_repairs_a_missing_cursor(start_hub, subscribers, caplog):
    caplog.set_level(logging.WARNING, logger="fnhub.websub")
    settings, sid, topic = await _subscribed_then_stopped(start_hub, subscribers, "repaired")
    _lose_cursor_and_publish(settings, sid, topic)
    await start_hub()  # its deliverer finds no cursor
    cb = subscribers.cb("repaired")
    await eventually(lambda: len(cb.notices) >= len(MISSED))
    assert cb.bodies() == [m.encode() for m in MISSED]
    assert any(
        "had no delivery cursor" in r.getMessage() and sid in r.getMessage() for r in caplog.records
    )


async def test_a_renewal_repairs_a_missing_cursor(start_hub, subscribers, caplog):
    caplog.set_level(logging.WARNING, logger="fnhub.websub")
    settings, sid, topic = await _subscribed_then_stopped(start_hub, subscribers, "renewed")
    keys = Keys(settings.key_prefix)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        # another server's claim: no deliverer of this hub starts (and repairs) meanwhile
        client.set(keys.websub_owner(sid), "elsewhere", ex=60)
        positions = _lose_cursor_and_publish(settings, sid, topic)
        hub = await start_hub()
        before = time.time()
        await subscribe(hub, subscribers, "renewed", topic)  # the renewal
        cursor = await eventually(lambda: client.hget(keys.websub_cursors, sid))
        # where its last verification began: before what it missed
        assert _order(cursor) < _order(positions[0]), (cursor, positions)
        (sub,) = await hub.subscriptions(topic=topic)
        assert sub["id"] == sid and sub["verified_at"] >= before - 1  # renewed in place
        client.delete(keys.websub_owner(sid))
        cb = subscribers.cb("renewed")
        await eventually(lambda: len(cb.notices) >= len(MISSED))
        assert cb.bodies() == [m.encode() for m in MISSED]
    finally:
        client.close()
    assert any(
        "had no delivery cursor" in r.getMessage() and sid in r.getMessage() for r in caplog.records
    )
