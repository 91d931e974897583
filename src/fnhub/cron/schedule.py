"""Cron expressions in a timezone → the epoch seconds they fire at (croniter does the calendar).

Expressions have 5 fields (minute hour day month weekday), or 6 with a leading seconds field
(`*/5 * * * * *` = every 5 seconds), or a croniter alias (`@hourly`). Ticks are whole epoch
seconds, so they compare exactly everywhere (Lua in Redis included).

Daylight-saving time follows cron's rule: a wall time that does not exist (spring forward) fires
at the first valid time after it; a wall time that happens twice (fall back) fires once when the
hour field is fixed (`30 2 * * *`), and by real time when it is a wildcard (`0 * * * *` still runs
every real hour).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter


class CronExpressionError(ValueError):
    """A cron expression or timezone that cannot be scheduled; the message says why."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`, or CronExpressionError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronExpressionError(
            f"unknown timezone {name!r} (expected an IANA name like 'UTC' or 'Europe/Berlin')"
        ) from exc


class Schedule:
    """One expression in one timezone, reusing one croniter iterator (behind a lock)."""

    __slots__ = ("_fixed_hour", "_iter", "_lock", "_memo_after", "_memo_next", "expr", "tz")

    def __init__(self, expr: str, timezone: str = "UTC") -> None:
        self.expr = " ".join(expr.split())
        self.tz = zone(timezone)
        fields = self.expr.split(" ")
        if not self.expr:
            raise CronExpressionError("empty cron expression")
        if not self.expr.startswith("@") and len(fields) not in (5, 6):
            raise CronExpressionError(
                f"cron expression {expr!r} has {len(fields)} fields; expected 5 "
                "(minute hour day month weekday) or 6 (second minute hour day month weekday)"
            )
        try:
            self._iter = croniter(
                self.expr, datetime.now(self.tz), second_at_beginning=len(fields) == 6
            )
            self._iter.get_next(float)
        except CroniterError as exc:
            reason = "it never fires" if "failed to find next date" in str(exc) else str(exc)
            raise CronExpressionError(f"invalid cron expression {expr!r}: {reason}") from exc
        hour = fields[-4] if len(fields) >= 5 else "*"
        self._fixed_hour = not hour.startswith("*")
        self._memo_after = -1
        self._memo_next = -1
        self._lock = threading.Lock()

    def next_after(self, after: int) -> int:
        """The first tick strictly after `after` (epoch seconds)."""
        with self._lock:
            if after == self._memo_after:  # alike jobs ask for the same tick in a row
                return self._memo_next
            self._iter.set_current(datetime.fromtimestamp(after, self.tz), force=True)
            tick = self._step(self._iter.get_next)
            self._memo_after, self._memo_next = after, tick
            return tick

    def last_at_or_before(self, when: int, after: int) -> int | None:
        """The latest tick in (after, when], or None: the one a `run_once` misfire fires."""
        with self._lock:
            self._iter.set_current(datetime.fromtimestamp(when + 1, self.tz), force=True)
            tick = self._step(self._iter.get_prev)
            self._memo_after = -1
        return tick if tick > after else None

    def _step(self, move: Callable[[type[float]], float]) -> int:
        while True:
            tick = int(move(float))
            if not (self._fixed_hour and datetime.fromtimestamp(tick, self.tz).fold == 1):
                return tick


@lru_cache(maxsize=4096)
def schedule(expr: str, timezone: str) -> Schedule:
    """A shared Schedule per (expression, timezone), so 10,000 alike jobs cost one calculation."""
    return Schedule(expr, timezone)


def validate(expr: str, timezone: str) -> None:
    """Raise CronExpressionError if `expr` in `timezone` cannot be scheduled."""
    schedule(" ".join(expr.split()), timezone)
