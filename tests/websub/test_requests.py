"""Hub requests: clear 400s that change nothing, encoding, verification rules, policies, publish."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis as sync_redis

from fnhub import runtime

from .harness import eventually
from .test_conformance import subscribe, topic_url
from .test_delivery import fat_publish


async def test_a_request_while_the_hub_is_starting_waits_for_it(start_hub, monkeypatch):
    """The hub loads its CA bundle in a thread while the server already listens: a request
    then waits for the hub instead of being told it does not run (503)."""
    real = httpx.create_ssl_context

    def slow_ca_bundle(*args, **kwargs):
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", slow_ca_bundle)
    hub = await start_hub()
    r = await hub.post(**{"hub.mode": "bogus"})
    assert r.status_code == 400 and "unsupported hub.mode" in r.text, r.text


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "hub.mode is required"),
        ({"hub.mode": "bogus"}, "unsupported hub.mode"),
        ({"hub.mode": "subscribe", "hub.topic": "http://t.example/"}, "hub.callback is required"),
        (
            {"hub.mode": "subscribe", "hub.callback": "ftp://x/cb", "hub.topic": "http://t/"},
            "schemes",
        ),
        (
            {"hub.mode": "subscribe", "hub.callback": "http://x/cb#f", "hub.topic": "http://t/"},
            "fragment",
        ),
        ({"hub.mode": "subscribe", "hub.lease_seconds": "abc"}, "hub.lease_seconds"),
        ({"hub.mode": "subscribe", "hub.secret": "s" * 200}, "less than 200 bytes"),
        ({"hub.mode": "publish"}, "hub.url"),
        ({"hub.mode": "publish", "hub.url": "javascript:alert(1)"}, "schemes"),
    ],
)
async def test_bad_requests_get_400_with_reason_and_change_nothing(
    hub, subscribers, params, reason
):
    if params.get("hub.mode") == "subscribe" and "hub.topic" not in params:
        params = {"hub.callback": subscribers.callback_url("x"), "hub.topic": "http://t/", **params}
    r = await hub.post(**params)
    assert r.status_code == 400 and reason in r.text, r.text
    client = sync_redis.Redis.from_url(hub.settings.redis_url)
    assert client.xlen(f"{hub.settings.key_prefix}:websub:intents") == 0
    client.close()
    assert await hub.subscriptions() == []


async def test_secret_of_199_bytes_is_accepted(hub, subscribers):
    cb = await subscribe(
        hub, subscribers, "s199", topic_url(subscribers), **{"hub.secret": "é" * 99 + "x"}
    )
    assert cb.verifications


async def test_oversized_publish_is_413(start_hub, subscribers):
    hub = await start_hub(websub_content_max_bytes=100)
    r = await hub.http.post(
        "/websub/hub?hub.mode=publish&hub.url=http://t.example/a",
        content=b"x" * 20_000,
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 413


async def test_callback_query_preserved_and_values_percent_encoded(hub, subscribers):
    topic = topic_url(subscribers) + "?q=a b&x=é"
    callback = subscribers.callback_url("query") + "?token=a%2Fb&n=1"
    r = await hub.post(**{"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback})
    assert r.status_code == 202
    cb = subscribers.cb("query")
    await eventually(lambda: cb.verifications)
    v = cb.verifications[0]
    assert v["token"] == "a/b" and v["n"] == "1" and v["hub.topic"] == topic
    await eventually(lambda: hub.subscriptions())
    await fat_publish(hub, topic, "with query")
    await eventually(lambda: cb.notices)
    assert cb.notices[0].query == "token=a%2Fb&n=1"


async def test_unconfirmed_subscription_is_not_created(hub, subscribers):
    cb = subscribers.cb("no")
    cb.confirm = False
    r = await hub.post(
        **{
            "hub.mode": "subscribe",
            "hub.topic": topic_url(subscribers),
            "hub.callback": subscribers.callback_url("no"),
        }
    )
    assert r.status_code == 202  # the answer never depends on verification
    await eventually(lambda: cb.verifications)
    await asyncio.sleep(0.3)
    assert await hub.subscriptions() == []


async def test_failed_resubscription_leaves_subscription_unchanged(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "keep", topic, **{"hub.lease_seconds": "500"})
    before = (await hub.subscriptions())[0]
    cb.confirm = False
    await hub.post(
        **{
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": subscribers.callback_url("keep"),
            "hub.lease_seconds": "900",
            "hub.secret": "changed",
        }
    )
    await eventually(lambda: len(cb.verifications) == 2)
    await asyncio.sleep(0.3)
    after = (await hub.subscriptions())[0]
    assert (after["lease_seconds"], after["signed"], after["id"]) == (500, False, before["id"])
    await fat_publish(hub, topic, "still here")
    await eventually(lambda: cb.notices)


async def test_lease_is_clamped(start_hub, subscribers):
    hub = await start_hub(websub_lease_min=60, websub_lease_max=3600)
    cb = await subscribe(
        hub, subscribers, "clamp", topic_url(subscribers), **{"hub.lease_seconds": "999999"}
    )
    assert cb.verifications[-1]["hub.lease_seconds"] == "3600"


async def test_closed_hub_denies_unregistered_topics(start_hub, subscribers):
    hub = await start_hub(websub_open=False)
    topic = topic_url(subscribers)
    r = await hub.post(
        **{
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": subscribers.callback_url("d"),
        }
    )
    assert r.status_code == 202
    cb = subscribers.cb("d")
    await eventually(lambda: cb.verifications)
    assert cb.verifications[0]["hub.mode"] == "denied"
    assert cb.verifications[0]["hub.topic"] == topic
    assert "not registered" in cb.verifications[0]["hub.reason"]
    publish = {"hub.mode": "publish", "hub.url": topic, "hub.content": "x"}
    r = await hub.post(**publish)
    assert r.status_code == 401 and "needs a credential" in r.text  # a closed hub's publishes
    hub.credential = {"Authorization": f"Bearer {hub.token}"}
    r = await hub.post(**publish)
    assert r.status_code == 400 and "not registered" in r.text
    r = await hub.api("POST", "/topics", json={"url": topic})
    assert r.status_code == 201
    await subscribe(hub, subscribers, "d", topic)
    await fat_publish(hub, topic, "registered now")
    await eventually(lambda: cb.notices)
    topics = (await hub.api("GET", "/topics")).json()
    assert topics[0]["url"] == topic and topics[0]["subscribers"] == 1
    assert topics[0]["registered"] and topics[0]["notifications"] == 1


async def test_loopback_callbacks_refused_by_default(start_hub, subscribers):
    """Without `websub_allow_networks` the hub connects to global addresses only."""
    hub = await start_hub(websub_allow_networks=[])
    r = await hub.post(
        **{
            "hub.mode": "subscribe",
            "hub.topic": "https://example.com/t",
            "hub.callback": subscribers.callback_url("p"),
        }
    )
    assert r.status_code == 400 and "127.0.0.1 is not a public address" in r.text, r.text
    assert subscribers.cb("p").verifications == []


async def test_raw_body_fat_ping_and_script_publish(hub, subscribers, settings):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "raw", topic)
    r = await hub.http.post(
        "/websub/hub",
        params={"hub.mode": "publish", "hub.url": topic},
        content=b'{"a": 1}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 202, r.text
    client = sync_redis.Redis.from_url(settings.redis_url)
    runtime.init(hub.settings, client)
    try:
        import fnhub.websub

        fnhub.websub.publish(topic, {"from": "script"})
    finally:
        runtime.init(None, None)  # type: ignore[arg-type]
        client.close()
    await eventually(lambda: len(cb.notices) == 2)
    assert cb.bodies() == [b'{"a": 1}', b'{"from":"script"}']
    assert [n.headers["content-type"] for n in cb.notices] == ["application/json"] * 2


async def test_topic_fetch_failure_is_502(hub, subscribers):
    topic = f"{hub.served.url}/nowhere"
    await subscribe(hub, subscribers, "nowhere", topic)  # without subscribers nothing is fetched
    r = await hub.post(**{"hub.mode": "publish", "hub.url": topic})
    assert r.status_code == 502 and "404" in r.text


async def test_hub_is_public_and_management_needs_an_api_key(hub, subscribers):
    """On the real server app `/websub/hub` takes no credentials; `/api/v1/websub` does."""
    anonymous = await hub.http.get("/api/v1/websub/subscriptions")
    assert anonymous.status_code == 401
    wrong = await hub.http.get(
        "/api/v1/websub/subscriptions", headers={"Authorization": "Bearer fnh_0000_nope"}
    )
    assert wrong.status_code == 401
    assert (await hub.http.get("/websub/hub")).status_code == 200
    await subscribe(hub, subscribers, "public", topic_url(subscribers))  # no credentials sent
    assert "authorization" not in {k.lower() for k in hub.http.headers}


@pytest.mark.parametrize("echo", [" {}", "{}\n", "\t{} "])
async def test_challenge_echo_must_be_exact(hub, subscribers, echo):
    """§5.3.1: the body must equal hub.challenge; padding with whitespace is no agreement."""
    topic = topic_url(subscribers)
    cb = subscribers.cb("pad")
    cb.echo = echo
    r = await hub.post(
        **{
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": subscribers.callback_url("pad"),
        }
    )
    assert r.status_code == 202
    await eventually(lambda: cb.verifications)
    await asyncio.sleep(0.3)
    assert await hub.subscriptions() == []
    cb.echo = "{}"
    await subscribe(hub, subscribers, "pad", topic)  # the same callback, echoing exactly


MALFORMED_URLS = ["http://[::1/x", "http://127.0.0.1:70000/x"]


@pytest.mark.parametrize("url", MALFORMED_URLS)
@pytest.mark.parametrize("field", ["hub.callback", "hub.topic", "hub.url"])
async def test_malformed_urls_get_400_with_reason(hub, subscribers, field, url):
    """An unbalanced IPv6 bracket or a port over 65535 is a bad request, not a server error."""
    if field == "hub.url":
        params = {"hub.mode": "publish", "hub.url": url}
    else:
        params = {
            "hub.mode": "subscribe",
            "hub.callback": subscribers.callback_url("m"),
            "hub.topic": topic_url(subscribers),
            field: url,
        }
    r = await hub.post(**params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith(f"{field} is not a valid URL"), r.text
    client = sync_redis.Redis.from_url(hub.settings.redis_url)
    assert client.xlen(f"{hub.settings.key_prefix}:websub:intents") == 0
    client.close()
    assert subscribers.cb("m").verifications == []
