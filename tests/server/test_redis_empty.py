"""A Redis that comes back empty (restarted without persistence, flushed): with nobody's help,
the published functions answer calls again within seconds and cron jobs fire again; a Redis
that was only away (restarted with its data) is not taken for an empty one.

Each test runs a server (with its cron beat) and a worker around a redis-server of its own.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.private_redis import PrivateRedis
from tests.server.conftest import Stack, close_stack, make_stack

LOST = "Redis lost fnhub's data"
TICK = {"id": "tick", "function": "demo.counted", "expr": "* * * * * *", "kwargs": {"key": "t"}}


def _until_a_call_works(stack: Stack, timeout: float = 30) -> float:
    """Seconds until `demo.add` answers 3; fails past `timeout`."""
    start = time.monotonic()
    last = ""
    with stack.admin() as client:
        while time.monotonic() - start < timeout:
            try:
                answer = client.post(
                    "/api/v1/functions/demo.add/call", json={"kwargs": {"a": 1, "b": 2}}
                )
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if answer.status_code == 200 and answer.json()["result"] == 3:
                    return time.monotonic() - start
                last = f"{answer.status_code} {answer.text[:200]}"
            time.sleep(0.05)
    raise AssertionError(f"no call answered within {timeout}s: {last}")


def _ticks(stack: Stack) -> int:
    """Cron ticks run since Redis last lost its data (`demo.counted` counts in fnhub.cache)."""
    return int(stack.redis.get(f"{stack.prefix}:cache:demo:t") or 0)


def _until_ticks(stack: Stack, at_least: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _ticks(stack) < at_least:
        assert time.monotonic() < deadline, f"cron fired {_ticks(stack)} times, not {at_least}"
        time.sleep(0.1)


def _start(tmp_path: Path, persist: bool) -> tuple[PrivateRedis, Stack]:
    own = PrivateRedis(tmp_path / "redis", persist=persist)
    own.start()
    try:
        stack = make_stack(tmp_path / "stack", redis_url=own.url)
    except BaseException:
        own.close()
        raise
    with stack.admin() as client:
        assert client.put("/api/v1/cron-jobs/tick", json=TICK).is_success
    _until_a_call_works(stack)
    _until_ticks(stack, 2)
    return own, stack


@pytest.mark.timeout(240)
def test_an_empty_redis_is_filled_again_and_calls_and_cron_work_by_themselves(
    tmp_path: Path,
) -> None:
    own, stack = _start(tmp_path, persist=False)
    try:
        took = []
        for how in ("restart", "flushall", "restart"):
            if how == "restart":
                own.close()  # kill -9, then the same port, empty
                own.start()
            else:
                stack.redis.flushall()
            back = time.time()
            time.sleep(3)  # past what callers (1 s) and workers (2 s) keep of the scripts
            _until_a_call_works(stack, timeout=15)
            _until_ticks(stack, 2)
            mirrored = stack.redis.get(f"{stack.prefix}:scripts:mirrored")
            took.append(round(float(mirrored) - back, 2))
        print(f"scripts' mirror restored after Redis came back empty: {took} s")
        assert max(took) < 3
        log = (stack.dir / "server.log").read_text()
        assert log.count(LOST) == 3, log[-3000:]
        # the WebSub hub's intents group is made again too (it failed every second, for ever)
        assert "websub verification queue failed" not in log
    finally:
        close_stack(stack)
        own.close()


@pytest.mark.timeout(180)
def test_a_redis_that_was_only_away_is_not_restored(tmp_path: Path) -> None:
    own, stack = _start(tmp_path, persist=True)
    try:
        revision = stack.redis.get(f"{stack.prefix}:scripts:rev")
        own.stop()  # saves its data
        time.sleep(3)  # every server chore meets a Redis that does not answer
        own.start()
        _until_a_call_works(stack)
        time.sleep(2)
        assert stack.redis.get(f"{stack.prefix}:scripts:rev") == revision
        assert LOST not in (stack.dir / "server.log").read_text()
    finally:
        close_stack(stack)
        own.close()
