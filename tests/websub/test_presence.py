"""A hub server's presence entry counts the WebSub subscriptions it delivers (its claims), so
`fnhub cluster` and the console's Cluster page say where they are held; an unsubscribe gives
one back."""

from __future__ import annotations

from .harness import eventually
from .test_conformance import subscribe, topic_url


async def test_the_cluster_shows_each_servers_delivery_claims(hub, subscribers):
    topics = [topic_url(subscribers) for _ in range(2)]
    for name, topic in zip(("a", "b"), topics, strict=True):
        await subscribe(hub, subscribers, name, topic)

    async def claims() -> list[int]:
        auth = {"Authorization": f"Bearer {hub.token}"}
        answer = await hub.http.get("/api/v1/cluster", headers=auth)
        assert answer.status_code == 200, answer.text
        return [s["websub_claims"] for s in answer.json()["servers"]]

    await eventually(lambda: _equals(claims(), [2]), timeout=15)
    r = await hub.post(
        **{
            "hub.mode": "unsubscribe",
            "hub.topic": topics[0],
            "hub.callback": subscribers.callback_url("a"),
        }
    )
    assert r.status_code == 202, r.text
    await eventually(lambda: _equals(claims(), [1]), timeout=15)


async def _equals(value, expected) -> bool:
    return await value == expected
