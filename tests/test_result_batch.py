"""A batch's successes counted and recorded at once (`queue.add_successes`, the direct path's)
give what `add_result` gives one result at a time."""

from __future__ import annotations

import time

import msgspec

from fnhub.keys import Keys
from fnhub.queue import ResultBatch, add_result, add_successes, iter_results
from fnhub.tasks import Status, Task, TaskResult, encode, result_for


class _NoPipe:
    """`add_result`'s pipe, for tasks that queue nothing on it (no slot, key or marker)."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unexpected command {name}")


def _successes(n: int) -> tuple[list[Task], list[TaskResult]]:
    now = time.time()
    tasks, results = [], []
    for i in range(n):
        # runs of every bucket, waits too, some ending in the next minute, one backwards clock
        task = Task(function="s.f", queue="sub", kwargs={"i": i}, trigger_time=now - i * 0.37)
        start = now + i * 0.9
        end = start + (0.0004 * 3**i if i % 7 else -0.01)
        tasks.append(task)
        results.append(result_for(task, Status.SUCCESS, start_time=start, end_time=end))
    return tasks, results


def test_a_batch_of_successes_counts_and_records_as_one_result_at_a_time() -> None:
    keys = Keys("t")
    tasks, results = _successes(12)
    one_by_one, at_once = ResultBatch(), ResultBatch()
    for task, result in zip(tasks, results, strict=True):
        add_result(_NoPipe(), keys, task, result, one_by_one)
    add_successes(at_once, results)
    counts, seconds = at_once.counters()
    expected_counts, expected_seconds = one_by_one.counters()
    assert counts == expected_counts
    assert seconds.keys() == expected_seconds.keys()
    for field, value in seconds.items():
        assert abs(value - expected_seconds[field]) < 1e-9
    assert at_once.minute_counters(keys) == one_by_one.minute_counters(keys)
    assert at_once.records_value() == one_by_one.records_value()


def test_results_that_did_not_run_are_counted_too() -> None:
    keys = Keys("t")
    task = Task(function="s.f", queue="sub", trigger_time=0.0)
    results = [result_for(task, Status.SUCCESS), result_for(task, Status.SUCCESS, end_time=1.0)]
    expected = ResultBatch()
    for result in results:
        add_result(_NoPipe(), keys, task, result, expected)
    batch = ResultBatch()
    add_successes(batch, results)
    assert batch.counters() == expected.counters()


def test_records_encoded_apart_and_at_once_make_one_entry() -> None:
    _, results = _successes(3)
    batch = ResultBatch()
    batch.records.append(encode(results[0]))
    batch.record_results += results[1:]
    decoded = list(iter_results({b"rs": batch.records_value()}))
    assert {r.id for r in decoded} == {r.id for r in results}
    assert msgspec.msgpack.decode(batch.records_value(), type=list[TaskResult]) == [
        *results[1:],
        results[0],
    ]
