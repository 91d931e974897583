"""A role's start-up runs with the collector paused (`fnhub.heap`): it must come back on when
start-up ends, and as soon as the role has to wait for a service (a wait may last hours)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port

from fnhub import heap
from fnhub.config import Settings
from fnhub.waiting import wait_for_redis


@pytest.fixture
def collector() -> Iterator[None]:
    """Whatever a test does to the collector is undone."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.enable()


def test_freezing_ends_the_start_up_pause(collector: None) -> None:
    heap.pause_for_startup()
    assert not gc.isenabled()
    heap.freeze_startup_objects()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == heap.GC_THRESHOLDS


def test_a_role_that_must_wait_for_redis_collects_meanwhile(
    collector: None, tmp_path: Path
) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", data_dir=tmp_path)
    heap.pause_for_startup()
    tries: list[bool] = []

    def stopped() -> bool:  # one failed try, then the wait ends
        tries.append(gc.isenabled())
        return len(tries) > 1

    assert wait_for_redis(settings, stopped) is False
    assert tries[0] is False  # paused before the first try
    assert tries[1:] and all(tries[1:])  # on again once it failed
