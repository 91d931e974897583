"""`fnhub.backoff.Backoff`: the pauses every retry loop takes."""

from __future__ import annotations

import pytest

from fnhub.backoff import REDIS_RETRY_CAP_SECONDS, Backoff, redis_retry


def test_pauses_double_up_to_the_cap_each_in_the_upper_half() -> None:
    backoff = Backoff(initial=0.1, cap=1.0)
    nominal = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for delay in nominal:
        pause = backoff.next()
        assert delay / 2 <= pause <= delay


def test_pauses_are_spread_so_retries_do_not_come_in_step() -> None:
    pauses = {Backoff(initial=1.0, cap=1.0).next() for _ in range(50)}
    assert len(pauses) > 40
    assert min(pauses) < 0.75 < max(pauses)


def test_reset_starts_over_and_a_factor_other_than_two_is_kept() -> None:
    backoff = Backoff(initial=0.1, cap=10.0, factor=3.0)
    for _ in range(3):
        backoff.next()
    assert backoff.nominal() == pytest.approx(2.7)
    backoff.reset()
    assert backoff.nominal() == pytest.approx(0.1)


def test_many_failures_stay_at_the_cap() -> None:
    backoff = Backoff(initial=0.2, cap=30.0)
    for _ in range(10_000):
        backoff.next()
    assert backoff.nominal() == 30.0


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"initial": 2.0, "cap": 1.0}, {"factor": 0.5}])
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="bad backoff"):
        Backoff(**kwargs)


def test_redis_retry_never_pauses_past_a_second_however_long_redis_is_away() -> None:
    backoff = redis_retry()
    pauses = [backoff.next() for _ in range(100)]
    assert pauses[0] <= 0.1
    assert max(pauses) <= REDIS_RETRY_CAP_SECONDS == 1.0
    assert min(pauses[10:]) >= 0.5  # still spread, never a tight loop
