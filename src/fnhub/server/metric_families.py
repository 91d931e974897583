"""Prometheus families built from `keys.stats`, read once per scrape: the server's and features'.

`/metrics` reads the hash once and hands the parsed `StatsView` to every feature's metrics
reader (`ServerParts.metrics`), which turns its own fields into families (and may read what else
it keeps, e.g. live gauges); see `fnhub.ops_stats` for how fields are named.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from fnhub.ops_stats import LATENCY_BOUNDS

if TYPE_CHECKING:
    from fnhub.server.context import ServerContext


class StatsView:
    """The fields of `keys.stats` by kind: kind → the rest of the field → raw value."""

    def __init__(self, raw: dict[bytes, bytes]) -> None:
        self.kinds: dict[str, dict[str, bytes]] = {}
        for key, value in raw.items():
            kind, _, rest = key.decode().partition("|")
            self.kinds.setdefault(kind, {})[rest] = value

    def counts(self, kind: str, labels: int) -> dict[tuple[str, ...], int]:
        """Fields of `kind` with `labels` labels → their counts. Only the first label may hold
        a "|" (the others are from fixed sets)."""
        out: dict[tuple[str, ...], int] = {}
        for rest, value in self.kinds.get(kind, {}).items():
            parts = tuple(rest.rsplit("|", labels - 1))
            if len(parts) == labels:
                out[parts] = int(value)
        return out

    def seconds(self, kind: str) -> dict[str, float]:
        return {rest: float(v) for rest, v in self.kinds.get(kind, {}).items()}


def counter(
    name: str, documentation: str, labels: Sequence[str], samples: dict[tuple[str, ...], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    for values, n in sorted(samples.items()):
        family.add_metric(list(values), n)
    return family


def latency_histogram(
    name: str, documentation: str, labels: Sequence[str], view: StatsView, kind: str
) -> HistogramMetricFamily:
    """The histogram `fnhub.ops_stats.Counts.observe` counted under `kind` (labels joined by
    "|" in its fields; none: one series)."""
    buckets: dict[str, dict[str, int]] = {}
    for rest, raw in view.kinds.get(f"{kind}b", {}).items():
        owner, _, bound = rest.rpartition("|")
        buckets.setdefault(owner, {})[bound] = int(raw)
    sums = view.seconds(f"{kind}s")
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    owners = set(buckets) | set(sums)
    if not labels:
        owners.add("")  # one series, there from the start
    for owner in sorted(owners):
        values = owner.rsplit("|", len(labels) - 1) if labels else []
        if len(values) != len(labels):
            continue
        cumulative, total = [], 0
        for bound in [*(str(b) for b in LATENCY_BOUNDS), "+Inf"]:
            total += buckets.get(owner, {}).get(bound, 0)
            cumulative.append((bound, total))
        family.add_metric(values, cumulative, sums.get(owner, 0.0))
    return family


#: a feature's part of `/metrics`: families from the scrape's `keys.stats` and its own reads
MetricsReader = Callable[["ServerContext", StatsView], Awaitable[Iterable[Metric]]]
