"""Counters and histograms for `/metrics` counted in memory and added to `keys.stats` in batches.

What a server (HTTP requests, subscriptions, the WebSub hub) or a beat (cron ticks) counts per
event costs a dict update; a loop adds what was counted to the cluster-wide hash once a second
(`flush`, one pipeline), so no request or message pays a Redis round trip and any server's
`/metrics` shows the whole cluster. A flush that fails (Redis away) keeps its counts for the next.

Fields share `keys.stats` with the workers' counters (`fnhub.queue.ResultBatch.counters`):
`<kind>|<label>|...|<label>`; a histogram `<kind>` keeps `<kind>b|<labels>|<le>` (events at most
that bound, not cumulative) and `<kind>s|<labels>` (seconds summed). Labels are configured
names and fixed sets only, never free-form values, so the hash stays bounded.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any

from fnhub.minute_stats import RUN_BOUNDS

log = logging.getLogger(__name__)

#: bounds (seconds) of the latency histograms counted here: 1 ms ... 300 s, then "+Inf"
LATENCY_BOUNDS = RUN_BOUNDS[3:]
_BOUND_LABELS = (*(str(b) for b in LATENCY_BOUNDS), "+Inf")


class Counts:
    """Counts since the last flush: field → events, field → seconds."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    def add(self, field: str, n: int = 1) -> None:
        self.counts[field] = self.counts.get(field, 0) + n

    def observe(self, kind: str, labels: str, seconds: float) -> None:
        """One event of histogram `kind` with `labels` ("a|b"; "" for none) that took
        `seconds`."""
        seconds = max(seconds, 0.0)
        prefix = f"{kind}b|{labels}|" if labels else f"{kind}b|"
        self.add(prefix + _BOUND_LABELS[bisect.bisect_left(LATENCY_BOUNDS, seconds)])
        name = f"{kind}s|{labels}" if labels else f"{kind}s|"
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def take(self) -> tuple[dict[str, int], dict[str, float]]:
        counts, seconds = self.counts, self.seconds
        self.counts, self.seconds = {}, {}
        return counts, seconds

    def give_back(self, counts: dict[str, int], seconds: dict[str, float]) -> None:
        """Counts a failed flush took, kept for the next one."""
        for field, n in counts.items():
            self.add(field, n)
        for field, value in seconds.items():
            self.seconds[field] = self.seconds.get(field, 0.0) + value

    async def flush(self, redis: Any, key: str) -> None:
        """Add what was counted to `key` in one pipeline; on an error keep it and raise."""
        counts, seconds = self.take()
        if not counts and not seconds:
            return
        pipe = redis.pipeline(transaction=False)
        add_to(pipe, key, counts, seconds)
        try:
            await pipe.execute()
        except BaseException:
            self.give_back(counts, seconds)
            raise


def add_to(pipe: Any, key: str, counts: dict[str, int], seconds: dict[str, float]) -> None:
    for field, n in counts.items():
        pipe.hincrby(key, field, n)
    for field, value in seconds.items():
        pipe.hincrbyfloat(key, field, value)


def status_class(status: int) -> str:
    """`2xx` ... `5xx`: five values, whatever a handler answers."""
    return f"{min(max(status // 100, 1), 5)}xx"
