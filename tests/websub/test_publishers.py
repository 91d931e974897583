"""Who may publish (a credential unless the hub is explicitly open) and rate limits per client,
through the real server app and Redis."""

from __future__ import annotations

import asyncio
import time

import redis as sync_redis

from fnhub import runtime
from fnhub.config import Settings
from fnhub.websub.policy import url_hash

from .harness import eventually
from .test_conformance import subscribe, topic_url

DEFAULT_OPEN = Settings.model_fields["websub_open"].default
PUBLISHER_TOKEN = "blog-publisher-token-0123456789"


def fat(topic: str, content: str) -> dict[str, str]:
    return {"hub.mode": "publish", "hub.url": topic, "hub.content": content}


async def registered_subscription(hub, subscribers, name: str):
    topic = topic_url(subscribers)
    r = await hub.api("POST", "/topics", json={"url": topic})
    assert r.status_code == 201, r.text
    return topic, await subscribe(hub, subscribers, name, topic)


def test_safe_defaults():
    s = Settings()
    assert s.websub_open is False
    assert s.websub_allow_networks == []
    assert s.websub_subscribe_per_minute > 0 and s.websub_publish_per_minute > 0
    assert 0 < s.websub_topic_max_bytes < s.websub_storage_max_bytes


async def test_anonymous_publish_is_refused_by_default(start_hub, subscribers):
    hub = await start_hub(websub_open=DEFAULT_OPEN)
    topic, cb = await registered_subscription(hub, subscribers, "anon")
    subscribers.topics[topic.rsplit("/", 1)[1]] = (b"fetched", "text/plain")
    for params in (fat(topic, "pushed"), {"hub.mode": "publish", "hub.url": topic}):
        r = await hub.post(**params)
        assert r.status_code == 401 and "needs a credential" in r.text, r.text
        assert r.headers["www-authenticate"] == "Bearer"
    r = await hub.http.post(
        "/websub/hub",
        params={"hub.mode": "publish", "hub.url": topic},
        content=b"raw body",
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 401
    await asyncio.sleep(0.3)
    assert cb.notices == [] and subscribers.topic_fetches == []
    client = sync_redis.Redis.from_url(hub.settings.redis_url)
    assert client.exists(f"{hub.settings.key_prefix}:websub:topic:{url_hash(topic)}") == 0
    client.close()


async def test_admin_key_or_publisher_token_may_publish(start_hub, subscribers):
    hub = await start_hub(
        websub_open=DEFAULT_OPEN, websub_publisher_tokens={"blog": PUBLISHER_TOKEN}
    )
    topic, cb = await registered_subscription(hub, subscribers, "cred")
    credentials = {
        "bearer": {"Authorization": f"Bearer {hub.token}"},
        "x-api-key": {"X-Api-Key": hub.token},
        "publisher": {"Authorization": f"Bearer {PUBLISHER_TOKEN}"},
    }
    for name, headers in credentials.items():
        r = await hub.http.post("/websub/hub", data=fat(topic, name), headers=headers)
        assert r.status_code == 202, (name, r.text)
    await eventually(lambda: len(cb.notices) == 3)
    assert cb.bodies() == [b"bearer", b"x-api-key", b"publisher"]
    for headers in (
        {"Authorization": "Bearer fnh_0000_nope"},
        {"X-Api-Key": "not-a-token"},
        {"Authorization": f"Bearer {PUBLISHER_TOKEN}x"},
    ):
        r = await hub.http.post("/websub/hub", data=fat(topic, "wrong"), headers=headers)
        assert r.status_code == 401 and "not a valid" in r.text, r.text


async def test_a_wrong_credential_is_refused_on_an_open_hub_too(hub, subscribers):
    topic = topic_url(subscribers)
    r = await hub.http.post(
        "/websub/hub", data=fat(topic, "x"), headers={"Authorization": "Bearer fnh_0000_nope"}
    )
    assert r.status_code == 401
    assert (await hub.post(**fat(topic, "x"))).status_code == 202  # open: none is fine


async def test_script_publish_needs_no_credential(start_hub, subscribers):
    hub = await start_hub(websub_open=DEFAULT_OPEN)
    topic, cb = await registered_subscription(hub, subscribers, "script")
    client = sync_redis.Redis.from_url(hub.settings.redis_url)
    runtime.init(hub.settings, client)
    try:
        import fnhub.websub

        fnhub.websub.publish(topic, "from a script")
    finally:
        runtime.init(None, None)  # type: ignore[arg-type]
        client.close()
    await eventually(lambda: cb.bodies() == [b"from a script"])


async def fresh_window() -> None:
    """Start counting early in a minute, so the fixed window does not turn over mid-test."""
    into = time.time() % 60
    if into > 55:
        await asyncio.sleep(60.1 - into)


async def test_subscribe_requests_are_rate_limited_per_client(start_hub, subscribers):
    hub = await start_hub(websub_subscribe_per_minute=3)
    await fresh_window()
    topic = topic_url(subscribers)
    for i in range(3):
        r = await hub.post(
            **{
                "hub.mode": "subscribe",
                "hub.topic": topic,
                "hub.callback": subscribers.callback_url(f"r{i}"),
            }
        )
        assert r.status_code == 202, r.text
    r = await hub.post(
        **{
            "hub.mode": "unsubscribe",
            "hub.topic": topic,
            "hub.callback": subscribers.callback_url("r9"),
        }
    )
    assert r.status_code == 429 and "too many requests" in r.text, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    await eventually(lambda: len(_verified(subscribers, 3)) == 3)
    await asyncio.sleep(0.3)
    assert subscribers.cb("r9").verifications == []


def _verified(subscribers, n: int) -> list[str]:
    return [f"r{i}" for i in range(n) if subscribers.cb(f"r{i}").verifications]


async def test_publishes_are_rate_limited_per_credential(start_hub, subscribers):
    hub = await start_hub(
        websub_publish_per_minute=2, websub_publisher_tokens={"blog": PUBLISHER_TOKEN}
    )
    await fresh_window()
    topic = topic_url(subscribers)
    token = {"Authorization": f"Bearer {PUBLISHER_TOKEN}"}
    for _ in range(2):
        assert (await hub.post(**fat(topic, "x"))).status_code == 202
    anonymous = await hub.post(**fat(topic, "x"))
    assert anonymous.status_code == 429 and "retry-after" in anonymous.headers
    for _ in range(2):  # the publisher has its own count, not its address's
        r = await hub.http.post("/websub/hub", data=fat(topic, "x"), headers=token)
        assert r.status_code == 202, r.text
    r = await hub.http.post("/websub/hub", data=fat(topic, "x"), headers=token)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
