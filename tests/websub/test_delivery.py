"""Delivery: retries, dead letters, leases, 410, signatures, order, isolation, scale-out."""

from __future__ import annotations

import asyncio
import time

import pytest

from fnhub.websub.signing import ALGORITHMS, verify

from .harness import eventually, script_publish
from .test_conformance import subscribe, topic_url


async def fat_publish(hub, topic: str, content: str, ctype: str = "text/plain") -> None:
    r = await hub.post(
        **{
            "hub.mode": "publish",
            "hub.url": topic,
            "hub.content": content,
            "hub.content_type": ctype,
        }
    )
    assert r.status_code == 202, r.text


async def test_500_then_200_is_delivered(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "flaky", topic)
    cb.statuses = [500]
    await fat_publish(hub, topic, "retry me")
    await eventually(lambda: cb.notices)
    assert cb.attempts == 2 and cb.bodies() == [b"retry me"]
    sub = (await hub.subscriptions(topic=topic))[0]
    assert sub["delivered"] == 1 and sub["failures"] == 0 and sub["failed_attempts"] == 1
    assert (await hub.api("GET", "/dead-letters")).json() == []


async def test_down_callback_dead_letters_keeps_subscription_and_retry(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "down", topic)
    cb.down = True
    await fat_publish(hub, topic, "lost one")
    sid = (await hub.subscriptions(topic=topic))[0]["id"]
    dead = await eventually(
        lambda: _json(hub.api("GET", "/dead-letters", params={"subscription_id": sid}))
    )
    attempts = hub.settings.websub_retry_max_attempts
    assert cb.attempts == attempts and dead[0]["attempts"] == attempts
    assert "503" in dead[0]["last_error"]
    sub = (await hub.subscriptions(topic=topic))[0]
    assert sub["state"] == "active" and sub["dead_letters"] == 1 and sub["failures"] == attempts
    cb.down = False
    await fat_publish(hub, topic, "next one")  # §7: keep trying on a new notification
    await eventually(lambda: cb.bodies() == [b"next one"])
    r = await hub.api("POST", f"/dead-letters/{dead[0]['id']}/retry")
    assert r.status_code == 202, r.text
    await eventually(lambda: cb.bodies() == [b"next one", b"lost one"])
    assert (await hub.api("GET", "/dead-letters")).json() == []
    assert (await hub.api("POST", "/dead-letters/999999/retry")).status_code == 404


async def _json(coro):
    r = await coro
    return r.json()


async def test_lease_expiry_stops_delivery(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "short", topic, **{"hub.lease_seconds": "1"})
    assert cb.verifications[-1]["hub.lease_seconds"] == "1"
    await fat_publish(hub, topic, "within lease")
    await eventually(lambda: cb.notices)
    await asyncio.sleep(1.2)
    await fat_publish(hub, topic, "after lease")
    sub = await eventually(lambda: _state(hub, topic, "expired"), timeout=5)
    assert sub["ended_at"] is not None
    await asyncio.sleep(0.5)
    assert cb.bodies() == [b"within lease"]


async def _state(hub, topic: str, state: str):
    subs = await hub.subscriptions(topic=topic)
    return subs[0] if subs and subs[0]["state"] == state else None


async def test_410_ends_subscription(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "gone", topic)
    cb.statuses = [410]
    await fat_publish(hub, topic, "first")
    await eventually(lambda: _state(hub, topic, "gone"))
    await fat_publish(hub, topic, "second")
    await asyncio.sleep(0.5)
    assert cb.attempts == 1 and cb.notices == []


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_signature_algorithms(start_hub, subscribers, algorithm):
    hub = await start_hub(websub_signature_algorithm=algorithm)
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, f"sig-{algorithm}", topic, **{"hub.secret": "s3cr3t"})
    await fat_publish(hub, topic, "signed body")
    await eventually(lambda: cb.notices)
    header = cb.notices[0].headers["x-hub-signature"]
    assert header.startswith(f"{algorithm}=")
    assert verify("s3cr3t", b"signed body", header)
    assert not verify("other", b"signed body", header)


async def test_secret_is_encrypted_at_rest(hub, subscribers):
    from sqlalchemy import create_engine, text

    topic = topic_url(subscribers)
    await subscribe(hub, subscribers, "enc", topic, **{"hub.secret": "plain-secret-value"})
    engine = create_engine(hub.settings.db_url)
    with engine.connect() as c:
        stored = c.execute(text("select secret from websub_subscriptions")).scalar_one()
    engine.dispose()
    assert stored and "plain-secret-value" not in stored


