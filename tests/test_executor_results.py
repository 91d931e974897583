"""A Python task's success result: copied from one made per function, version, origin, queue
and record settings (`Executor._base`), and the same as `result_for` builds field by field."""

from __future__ import annotations

import time

import msgspec

from fnhub.tasks import Status, Task, result_for
from fnhub.worker import execute
from fnhub.worker.execute import Executor


def _handler(topic: str, message: str) -> dict[str, str]:
    print("got", message)
    return {"echo": message}


def _tasks() -> list[Task]:
    now = time.time()
    base = Task(
        function="s.f",
        version="v1",
        origin="api",
        origin_id="key-1",
        queue="q",
        kwargs={"topic": "t", "message": "m"},
        meta={"n": 1},
        trigger_time=now,
    )
    replace = msgspec.structs.replace
    return [
        base,
        replace(base, id="other", kwargs={"topic": "t", "message": "n"}, attempt=2),
        replace(base, function="s.g", version="v2"),
        replace(base, origin="cron", origin_id="job", queue="cron"),
        replace(base, record=False, record_limit=5),
        replace(base, record_kwargs={"topic": "t", "message": "*****"}, meta={"n": 2}),
        base,  # again, from the cached result
    ]


def test_a_success_is_what_result_for_makes_for_every_kind_of_task():
    executor = Executor(None, 10_000, 100_000)  # type: ignore[arg-type]  # no script looked up
    try:
        for task in _tasks():
            start = time.time()
            result = executor._call(task, _handler, start)
            assert result.end_time is not None and result.end_time >= start
            expected = result_for(
                task,
                Status.SUCCESS,
                start_time=start,
                end_time=result.end_time,
                result={"echo": task.kwargs["message"]},
                logs=f"got {task.kwargs['message']}\n",
            )
            assert result == expected
        assert len(executor._bases) == 4  # one per function version, origin and settings
    finally:
        executor.close()


def test_the_results_kept_to_copy_are_bounded(monkeypatch):
    monkeypatch.setattr(execute, "RESULT_BASES", 8)
    executor = Executor(None, 10_000, 100_000)  # type: ignore[arg-type]
    try:
        (task, *_rest) = _tasks()
        for i in range(20):
            origin = msgspec.structs.replace(task, origin_id=f"key-{i}")
            assert executor._call(origin, _handler, time.time()).origin_id == f"key-{i}"
            assert len(executor._bases) <= 8
    finally:
        executor.close()
