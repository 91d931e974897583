"""Supervised loops: restarted after an unexpected error, counted in Redis, stopped at once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fnhub import supervised
from fnhub.keys import Keys
from fnhub.redis_client import async_redis
from fnhub.supervised import (
    RestartCounter,
    restart_counter,
    run_restarting,
    spawn,
    start_thread,
    supervise,
)


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervised, "MIN_DELAY_SECONDS", 0.02)


async def test_a_failing_loop_is_restarted_and_counted_in_redis(settings, fast) -> None:
    keys = Keys(settings.key_prefix)
    client = async_redis(settings)
    counter = RestartCounter(keys.loop_restarts, client)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("boom")

    try:
        await asyncio.wait_for(supervise("flaky", flaky, counter=counter), 5)
        assert runs == 3
        assert counter.counts == {"flaky": 2}
        assert await client.hget(keys.loop_restarts, "flaky") == b"2"
    finally:
        await client.aclose()


async def test_a_stray_cancelled_error_restarts_but_a_cancel_stops(fast) -> None:
    """A CancelledError from inside the loop (a future it awaited was cancelled) is a failure;
    cancelling the loop's own task ends it."""
    counter = RestartCounter()
    runs = 0

    async def stray() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise asyncio.CancelledError
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise("stray", stray, counter=counter))
    while runs < 2:
        await asyncio.sleep(0.01)
    assert counter.counts == {"stray": 1}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_loops_started_under_a_counter_report_to_it(settings, fast) -> None:
    """The server sets the counter once; tasks started below it (and theirs) inherit it."""
    counter = RestartCounter()
    restart_counter.set(counter)
    failed = asyncio.Event()

    async def inner() -> None:
        if not failed.is_set():
            failed.set()
            raise ValueError("once")

    async def outer() -> None:
        await spawn("inner", inner)

    await asyncio.wait_for(spawn("outer", outer), 5)
    assert counter.counts == {"inner": 1}


async def test_cancelling_stops_a_loop_in_its_backoff_and_while_it_runs(settings) -> None:
    async def failing() -> None:
        raise RuntimeError("always")

    task = spawn("failing", failing)  # MIN_DELAY_SECONDS: half a second of backoff at first
    await asyncio.sleep(0.05)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.1

    task = spawn("idle", lambda: asyncio.sleep(3600))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_threads_restart_stop_promptly_and_keep_counts_redis_missed(settings, fast) -> None:
    keys = Keys(settings.key_prefix)
    client = redis.Redis.from_url(settings.redis_url)
    nowhere = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    counter = RestartCounter(keys.loop_restarts, nowhere)
    stop = threading.Event()
    runs: list[float] = []

    def target() -> None:
        runs.append(time.monotonic())
        raise OSError("not what the loop handles")

    thread = start_thread("thready", target, stopped=stop.is_set, counter=counter)
    try:
        assert _eventually(lambda: len(runs) >= 3)
        assert counter.counts["thready"] >= 2
        assert client.hget(keys.loop_restarts, "thready") is None  # Redis was unreachable
        counter.client = client  # Redis is back: what was missed goes with the next restart
        seen = counter.counts["thready"]
        assert _eventually(lambda: int(client.hget(keys.loop_restarts, "thready") or 0) > seen)
    finally:
        stop.set()
        thread.join(2)
    assert not thread.is_alive()
    assert seen < int(client.hget(keys.loop_restarts, "thready")) <= counter.counts["thready"]
    client.close()


def test_a_thread_in_a_long_backoff_stops_within_a_tenth_of_a_second() -> None:
    stop = threading.Event()

    def failing() -> None:
        raise RuntimeError("always")

    thread = threading.Thread(
        target=run_restarting,
        args=("slow", failing),
        kwargs={"stopped": stop.is_set, "counter": RestartCounter(), "max_delay": 30},
    )
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
    assert time.monotonic() - started < 0.3


def test_a_loop_that_returns_is_done() -> None:
    counter = RestartCounter()
    calls = []
    run_restarting("once", lambda: calls.append(1), stopped=lambda: False, counter=counter)
    assert calls == [1] and not counter.counts


def _eventually(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
