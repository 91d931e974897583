"""JavaScript tasks of a batch sent to Node ahead of their turn (`NodeExecutor.top_up`), with
real worker processes, the machine's Node and Redis: each task still runs exactly once, with its
own logs, behind a slow, spinning or crashing task too."""

from __future__ import annotations

import time

from tests.conftest import wait_for

from fnhub.bootstrap import Services
from fnhub.calling.queue_client import QueueClient
from fnhub.queue import ENQUEUE_MANY, enqueue_many_args
from fnhub.tasks import Task, encode

JS = r"""
const fnhub = require('fnhub');

// counts its runs; `wait` seconds awaited, `spin` seconds of synchronous busy loop, `boom` an
// uncaught exception from a timer (the process is replaced)
exports.counts = fnhub.api({ timeout: 1 }, async ({ n, wait = 0, spin = 0, boom = false }) => {
  await fnhub.cache.hincr('runs', String(n));
  console.log('task', n, fnhub.context.taskId);
  if (wait) await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  const until = Date.now() + spin * 1000;
  while (Date.now() < until) {}
  if (boom) {
    setTimeout(() => { throw new Error('boom'); }, 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return n;
});

exports.pid = () => process.pid;
"""


def _tasks(client: QueueClient, ns: range, **kwargs: object) -> list[Task]:
    return [
        Task(
            function="b.counts",
            kwargs={"n": n, **kwargs},
            reply_to=client.reply_stream,
            timeout=1.0,  # the function's (a task made by hand does not read it)
        )
        for n in ns
    ]


def _enqueue(services: Services, tasks: list[Task]) -> None:
    """One bundle entry: one child reads them all in one batch."""
    stream = services.keys.queue("sync")
    args = enqueue_many_args([encode(t) for t in tasks], 1)
    services.redis.eval(ENQUEUE_MANY, 2, stream, services.keys.bundled, *args)


def _runs(services: Services) -> dict[int, int]:
    raw = services.redis.hgetall(f"{services.keys.prefix}:cache:b:runs")
    return {int(k): int(v) for k, v in raw.items()}


def _assert_clean(services: Services) -> None:
    """Every entry acknowledged, no bundle progress or count of bundled tasks left behind."""
    r, keys = services.redis, services.keys
    wait_for(lambda: r.xlen(keys.queue("sync")) == 0, timeout=20)
    wait_for(lambda: r.hlen(keys.bundles) == 0, timeout=20)
    assert int(r.hget(keys.bundled, keys.queue("sync")) or 0) == 0


def _check(client: QueueClient, tasks: list[Task], status: str = "success") -> None:
    for task in tasks:
        result = client.wait(task.id, 30)
        assert result is not None and result.status == status, (task.kwargs, result)
        if status == "success":
            assert result.result == task.kwargs["n"]
            assert result.logs == f"task {task.kwargs['n']} {task.id}\n"


def _quick(client: QueueClient) -> list[Task]:
    """Quick tasks at the head of a batch: after the first three the function is known quick,
    and the tasks behind (the ones tested) go to Node ahead of their turn."""
    return _tasks(client, range(10))


def _worker(services: Services, start_worker, processes: int = 1):  # type: ignore[no-untyped-def]
    services.scripts.publish({"b": JS}, languages={"b": "javascript"})
    return start_worker(processes=processes)


def test_every_task_of_a_batch_runs_once_with_its_own_logs(client, services, start_worker):
    _worker(services, start_worker)
    tasks = _tasks(client, range(500))
    _enqueue(services, tasks)
    _check(client, tasks)
    assert _runs(services) == {n: 1 for n in range(500)}
    _assert_clean(services)


def test_tasks_sent_ahead_behind_a_slow_task_go_back_to_the_queue(client, services, start_worker):
    _worker(services, start_worker, processes=2)
    quick = _quick(client)
    slow = _tasks(client, range(10, 11), wait=2.0)
    slow[0].timeout = 5.0
    after = _tasks(client, range(11, 21))
    _enqueue(services, [*quick, *slow, *after])
    _check(client, quick)
    started = time.monotonic()
    # Node is told to drop them at 0.4 s, the child hands them back at 0.5 s, and the other
    # child runs them while the slow one still waits
    _check(client, after)
    assert time.monotonic() - started < 1.5
    _check(client, slow)
    assert _runs(services) == {n: 1 for n in range(21)}
    _assert_clean(services)


def test_tasks_sent_ahead_behind_a_timeout_run_once_in_the_next_process(
    client, services, start_worker
):
    _worker(services, start_worker)
    quick = _quick(client)
    spins = _tasks(client, range(10, 11), spin=5)
    after = _tasks(client, range(11, 21))
    _enqueue(services, [*quick, *spins, *after])
    _check(client, quick)
    _check(client, spins, "timeout")
    _check(client, after)
    assert _runs(services) == {n: 1 for n in range(21)}
    _assert_clean(services)


def test_tasks_sent_ahead_behind_an_uncaught_error_run_once_in_the_next_process(
    client, services, start_worker
):
    _worker(services, start_worker)
    quick = _quick(client)
    boom = _tasks(client, range(10, 11), boom=True)
    after = _tasks(client, range(11, 21))
    _enqueue(services, [*quick, *boom, *after])
    _check(client, quick)
    result = client.wait(boom[0].id, 30)
    assert result is not None and result.status == "failure" and result.error_message == "boom"
    _check(client, after)
    assert _runs(services) == {n: 1 for n in range(21)}


def test_a_task_sent_ahead_whose_expiry_passed_is_not_run(client, services, start_worker):
    _worker(services, start_worker)
    quick = _quick(client)
    slow = _tasks(client, range(10, 11), wait=0.3)
    expiring = _tasks(client, range(11, 12))
    after = _tasks(client, range(12, 15))
    expiring[0].expires_at = time.time() + 0.2
    pids = [Task(function="b.pid", reply_to=client.reply_stream) for _ in range(2)]
    _enqueue(services, [pids[0], *quick, *slow, *expiring, *after, pids[1]])
    _check(client, quick + slow + after)
    _check(client, expiring, "expired")
    assert _runs(services) == {n: 1 for n in [*range(11), *range(12, 15)]}
    first, last = (client.wait(t.id, 30) for t in pids)
    assert first is not None and last is not None
    assert first.result == last.result  # the same Node process: nothing went out of turn


def test_a_task_json_cannot_carry_fails_alone_and_the_batch_runs_once(
    client, services, start_worker
):
    """A task among those sent ahead whose kwargs do not encode as JSON (a bytes map key, which
    msgpack allows): the tasks of its frame go back to the batch, run in their turn, and only
    that one fails."""
    _worker(services, start_worker)
    quick = _quick(client)
    bad = _tasks(client, range(10, 11), extra={b"raw": 1})
    after = _tasks(client, range(11, 21))
    _enqueue(services, [*quick, *bad, *after])
    _check(client, quick + after)
    result = client.wait(bad[0].id, 30)
    assert result is not None and (result.status, result.error_type) == (
        "failure",
        "ArgumentsNotSerializable",
    )
    assert _runs(services) == {n: 1 for n in [*range(10), *range(11, 21)]}
    _assert_clean(services)
