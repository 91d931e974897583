"""Per-function task counts and run times per minute, for the console's last hour.

Workers add them in the same atomic call that acknowledges a batch (`queue.FINISH`), into one
hash per minute, `keys.stats_minute(epoch minute)`: `n|<function>|<status>` → tasks and
`b|<function>|<bucket>` → tasks whose run time (ms) was at most the bucket's bound. Each hash
expires after `MINUTE_TTL_SECONDS`, so the keys stay bounded (about 65 hashes, each at most
functions * (statuses + buckets) fields) however long the cluster runs.

`HourWindow` reads them for a server: a minute that is over is read once and kept; only the
current minute (and the one before, for a few seconds, while late batches land) is read again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fnhub.keys import Keys

WINDOW_MINUTES = 60
MINUTE_TTL_SECONDS = 65 * 60
#: a minute's hash may still grow this long after the minute ended (batches flushed late)
SETTLE_SECONDS = 10
#: upper bounds (seconds) of the run-time buckets: 1-2.5-5 steps (so a percentile read from
#: them is off by less than a step) from 0.1 ms; past the last one, "+Inf". `/metrics`' queue
#: histogram uses those from 5 ms on (`queue.RUN_BUCKETS`), so one bisect serves both.
RUN_BOUNDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
RUN_BUCKETS_MS = tuple(round(b * 1000, 4) for b in RUN_BOUNDS)
#: field labels of the buckets in the minute hashes: the bound in ms
BUCKET_LABELS = (*(f"{b:g}" for b in RUN_BUCKETS_MS), "+Inf")
_BOUND_OF = {label: i for i, label in enumerate(BUCKET_LABELS)}
#: the outcomes counted as failures on the overview
FAILED = frozenset({"failure", "timeout", "dead"})


def minute_of(at: float) -> int:
    return int(at // 60)


def percentiles(buckets: dict[int, int], qs: tuple[float, ...]) -> list[float | None]:
    """The q-quantiles (0..1, ascending) in ms of a bucket histogram (bucket index → tasks),
    each interpolated linearly inside its bucket; None without tasks."""
    total = sum(buckets.values())
    if not total:
        return [None] * len(qs)
    found: list[float | None] = []
    seen = 0
    ranks = iter(q * total for q in qs)
    rank = next(ranks)
    for index in sorted(buckets):
        n = buckets[index]
        while n and seen + n >= rank:
            low = RUN_BUCKETS_MS[index - 1] if index > 0 else 0.0
            if index >= len(RUN_BUCKETS_MS):
                found.append(low)  # the open "+Inf" bucket: at least its lower bound
            else:
                high = RUN_BUCKETS_MS[index]
                found.append(round(low + (high - low) * ((rank - seen) / n), 3))
            following = next(ranks, None)
            if following is None:
                return found
            rank = following
        seen += n
    return found + [None] * (len(qs) - len(found))  # pragma: no cover - ranks <= total


def percentile(buckets: dict[int, int], q: float) -> float | None:
    return percentiles(buckets, (q,))[0]


@dataclass
class FunctionMinute:
    statuses: dict[str, int] = field(default_factory=dict)
    buckets: dict[int, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in FAILED)


@dataclass
class Minute:
    """One minute's hash, parsed: per function, statuses and run-time buckets."""

    functions: dict[str, FunctionMinute] = field(default_factory=dict)
    calls: int = 0
    failures: int = 0

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> Minute:
        minute = cls()
        for raw_field, raw_value in raw.items():
            kind, _, rest = raw_field.decode().partition("|")
            function, _, label = rest.rpartition("|")
            n = int(raw_value)
            stats = minute.functions.get(function)
            if stats is None:
                stats = minute.functions[function] = FunctionMinute()
            if kind == "n":
                stats.statuses[label] = stats.statuses.get(label, 0) + n
                minute.calls += n
                if label in FAILED:
                    minute.failures += n
            elif kind == "b" and label in _BOUND_OF:
                index = _BOUND_OF[label]
                stats.buckets[index] = stats.buckets.get(index, 0) + n
        return minute


@dataclass
class FunctionHour:
    """One function over the window: totals per status, run-time buckets."""

    function: str
    statuses: dict[str, int] = field(default_factory=dict)
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, stats: FunctionMinute, sign: int = 1) -> None:
        for status, n in stats.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + sign * n
        for index, n in stats.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + sign * n

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in FAILED)

    def summary(self) -> dict[str, Any]:
        p50, p95, p99 = percentiles(self.buckets, (0.50, 0.95, 0.99))
        return {
            "function": self.function,
            "calls": self.calls,
            "failures": self.failures,
            "statuses": {s: n for s, n in sorted(self.statuses.items()) if n},
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
        }


