"""Long-lived loops of a real server and worker survive what they did not expect: they are
restarted and counted in `/metrics`; deep kwargs through a public endpoint are refused clearly
or recorded cut, and the recorder goes on."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import wait_for

from fnhub.calling.maker import KWARGS_MAX_DEPTH
from fnhub.keys import Keys
from fnhub.records import JSON_MAX_DEPTH, TRUNCATED_MARKER
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord

from .conftest import Stack


def _nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _record(stack: Stack, task_id: str) -> TaskRecord | None:
    db = Database(f"sqlite:///{stack.dir / 'fnhub.db'}")
    try:
        with db.session() as session:
            return session.get(TaskRecord, task_id)
    finally:
        db.dispose()


def _restarts(stack: Stack, loop: str) -> float:
    with stack.client() as c:
        answer = c.get("/metrics")
    if answer.status_code != 200:
        return 0.0
    prefix = f'fnhub_loop_restarts_total{{loop="{loop}"}} '
    lines = [line for line in answer.text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[1]) if lines else 0.0


def test_deep_kwargs_through_a_public_endpoint(stack: Stack) -> None:
    with stack.admin() as c:
        made = c.put("/api/v1/endpoints/deep-echo", json={"function": "demo.echo"})
        assert made.status_code == 200, made.text
    with stack.client() as c:
        text = '{"deep":' + '{"a":' * 1000 + "1" + "}" * 1001  # too deep for any encoder here
        refused = c.post("/e/deep-echo", content=text, headers={"content-type": "application/json"})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_kwargs"
        assert f"nest deeper than {KWARGS_MAX_DEPTH} levels" in error["message"]

        deep = c.post("/e/deep-echo", json={"deep": _nested(100)})
        assert deep.status_code == 200, deep.text
        assert deep.json() == {"deep": _nested(100)}
        task_id = deep.headers["x-task-id"]
        plain = c.post("/e/deep-echo", json={"n": 1})
        assert plain.status_code == 200
    row = wait_for(lambda: _record(stack, task_id), timeout=15)
    node = row.kwargs["deep"]
    while "a" in node:
        node = node["a"]
    assert node == {TRUNCATED_MARKER: f"nested deeper than {JSON_MAX_DEPTH} levels"}
    assert wait_for(lambda: _record(stack, plain.headers["x-task-id"]), timeout=15)


def test_a_failing_worker_loop_is_restarted_and_counted_in_metrics(stack: Stack) -> None:
    """Delayed tasks kept under a key of the wrong type make the worker's supervising loop
    fail (it used to end the worker); it is restarted, counted, and works once the key is
    fixed."""
    delayed = Keys(stack.prefix).delayed
    stack.redis.set(delayed, "not a sorted set")
    try:
        wait_for(lambda: _restarts(stack, "worker-supervisor") >= 2, timeout=20, interval=0.3)
    finally:
        stack.redis.delete(delayed)
    assert stack.worker is not None and stack.worker.poll() is None
    with stack.admin() as c:
        answer = c.post("/api/v1/functions/demo.add/call", json={"kwargs": {"a": 1, "b": 2}})
        assert answer.status_code == 200, answer.text


def test_a_failing_server_loop_is_restarted_and_counted_in_metrics(stack: Stack) -> None:
    """A live worker whose description is not JSON makes the server's refresh loop fail (it
    used to stop refreshing for good: new scripts and workers went unseen)."""
    keys = Keys(stack.prefix)
    stack.redis.set(keys.worker_alive("ghost"), "1", ex=60)
    stack.redis.hset(keys.workers, "ghost", "{not json")
    time.sleep(3)
    stack.redis.hdel(keys.workers, "ghost")
    stack.redis.delete(keys.worker_alive("ghost"))
    assert wait_for(lambda: _restarts(stack, "refresh") >= 1, timeout=10, interval=0.3)
    with stack.admin() as c:
        answer = c.post("/api/v1/functions/demo.add/call", json={"kwargs": {"a": 2, "b": 2}})
        assert answer.status_code == 200, answer.text
