"""A role's start-up runs with the collector paused (`fnhub.heap`): it must come back on when
start-up ends, and as soon as the role has to wait for a service (a wait may last hours). Each
long-lived role, started as the cluster starts it, froze its start-up with no collection."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import REDIS_URL, call_ok, free_port, wait_for
from tests.project_cli import stop

from fnhub import heap
from fnhub.calling.queue_client import QueueClient
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


def test_a_start_up_that_never_freezes_gets_the_collector_back(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net: a role that fails to reach its freeze does not run on without it."""
    monkeypatch.setattr(heap, "SAFETY_SECONDS", 0.2)
    heap.pause_for_startup()
    assert not gc.isenabled()
    wait_for(gc.isenabled, timeout=30)


GC_PROBE = textwrap.dedent(
    """
    import gc

    import fnhub


    @fnhub.api()
    def collector():
        return {
            "enabled": gc.isenabled(),
            "frozen": gc.get_freeze_count(),
            "threshold": list(gc.get_threshold()),
            "full_collections": gc.get_stats()[2]["collections"],
        }
    """
)
FROZEN = re.compile(
    r"start-up objects frozen: (\d+); collector on: (\w+), thresholds \(([\d, ]+)\); "
    r"collections while paused: (\w+)"
)


def _frozen_line(log: Path) -> tuple[int, bool, tuple[int, ...], str] | None:
    found = FROZEN.search(log.read_text())
    if found is None:
        return None
    frozen, on, thresholds, collections = found.groups()
    return int(frozen), on == "True", tuple(map(int, thresholds.split(", "))), collections


def test_every_role_froze_its_start_up_without_a_collection_and_collects_again(
    settings: Settings, services, publish, client: QueueClient, tmp_path: Path
) -> None:
    """`fnhub server`, `worker` and `beat` as the cluster starts them (`-v`: their debug line
    says what they froze), and a worker child (forked by the fork server, which froze what it
    imported): no full collection in its whole life up to its first task."""
    publish({"probe": GC_PROBE})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_KEY_PREFIX=settings.key_prefix,
        FNHUB_DB_URL=settings.db_url or "",
        FNHUB_DATA_DIR=str(settings.data_dir),
        FNHUB_PORT=str(free_port()),
        FNHUB_PROCESSES="1",
        FNHUB_ACCESS_LOG="false",
    )
    started = {}
    try:
        for role in ("server", "worker", "beat"):
            with open(tmp_path / f"{role}.log", "ab") as log:
                started[role] = subprocess.Popen(
                    [sys.executable, "-c", "from fnhub.cli import main; main()", role, "-v"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        lines = {
            role: wait_for(lambda r=role: _frozen_line(tmp_path / f"{r}.log"), timeout=90)
            for role in started
        }
        wait_for(client.workers, timeout=60)
        child = call_ok(client, "probe.collector", timeout=60).result
    finally:
        for process in started.values():
            stop(process)
    for role, (frozen, on, thresholds, collections) in lines.items():
        assert (on, thresholds, collections) == (True, heap.GC_THRESHOLDS, "0"), role
        assert frozen > 0, role
    assert child["enabled"] and child["frozen"] > 0
    assert tuple(child["threshold"]) == heap.GC_THRESHOLDS
    assert child["full_collections"] == 0  # neither in the fork server nor in the child
