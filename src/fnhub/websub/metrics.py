"""Hub counters: per process (with recent publish-to-delivery latencies) and cluster-wide, and
the hub's series in `/metrics`.

Cluster-wide counters are the hash `keys.websub_metrics`, which deliverers and publishers add to
with the writes they make anyway; the delivery latency histogram is counted in memory
(`fnhub.ops_stats`, kind `wl`) and added to `keys.stats` with the server's other counts. No
labels: topics and callbacks are free-form URLs."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from fnhub.ops_stats import Counts
from fnhub.redis_replies import as_hash
from fnhub.server.metric_families import StatsView, latency_histogram

if TYPE_CHECKING:
    from fnhub.server.context import ServerContext


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Metrics:
    def __init__(self, counts: Counts | None = None) -> None:
        self.cluster_counts = counts  # for /metrics, added to `keys.stats` by the server
        self.counters: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=10_000)  # seconds, publish → 2xx
        self.started = time.time()

    def delivered(self, published_at: float) -> None:
        self.counters["delivered"] += 1
        latency = max(0.0, time.time() - published_at)
        self.latencies.append(latency)
        if self.cluster_counts is not None:
            self.cluster_counts.observe("wl", "", latency)

    def snapshot(self) -> dict[str, Any]:
        lat = list(self.latencies)
        p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
        return {
            "uptime_seconds": round(time.time() - self.started, 1),
            **dict(self.counters),
            "latency_ms_p50": round(p50 * 1000, 2) if p50 is not None else None,
            "latency_ms_p99": round(p99 * 1000, 2) if p99 is not None else None,
        }


#: `keys.websub_metrics` field → (series, help)
CLUSTER_COUNTERS = {
    "published": ("fnhub_websub_published", "Notifications stored for their subscribers"),
    "delivered": ("fnhub_websub_deliveries", "Notifications delivered (answered 2xx)"),
    "failed_attempts": (
        "fnhub_websub_delivery_failures",
        "Delivery attempts that failed (non-2xx, refused, timed out); retried with backoff",
    ),
    "dead_lettered": (
        "fnhub_websub_dead_letters",
        "Notifications given up after the retry limits, kept as dead letters",
    ),
    "verification_errors": (
        "fnhub_websub_verification_errors",
        "(Un)subscription requests given up after unexpected verification errors "
        "(listed by `fnhub websub failed`)",
    ),
}


async def prometheus(ctx: ServerContext, view: StatsView) -> list[Metric]:
    """The hub's series in `/metrics` (`ServerParts.metrics`)."""
    raw = as_hash(await ctx.redis.hgetall(ctx.keys.websub_metrics))
    families: list[Metric] = []
    for field, (name, documentation) in CLUSTER_COUNTERS.items():
        family = CounterMetricFamily(name, documentation)
        family.add_metric([], int(raw.get(field.encode(), 0)))
        families.append(family)
    families.append(
        latency_histogram(
            "fnhub_websub_delivery_seconds",
            "Time from a notification's publish to its delivery (2xx)",
            [],
            view,
            "wl",
        )
    )
    return families
