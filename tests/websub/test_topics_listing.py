"""`fnhub websub topics` (and `GET /api/v1/websub/topics`) on an open hub: a topic nobody
registered shows up as soon as it has a subscriber."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import yaml

from .test_conformance import subscribe, topic_url


async def _cli(settings, *args: str) -> str:
    project = settings.project_dir
    (project / "fnhub.yaml").write_text(
        yaml.safe_dump(
            {
                "settings": {
                    "redis_url": settings.redis_url,
                    "db_url": settings.db_url,
                    "key_prefix": settings.key_prefix,
                    "data_dir": str(settings.data_dir),
                }
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from fnhub.cli import main; main()",
        *args,
        "-p",
        str(project),
        env={**env, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_open_hub_lists_topics_with_subscribers(hub, subscribers) -> None:
    assert hub.settings.websub_open
    topic = topic_url(subscribers)
    await subscribe(hub, subscribers, "lister", topic)
    listed = json.loads(await _cli(hub.settings, "websub", "topics", "--json"))
    assert [(t["url"], t["registered"], t["subscribers"]) for t in listed] == [(topic, False, 1)]
    table = await _cli(hub.settings, "websub", "topics")
    assert topic in table
    api = (await hub.api("GET", "/topics")).json()
    assert [(t["url"], t["subscribers"]) for t in api] == [(topic, 1)]
    # a registered topic without subscribers is listed too, once, beside the other
    registered = topic_url(subscribers)
    assert (await hub.api("POST", "/topics", json={"url": registered})).status_code == 201
    listed = json.loads(await _cli(hub.settings, "websub", "topics", "--json"))
    assert sorted((t["url"], t["registered"], t["subscribers"]) for t in listed) == sorted(
        [(topic, False, 1), (registered, True, 0)]
    )


async def test_subscriptions_and_topics_come_a_page_at_a_time(hub, subscribers) -> None:
    """The console reads the hub's lists in pages: `limit`, then `after` the last one."""
    topics = [topic_url(subscribers) for _ in range(3)]
    for i, topic in enumerate(topics):
        await subscribe(hub, subscribers, f"pager{i}", topic)
    everything = await hub.subscriptions()
    first = await hub.subscriptions(limit="2")
    rest = await hub.subscriptions(limit="2", after=first[-1]["id"])
    assert [s["id"] for s in first + rest] == [s["id"] for s in everything]
    assert len(first) == 2 and len(rest) == len(everything) - 2
    assert await hub.subscriptions(after="no-such-subscription") == []
    listed = (await hub.api("GET", "/topics")).json()
    page = (await hub.api("GET", "/topics", params={"limit": 1})).json()
    after = (await hub.api("GET", "/topics", params={"after": page[0]["hash"]})).json()
    assert page + after == listed and len(page) == 1
    assert (await hub.api("GET", "/dead-letters", params={"before": 1})).json() == []
    assert (await hub.api("GET", "/subscriptions", params={"limit": 0})).status_code == 422