async def test_order_kept_with_a_window_of_one_and_slow_subscriber_does_not_stall_others(
    start_hub, subscribers
):
    hub = await start_hub(websub_delivery_window=1)
    topic = topic_url(subscribers)
    slow = await subscribe(hub, subscribers, "slow", topic)
    fast = await subscribe(hub, subscribers, "fast", topic)
    slow.delay = 0.5
    fast.statuses = [500, 200, 500]  # retries must not reorder
    for i in range(20):
        await fat_publish(hub, topic, f"n{i}")
    started = time.monotonic()
    await eventually(lambda: len(fast.notices) == 20)
    assert time.monotonic() - started < 3  # the slow one needs 10 s for its 20
    assert fast.bodies() == [f"n{i}".encode() for i in range(20)]
    assert len(slow.notices) < 10
    await eventually(lambda: len(slow.notices) >= 3)
    assert slow.bodies() == [f"n{i}".encode() for i in range(len(slow.notices))]


async def test_new_subscription_gets_no_old_backlog(hub, subscribers):
    topic = topic_url(subscribers)
    first = await subscribe(hub, subscribers, "early", topic)
    for i in range(3):
        await fat_publish(hub, topic, f"old{i}")
    await eventually(lambda: len(first.notices) == 3)
    late = await subscribe(hub, subscribers, "late", topic)
    await fat_publish(hub, topic, "new")
    await eventually(lambda: late.notices and len(first.notices) == 4)
    await asyncio.sleep(0.3)
    assert late.bodies() == [b"new"]


async def test_two_servers_share_without_double_sending(start_hub, subscribers):
    a = await start_hub()
    b = await start_hub()
    topic = topic_url(subscribers)
    cbs = [await subscribe(a, subscribers, f"m{i}", topic) for i in range(12)]
    owners = await eventually(lambda: _owners(a, topic), timeout=8)
    assert len(owners) == 2  # both servers deliver
    for i in range(15):
        await fat_publish(b if i % 2 else a, topic, f"x{i}")
    await eventually(lambda: all(len(cb.notices) >= 15 for cb in cbs), timeout=10)
    await asyncio.sleep(0.5)
    for cb in cbs:  # each once (a window of 4 may deliver them out of order)
        assert sorted(cb.bodies(), key=lambda b: int(b[1:])) == [
            f"x{i}".encode() for i in range(15)
        ]


async def _owners(hub, topic: str):
    subs = await hub.subscriptions(topic=topic)
    owners = {s["owner"] for s in subs}
    return owners if None not in owners and len(owners) == 2 else None


async def test_window_delivers_a_backlog_concurrently_to_a_slow_subscriber(hub, subscribers):
    """The default window (4): a 50 ms callback gets 4 requests at once."""
    assert hub.settings.websub_delivery_window == 4
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "slow", topic)
    cb.delay = 0.05
    total = 60
    script_publish(hub.settings, topic, [f"w{i}" for i in range(total)])
    started = time.monotonic()
    await eventually(lambda: len(cb.notices) >= total, timeout=30)
    elapsed = time.monotonic() - started
    assert sorted(cb.bodies()) == sorted(f"w{i}".encode() for i in range(total))
    assert max(cb.arrivals) == 4  # the window, never more
    # one at a time needs total * delay (3 s) at the least; the window ~0.8 s, more under load
    assert elapsed < total * cb.delay * 0.75, elapsed

    async def cursor_at_end() -> bool:
        subs = await hub.subscriptions(topic=topic)
        return subs[0]["backlog"] == 0

    await eventually(cursor_at_end)  # the cursor moved over the whole finished backlog


async def test_failing_callback_is_retried_one_attempt_at_a_time(start_hub, subscribers):
    """After a failure the window's attempts drop to one at a time (a dead callback holds one
    connection, as without a window); the first success opens it again."""
    hub = await start_hub(websub_retry_max_attempts=50, websub_retry_deadline=30.0)
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "flaky", topic)
    cb.delay = 0.3  # long enough for all 4 first attempts to overlap even if read in 2 batches
    cb.down = True
    script_publish(hub.settings, topic, [f"f{i}" for i in range(4)])
    await eventually(lambda: cb.attempts >= 10, timeout=20)
    assert max(cb.arrivals[:4]) > 1  # the first attempts went out together
    assert max(cb.arrivals[4:]) == 1  # then one at a time while failing
    cb.down = False
    await eventually(lambda: len(cb.notices) == 4, timeout=20)
    assert sorted(cb.bodies()) == [f"f{i}".encode() for i in range(4)]
