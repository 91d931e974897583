"""Cron expressions: seconds field, timezones, DST, and clear errors for bad input."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from fnhub.cron.schedule import CronExpressionError, Schedule

BERLIN = ZoneInfo("Europe/Berlin")


def walk(expr: str, tz: str, start: datetime, n: int) -> list[str]:
    schedule = Schedule(expr, tz)
    tick = int(start.timestamp())
    out = []
    for _ in range(n):
        tick = schedule.next_after(tick)
        out.append(datetime.fromtimestamp(tick, ZoneInfo(tz)).isoformat())
    return out


def test_seconds_field_comes_first() -> None:
    schedule = Schedule("*/15 * * * * *", "UTC")
    assert schedule.next_after(1_700_000_000) == 1_700_000_010  # :20 → :30 is 1_700_000_010
    assert schedule.next_after(1_700_000_010) == 1_700_000_025


def test_five_fields_fire_on_minutes() -> None:
    assert Schedule("*/5 * * * *", "UTC").next_after(1_700_000_000) == 1_700_000_100


def test_timezone_shifts_the_wall_clock() -> None:
    start = datetime(2024, 6, 1, tzinfo=ZoneInfo("UTC"))
    tokyo = Schedule("0 9 * * *", "Asia/Tokyo").next_after(int(start.timestamp()))
    assert datetime.fromtimestamp(tokyo, ZoneInfo("UTC")).isoformat() == "2024-06-02T00:00:00+00:00"


def test_spring_forward_fires_once_at_the_first_valid_time() -> None:
    got = walk("30 2 * * *", "Europe/Berlin", datetime(2024, 3, 29, 12, tzinfo=BERLIN), 3)
    assert got == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",  # 02:30 does not exist that night
        "2024-04-01T02:30:00+02:00",
    ]


def test_fall_back_fixed_hour_fires_once() -> None:
    got = walk("30 2 * * *", "Europe/Berlin", datetime(2024, 10, 25, 12, tzinfo=BERLIN), 3)
    assert got == [
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",  # not again at 02:30+01:00
        "2024-10-28T02:30:00+01:00",
    ]


def test_fall_back_wildcard_hour_runs_every_real_hour() -> None:
    got = walk("0 * * * *", "Europe/Berlin", datetime(2024, 10, 27, 0, 30, tzinfo=BERLIN), 4)
    assert got == [
        "2024-10-27T01:00:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]


def test_last_missed_tick() -> None:
    schedule = Schedule("*/10 * * * * *", "UTC")
    assert schedule.last_at_or_before(1_700_000_055, 1_700_000_000) == 1_700_000_050
    assert schedule.last_at_or_before(1_700_000_005, 1_700_000_000) is None


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("61 * * * *", "out of range"),
        ("* * *", "has 3 fields; expected 5"),
        ("* * * * * * * *", "has 8 fields"),
        ("0 0 31 2 *", "never fires"),
        ("every minute a b c", "invalid cron expression"),
        ("", "empty"),
    ],
)
def test_bad_expressions_say_why(expr: str, reason: str) -> None:
    with pytest.raises(CronExpressionError, match=reason):
        Schedule(expr, "UTC")


def test_unknown_timezone() -> None:
    with pytest.raises(CronExpressionError, match="unknown timezone 'Mars/Olympus'"):
        Schedule("* * * * *", "Mars/Olympus")
