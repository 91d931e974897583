"""The subscriptions' series in `/metrics`, the same from any server.

Counters are cluster-wide: each server's manager adds what its runners counted to `keys.stats`
every second (`sub|<name>|received|handled|failed|dropped`), so a server that died keeps its
share. Gauges come from the live servers' status snapshots (`keys.subscription_status`): in
flight is summed over the servers (each reads its own share); lag is summed where each server
reports its own share (Kafka: its assigned partitions), else the largest any reports (a Redis
Streams group's lag, the same from every member); absent where the connector cannot tell it.
Labelled by subscription name: configured names only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import orjson
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import select

from fnhub.server.context import ServerContext
from fnhub.server.metric_families import StatsView, counter
from fnhub.subscriptions.manager import STATUS_STALE_SECONDS
from fnhub.subscriptions.models import Subscription

COUNTERS = {
    "received": "Messages read from the broker",
    "handled": "Messages settled by the handler, whatever the outcome",
    "failed": "Handled messages whose task failed (failure, timeout, expired, dead) or whose "
    "handler raised (left unacked for redelivery)",
    "dropped": "Messages dropped by buffers that cannot push back (Redis pub/sub, MQTT QoS 0)",
}


def _names(ctx: ServerContext) -> list[str]:
    with ctx.db.session() as session:
        return list(session.execute(select(Subscription.name)).scalars())


async def metrics(ctx: ServerContext, view: StatsView) -> Iterable[Metric]:
    counts = view.counts("sub", 2)
    names = sorted(await asyncio.to_thread(_names, ctx))
    families: list[Metric] = []
    for what, documentation in COUNTERS.items():
        # every configured subscription from 0; one removed keeps its series until forgotten
        samples: dict[tuple[str, ...], int] = {(name,): 0 for name in names}
        samples.update({(sub,): n for (sub, kind), n in counts.items() if kind == what})
        families.append(
            counter(f"fnhub_subscription_{what}", documentation, ["subscription"], samples)
        )
    pipe = ctx.redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(ctx.keys.subscription_status(name))
    raws = await pipe.execute() if names else []
    in_flight = GaugeMetricFamily(
        "fnhub_subscription_in_flight",
        "Messages read and not yet settled, summed over the servers",
        labels=["subscription"],
    )
    lag = GaugeMetricFamily(
        "fnhub_subscription_lag",
        "Messages in the broker not yet delivered to the subscription's handler (Redis "
        "Streams, Kafka); absent where the connector cannot tell",
        labels=["subscription"],
    )
    now = time.time()
    for name, raw in zip(names, raws, strict=True):
        views = [orjson.loads(v) for v in raw.values()]
        sources = [
            v.get("source") or {} for v in views if now - v.get("at", 0) < STATUS_STALE_SECONDS
        ]
        in_flight.add_metric([name], sum(int(s.get("in_flight") or 0) for s in sources))
        lags = [int(s["lag"]) for s in sources if s.get("lag") is not None]
        if lags:  # a share per member (Kafka partitions) adds up; a group's lag is the same
            shared = any(s.get("lag_per_member") for s in sources)
            lag.add_metric([name], sum(lags) if shared else max(lags))
    families += [in_flight, lag]
    return families
