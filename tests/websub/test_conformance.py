"""The checks of the websub.rocks hub tests 100-106, applied to the real hub over HTTP.

Every test checks what websub.rocks checks: the subscription request is answered exactly 202;
the verification GET carries hub.mode, hub.topic, hub.challenge and (subscribe) hub.lease_seconds;
the notification has the topic's body and Content-Type, a `Link` with rel=hub equal to the hub
URL and rel=self equal to the topic, and a valid signature exactly when a secret was given.
"""

from __future__ import annotations

import asyncio
import re
import uuid

from fnhub.websub.signing import verify

from .harness import Callback, Subscribers, eventually


def topic_url(subs: Subscribers, name: str | None = None) -> str:
    return f"{subs.url}/topic/{name or uuid.uuid4().hex[:8]}"


def links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]*)>;\s*rel="([^"]+)"', header)}


async def subscribe(hub, subs: Subscribers, name: str, topic: str, **extra: str) -> Callback:
    cb = subs.cb(name)
    before = len(cb.verifications)
    r = await hub.post(
        **{"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": subs.callback_url(name)},
        **extra,
    )
    assert r.status_code == 202, r.text
    await eventually(lambda: len(cb.verifications) > before)
    v = cb.verifications[-1]
    assert v["hub.mode"] == "subscribe"
    assert v["hub.topic"] == topic
    assert v["hub.challenge"]
    assert int(v["hub.lease_seconds"]) > 0
    callback = subs.callback_url(name)

    async def listed() -> bool:  # applied: the verification's answer is written after it
        return any(s["callback"] == callback for s in await hub.subscriptions(topic=topic))

    await eventually(listed)
    return cb


async def publish_topic(hub, subs: Subscribers, topic: str, body: bytes, ctype: str) -> None:
    subs.topics[topic.rsplit("/", 1)[1]] = (body, ctype)
    r = await hub.post(**{"hub.mode": "publish", "hub.topic": topic})
    assert r.status_code == 202, r.text


def check_notice(cb: Callback, hub, topic: str, body: bytes, ctype: str, secret: str | None):
    n = cb.notices[-1]
    assert n.body == body
    assert n.headers["content-type"] == ctype
    rels = links(n.headers["link"])
    assert rels["hub"] == hub.url
    assert rels["self"] == topic
    if secret is None:
        assert "x-hub-signature" not in n.headers
    else:
        assert verify(secret, n.body, n.headers["x-hub-signature"])
        assert not verify(secret + "x", n.body, n.headers["x-hub-signature"])


async def test_100_typical_subscriber(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "s100", topic)
    await publish_topic(hub, subscribers, topic, b"<p>hello 100</p>", "text/html; charset=utf-8")
    await eventually(lambda: cb.notices)
    check_notice(cb, hub, topic, b"<p>hello 100</p>", "text/html; charset=utf-8", None)


async def test_101_subscriber_with_secret(hub, subscribers):
    topic = topic_url(subscribers)
    secret = uuid.uuid4().hex[:20]
    cb = await subscribe(hub, subscribers, "s101", topic, **{"hub.secret": secret})
    await publish_topic(hub, subscribers, topic, b"signed content", "text/plain")
    await eventually(lambda: cb.notices)
    assert cb.notices[-1].headers["x-hub-signature"].startswith("sha256=")
    check_notice(cb, hub, topic, b"signed content", "text/plain", secret)


async def test_102_extra_parameters_ignored(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "s102", topic, foo="bar", **{"hub.foo": "hub.bar"})
    await publish_topic(hub, subscribers, topic, b"extra", "text/plain")
    await eventually(lambda: cb.notices)
    check_notice(cb, hub, topic, b"extra", "text/plain", None)


async def test_103_resubscribe_updates_in_place(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "s103", topic, **{"hub.lease_seconds": "600"})
    first = (await hub.subscriptions(topic=topic))[0]
    await publish_topic(hub, subscribers, topic, b"one", "text/plain")
    await eventually(lambda: len(cb.notices) == 1)
    secret = "new-secret"
    await subscribe(hub, subscribers, "s103", topic, **{"hub.secret": secret})
    await eventually(lambda: hub.subscriptions(topic=topic), timeout=5)
    await eventually(lambda: _signed(hub, topic))
    subs_now = await hub.subscriptions(topic=topic)
    assert [s["id"] for s in subs_now] == [first["id"]]  # the same row, updated
    assert subs_now[0]["lease_seconds"] != first["lease_seconds"]
    await publish_topic(hub, subscribers, topic, b"two", "text/plain")
    await eventually(lambda: len(cb.notices) == 2)
    await asyncio.sleep(0.5)
    assert cb.bodies() == [b"one", b"two"]  # exactly one notification after re-subscribing
    check_notice(cb, hub, topic, b"two", "text/plain", secret)


async def _signed(hub, topic: str) -> bool:
    return all(s["signed"] for s in await hub.subscriptions(topic=topic))


async def test_104_unsubscribe(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "s104", topic)
    r = await hub.post(
        **{
            "hub.mode": "unsubscribe",
            "hub.topic": topic,
            "hub.callback": subscribers.callback_url("s104"),
        }
    )
    assert r.status_code == 202
    await eventually(lambda: len(cb.verifications) == 2)
    v = cb.verifications[-1]
    assert v["hub.mode"] == "unsubscribe" and v["hub.topic"] == topic and v["hub.challenge"]
    await eventually(lambda: _none(hub, topic))
    await publish_topic(hub, subscribers, topic, b"after unsubscribe", "text/plain")
    await asyncio.sleep(1.5)  # websub.rocks waits 15 s; delivery here takes milliseconds
    assert cb.notices == []


async def _none(hub, topic: str) -> bool:
    return await hub.subscriptions(topic=topic) == []


async def test_105_plaintext_topic(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "s105", topic)
    await publish_topic(hub, subscribers, topic, b"plain text content\n", "text/plain")
    await eventually(lambda: cb.notices)
    check_notice(cb, hub, topic, b"plain text content\n", "text/plain", None)


async def test_106_json_topic(hub, subscribers):
    topic = topic_url(subscribers)
    cb = await subscribe(hub, subscribers, "s106", topic)
    body = b'{"type":"entry","content":"json topic"}'
    await publish_topic(hub, subscribers, topic, body, "application/json")
    await eventually(lambda: cb.notices)
    check_notice(cb, hub, topic, body, "application/json", None)
