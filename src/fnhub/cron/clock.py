"""When one job fires: its expression by priority, a run-time override's expiry, the job's end.

Priority (as in DataFlux Func): an expression a script set at run time (until it expires) >
the function's `fixed_crontab` > the job's own `expr`.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from fnhub.cron.schedule import Schedule, schedule
from fnhub.cron.spec import CronJobSpec, expression_for
from fnhub.functions import FunctionInfo


class Dynamic(msgspec.Struct):
    """A run-time expression (hash `keys.cron_dynamic`), in force until `until` (None: always)."""

    expr: str
    until: float | None = None
    timezone: str | None = None


_dynamic_decoder = msgspec.json.Decoder(Dynamic)


def decode_dynamic(raw: bytes | str) -> Dynamic | None:
    try:
        return _dynamic_decoder.decode(raw)
    except msgspec.DecodeError:
        return None


@dataclass(slots=True)
class JobClock:
    base: Schedule
    source: str  # job | fixed_crontab
    override: Schedule | None = None
    until: float | None = None  # end of the override
    expires_at: float | None = None  # end of the job

    def next_after(self, after: int) -> int | None:
        """The job's first tick after `after`, or None once the job has expired."""
        tick = self._next(after)
        if self.expires_at is not None and tick >= self.expires_at:
            return None
        return tick

    def _next(self, after: int) -> int:
        if self.override is not None and (self.until is None or after < self.until):
            tick = self.override.next_after(after)
            if self.until is None or tick < self.until:
                return tick
            return self.base.next_after(max(after, int(self.until) - 1))
        return self.base.next_after(after)

    def expression_at(self, tick: int) -> str:
        if self.override is not None and (self.until is None or tick < self.until):
            return self.override.expr
        return self.base.expr

    def last_missed(self, before: int, after: int) -> int | None:
        """The latest tick in (after, before] (for `misfire: run_once`)."""
        use = self.override if self.override is not None and self.until is None else self.base
        return use.last_at_or_before(before, after)


def clock_for(
    spec: CronJobSpec,
    info: FunctionInfo | None,
    dynamic: Dynamic | None,
    default_timezone: str,
    now: float,
) -> JobClock:
    """Raises CronExpressionError if the expression in force cannot be scheduled."""
    timezone = spec.timezone or default_timezone
    expr, source = expression_for(spec.expr, info)
    if not expr:
        raise ValueError(f"cron job '{spec.id}' has no expression")
    clock = JobClock(schedule(expr, timezone), source, expires_at=spec.expires_at)
    if dynamic is not None and (dynamic.until is None or dynamic.until > now):
        clock.override = schedule(dynamic.expr, dynamic.timezone or timezone)
        clock.until = dynamic.until
        clock.source = "dynamic"
    return clock
