"""`/metrics` for the hub: notifications published, delivered, failed attempts, dead letters and
the publish-to-delivery latency histogram move with real deliveries to real callbacks."""

from __future__ import annotations

import re

from .harness import eventually
from .test_conformance import subscribe, topic_url
from .test_delivery import fat_publish


def _value(text: str, name: str, **labels: str) -> float:
    wanted = re.escape(",".join(f'{k}="{v}"' for k, v in labels.items()))
    pattern = rf"{name}(?:\{{{wanted}\}})? (\S+)" if wanted else rf"{name} (\S+)"
    for line in text.splitlines():
        match = re.fullmatch(pattern, line)
        if match:
            return float(match[1])
    raise AssertionError(f"no sample {name}{labels} in /metrics")


async def _metrics(hub) -> str:
    r = await hub.http.get("/metrics")
    assert r.status_code == 200
    return r.text


async def test_hub_series_move_with_deliveries(hub, subscribers):
    before = await _metrics(hub)
    topic = topic_url(subscribers)
    flaky = await subscribe(hub, subscribers, "m-flaky", topic)
    flaky.statuses = [500]  # one failed attempt, then delivered
    down_topic = topic_url(subscribers, "m-down")
    down = await subscribe(hub, subscribers, "m-down", down_topic)
    down.down = True  # every attempt fails: a dead letter
    for i in range(3):
        await fat_publish(hub, topic, f"n{i}")
    await fat_publish(hub, down_topic, "lost")
    await eventually(lambda: len(flaky.notices) == 3)
    attempts = hub.settings.websub_retry_max_attempts

    async def settled() -> str | None:
        text = await _metrics(hub)
        ok = (
            _value(text, "fnhub_websub_dead_letters_total") >= 1
            and _value(text, "fnhub_websub_delivery_seconds_count") >= 3
        )
        return text if ok else None

    text = await eventually(settled)
    moved = {
        name: _value(text, name) - _value(before, name)
        for name in (
            "fnhub_websub_published_total",
            "fnhub_websub_deliveries_total",
            "fnhub_websub_delivery_failures_total",
            "fnhub_websub_dead_letters_total",
            "fnhub_websub_delivery_seconds_count",
        )
    }
    assert moved == {
        "fnhub_websub_published_total": 4,
        "fnhub_websub_deliveries_total": 3,
        "fnhub_websub_delivery_failures_total": 1 + attempts,
        "fnhub_websub_dead_letters_total": 1,
        "fnhub_websub_delivery_seconds_count": 3,
    }
    assert _value(text, "fnhub_websub_delivery_seconds_bucket", le="+Inf") == _value(
        text, "fnhub_websub_delivery_seconds_count"
    )
    assert 0 < _value(text, "fnhub_websub_delivery_seconds_sum") < 30
    assert "m-flaky" not in text and "/topic/" not in text  # no URL ever becomes a label
