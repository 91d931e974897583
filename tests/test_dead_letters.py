"""Dead letters in Redis (found by task or entry id, filtered, paged, trimmed with their index,
replayed once, discarded) and the attempts a crashed worker leaves in the records."""

from __future__ import annotations

import os
import signal
import time

import pytest
from tests.conftest import CRASH_ONCE, wait_for

from fnhub import dead_letters, queue, task_history
from fnhub.dead_letters import DeadFilter
from fnhub.tasks import Task, decode_result, decode_task

SCRIPT = "import os, time\nimport fnhub\n\n@fnhub.api()\ndef f(x: int):\n    return x\n"


def _bury(services, *tasks: Task, reason: str = "worker process died") -> None:
    pipe = services.redis.pipeline(transaction=True)
    for task in tasks:
        queue.add_dead_letter(pipe, services.keys, task, reason)
    pipe.execute()


def test_found_by_task_or_entry_id_and_trimmed_with_the_index(services, monkeypatch):
    monkeypatch.setattr(queue, "DEAD_MAXLEN", 3)
    tasks = [Task(function="d.f", kwargs={"i": i}) for i in range(5)]
    for task in tasks:
        _bury(services, task)
    keys = services.keys
    assert services.redis.xlen(keys.dead) == 3
    assert services.redis.hlen(keys.dead_ids) == 3  # the trimmed entries' fields went too
    for task in tasks[:2]:
        assert dead_letters.get(services.redis, keys, task.id) is None
    letter = dead_letters.get(services.redis, keys, tasks[4].id)
    assert letter is not None and letter.task.kwargs == {"i": 4}
    by_entry = dead_letters.get(services.redis, keys, letter.entry_id)
    assert by_entry is not None and by_entry.task_id == tasks[4].id
    assert by_entry.reason == "worker process died" and by_entry.dead_at == pytest.approx(
        time.time(), abs=5
    )
    assert dead_letters.get(services.redis, keys, "1-0") is None


def test_filters_and_a_cursor_walk_that_returns_each_once(services, monkeypatch):
    monkeypatch.setattr(dead_letters, "SCAN_CHUNK", 7)  # several reads per page
    keys = services.keys
    older = [Task(function="d.a", kwargs={"i": i}) for i in range(20)]
    _bury(services, *older, reason="RuntimeError: disk FULL")
    time.sleep(0.01)
    middle = time.time()
    time.sleep(0.01)
    newer = [Task(function="d.b" if i % 2 else "d.a", kwargs={"i": i}) for i in range(30)]
    _bury(services, *newer, reason="KeyError: 'x'")
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = dead_letters.list_page(
            services.redis, keys, DeadFilter(), cursor=cursor, limit=6
        )
        seen += [letter.task_id for letter in page]
        if cursor is None:
            break
    assert seen == [t.id for t in reversed(older + newer)]  # newest first, each once

    def ids(where: DeadFilter) -> list[str]:
        return [x.task_id for x in dead_letters.scan(services.redis, keys, where)]

    assert ids(DeadFilter(function="d.b")) == [t.id for t in reversed(newer) if t.function == "d.b"]
    assert ids(DeadFilter(until=middle)) == [t.id for t in reversed(older)]
    assert ids(DeadFilter(since=middle, function="d.a")) == [
        t.id for t in reversed(newer) if t.function == "d.a"
    ]
    assert ids(DeadFilter(q="disk full")) == [t.id for t in reversed(older)]
    assert ids(DeadFilter(q=newer[3].id[-8:])) == [newer[3].id]
    with pytest.raises(ValueError, match="malformed cursor"):
        dead_letters.list_page(services.redis, keys, DeadFilter(), cursor="nope", limit=5)


def test_replay_enqueues_once_and_keeps_what_it_cannot_replay(services, publish, settings):
    publish({"d": SCRIPT})
    keys = services.keys
    good = Task(
        function="d.f", kwargs={"x": 3}, origin="cron", origin_id="job", queue="cron", attempt=3
    )
    good.record_kwargs = {"x": "[redacted]"}  # what an endpoint records of a credential
    gone = Task(function="d.removed", kwargs={})
    unfit = Task(function="d.f", kwargs={"y": 1})
    _bury(services, good, gone, unfit)
    letters = list(dead_letters.scan(services.redis, keys, DeadFilter()))
    assert dead_letters.get(services.redis, keys, good.id).detail()["kwargs"] == {"x": "[redacted]"}
    done = dead_letters.replay(services.redis, keys, settings, letters)
    assert done.done == 1 and len(done.task_ids) == 1
    assert {s["task_id"]: s["reason"] for s in done.skipped} == {
        gone.id: "unknown function 'd.removed' (script 'd' exports: f)",
        unfit.id: "d.f() got unexpected keyword argument(s): y",
    }
    entries = services.redis.xrange(keys.queue("cron"))
    assert len(entries) == 1
    task = decode_task(entries[0][1][b"e"])
    assert task.id == done.task_ids[0] != good.id
    assert (task.function, task.kwargs, task.attempt) == ("d.f", {"x": 3}, 1)
    assert (task.origin, task.origin_id, task.meta["replay_of"]) == ("cron", "job", good.id)
    assert task.version == services.scripts.active_code()["d"][1]
    assert task.record_kwargs == {"x": "[redacted]"}  # records of the replay stay redacted
    status = decode_result(services.redis.get(task.status_key))
    assert status.status == "queued"
    again = dead_letters.replay(services.redis, keys, settings, letters[-1:])  # `good`, again
    assert again.done == 0 and again.skipped[0]["reason"] == dead_letters.GONE
    assert services.redis.xlen(keys.queue("cron")) == 1
    left = {x.task_id for x in dead_letters.scan(services.redis, keys, DeadFilter())}
    assert left == {gone.id, unfit.id}
    assert dead_letters.get(services.redis, keys, good.id) is None
    discarded = dead_letters.discard(services.redis, keys, letters)
    assert discarded.done == 2 and services.redis.xlen(keys.dead) == 0
    assert services.redis.hlen(keys.dead_ids) == 0


def test_a_crashed_attempt_is_kept_in_the_record(client, services, publish, start_worker):
    publish({"demo": "import os, time\nimport fnhub\n" + CRASH_ONCE})
    start_worker(processes=1)
    task = client.submit("demo.crash_once", wait=True)
    pid = wait_for(lambda: services.redis.get(f"{services.keys.prefix}:cache:demo:pid"))
    os.kill(int(pid), signal.SIGKILL)
    result = client.wait(task.id, 30)
    assert result is not None and result.status == "success"

    def final() -> dict | None:  # the retrying attempt may land first
        record = task_history.record_detail(services.db, task.id)
        return record if record and record["status"] == "success" else None

    record = wait_for(final, timeout=10)
    attempts = [(a["attempt"], a["status"], a["error_type"]) for a in record["attempts"]]
    assert attempts == [(1, "retrying", "WorkerDied"), (2, "success", None)]
    assert record["result"] == {"attempt": 2}
