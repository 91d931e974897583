"""Hub counters: per process (with recent publish-to-delivery latencies) and cluster-wide."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Metrics:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=10_000)  # seconds, publish → 2xx
        self.started = time.time()

    def delivered(self, published_at: float) -> None:
        self.counters["delivered"] += 1
        self.latencies.append(max(0.0, time.time() - published_at))

    def snapshot(self) -> dict[str, Any]:
        lat = list(self.latencies)
        p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
        return {
            "uptime_seconds": round(time.time() - self.started, 1),
            **dict(self.counters),
            "latency_ms_p50": round(p50 * 1000, 2) if p50 is not None else None,
            "latency_ms_p99": round(p99 * 1000, 2) if p99 is not None else None,
        }