class HourWindow:
    """The last WINDOW_MINUTES minutes of per-function stats, kept current at the cost of one
    or two HGETALLs per refresh: settled minutes are read once, summed into `settled` as they
    come and taken out of it as they leave the window."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.minutes: dict[int, Minute] = {}
        self.settled: dict[int, Minute] = {}  # minutes no batch writes to any more
        self._settled_sum: dict[str, FunctionHour] = {}
        self._live: dict[int, Minute] = {}  # minutes batches may still write to
        self.current = 0  # the newest minute of the window

    async def refresh(self, redis: Any, now: float | None = None) -> None:
        now = time.time() if now is None else now
        current = minute_of(now)
        first = current - WINDOW_MINUTES + 1
        for minute in [m for m in self.settled if m < first]:
            self._add_settled(self.settled.pop(minute), -1)
        settled_before = minute_of(now - SETTLE_SECONDS)  # minutes < this one are settled
        wanted = [
            m
            for m in range(first, current + 1)
            if m not in self.settled  # unsettled, or settled but not read since it settled
        ]
        pipe = redis.pipeline(transaction=False)
        for minute in wanted:
            pipe.hgetall(self.keys.stats_minute(minute))
        raws = await pipe.execute() if wanted else []
        live: dict[int, Minute] = {}
        for minute, raw in zip(wanted, raws, strict=True):
            parsed = Minute.parse(raw)
            if minute < settled_before:
                self.settled[minute] = parsed
                self._add_settled(parsed, 1)
            else:
                live[minute] = parsed
        self.minutes = {**self.settled, **live}
        self._live = live
        self.current = current

    def _add_settled(self, minute: Minute, sign: int) -> None:
        for function, stats in minute.functions.items():
            hour = self._settled_sum.get(function)
            if hour is None:
                hour = self._settled_sum[function] = FunctionHour(function)
            hour.add(stats, sign)
            if sign < 0 and not any(hour.statuses.values()):
                del self._settled_sum[function]

    @property
    def first(self) -> int:
        return self.current - WINDOW_MINUTES + 1

    def calls_and_failures(self) -> dict[str, tuple[int, int]]:
        """function → (calls, failures) over the window, for every function with tasks."""
        totals = {f: (h.calls, h.failures) for f, h in self._settled_sum.items()}
        for minute in self._live.values():
            for function, stats in minute.functions.items():
                calls, failures = totals.get(function, (0, 0))
                totals[function] = (calls + stats.calls, failures + stats.failures)
        return totals

    def function(self, function: str) -> FunctionHour:
        """One function's totals and buckets over the window."""
        settled = self._settled_sum.get(function)
        if settled is None:
            hour = FunctionHour(function)
        else:
            hour = FunctionHour(function, dict(settled.statuses), dict(settled.buckets))
        for minute in self._live.values():
            stats = minute.functions.get(function)
            if stats is not None:
                hour.add(stats)
        return hour

    def functions(self, names: Iterable[str] | None = None) -> list[FunctionHour]:
        chosen = self.calls_and_failures() if names is None else names
        return [self.function(f) for f in sorted(chosen)]

    def series(self, function: str | None = None) -> tuple[list[int], list[int]]:
        """Calls and failures per minute over the window, oldest first (all functions, or one)."""
        calls, failures = [], []
        for m in range(self.first, self.current + 1):
            minute = self.minutes.get(m)
            if minute is None:
                calls.append(0)
                failures.append(0)
            elif function is None:
                calls.append(minute.calls)
                failures.append(minute.failures)
            else:
                stats = minute.functions.get(function)
                calls.append(stats.calls if stats else 0)
                failures.append(stats.failures if stats else 0)
        return calls, failures

    def minutes_axis(self) -> dict[str, int]:
        return {"start": self.first * 60, "step": 60, "count": WINDOW_MINUTES}


def top(totals: dict[str, tuple[int, int]], n: int) -> list[str]:
    """The n functions with most calls and the n with most failures (those with any)."""
    by_calls = sorted(totals, key=lambda f: (-totals[f][0], f))[:n]
    failing = [f for f in totals if totals[f][1]]
    by_failures = sorted(failing, key=lambda f: (-totals[f][1], f))[:n]
    return sorted(set(by_calls) | set(by_failures), key=lambda f: (-totals[f][0], f))
