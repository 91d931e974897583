"""The task path end to end: real Redis, real worker processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import statistics
import textwrap
import time

import pytest
from tests.conftest import CRASH_ONCE, call_ok, wait_for

from fnhub.calling.errors import CallError
from fnhub.keys import WORKER_GROUP
from fnhub.queue import add_enqueue, ensure_groups
from fnhub.tasks import Task, decode_task
from fnhub.worker.child import consumer_name
from fnhub.worker.direct import direct_consumer_name
from fnhub.worker.presence import split_consumer, supervisor_consumer

SCRIPT = (
    textwrap.dedent(
        """
    import logging
    import os
    import re
    import time

    import fnhub


    @fnhub.api("echo")
    def echo(value=None):
        return value


    @fnhub.api("fails")
    def fails(message="boom"):
        print("about to fail")
        logging.getLogger("user").warning("warned before failing")
        raise ValueError(message)


    @fnhub.api("spins", timeout=1)
    def spins():
        while True:
            pass


    @fnhub.api("stuck in C", timeout=1)
    def stuck_in_c():
        # catastrophic backtracking: one C call that never releases the GIL
        return bool(re.match(r"(a+)+$", "a" * 64 + "b"))


    @fnhub.api("always crashes", max_attempts=2)
    def always_crashes():
        os._exit(3)


    @fnhub.api("not json")
    def not_json():
        return object()


    @fnhub.api("counts")
    def counts(n):
        fnhub.cache.hincr("runs", str(n))
        return n


    @fnhub.api("flaky", retries=2, retry_delay=0.05)
    def flaky():
        if fnhub.context.attempt < 3:
            raise RuntimeError(f"attempt {fnhub.context.attempt} failed")
        return fnhub.context.attempt


    @fnhub.api("slow")
    def slow(seconds: float):
        time.sleep(seconds)
        return seconds


    @fnhub.api("async")
    async def async_fn(x: int):
        import asyncio
        await asyncio.sleep(0.01)
        return x * 2


    @fnhub.api("chatty")
    def chatty():
        print("x" * 200_000)
        return "done"
    """
    )
    + CRASH_ONCE
)


@pytest.fixture
def worker(publish, start_worker):
    publish({"demo": SCRIPT})
    return start_worker(processes=2)


def test_success_and_falsy_results_come_back_as_they_are(client, worker):
    for value in (0, False, "", [], {}, None, 1.5, "text", [1, "a", None]):
        assert call_ok(client, "demo.echo", {"value": value}).result == value
    assert call_ok(client, "demo.async_fn", {"x": 21}).result == 42


def test_exception_gives_type_message_traceback_and_logs(client, worker):
    result = client.call("demo.fails", {"message": "it broke"})
    assert result.status == "failure"
    assert result.error_type == "ValueError"
    assert result.error_message == "it broke"
    assert "raise ValueError(message)" in result.traceback
    assert "<script demo@" in result.traceback
    assert "about to fail" in result.logs
    assert "warned before failing" in result.logs


def test_output_capture_is_bounded(client, worker, settings):
    result = call_ok(client, "demo.chatty")
    assert len(result.logs) < settings.log_max_bytes + 200
    assert "more characters of output not kept" in result.logs


@pytest.mark.parametrize("function", ["demo.spins", "demo.stuck_in_c"])
def test_timeout_kills_code_stuck_in_python_or_c(client, worker, function):
    started = time.monotonic()
    result = client.call(function, timeout=15)
    assert result.status == "timeout"
    assert result.error_type == "TimeoutError"
    # the 1 s deadline ended it, not the caller's 15 s wait (the bound leaves room for a
    # loaded 2-core machine: it failed at load 15 with 5 s)
    assert time.monotonic() - started < 10
    # the pool was restored: a new child serves the next call
    assert call_ok(client, "demo.echo", {"value": 7}).result == 7


def test_killed_child_task_is_retried_and_completes(client, worker, services):
    task = client.submit("demo.crash_once", wait=True)
    pid = wait_for(lambda: services.redis.get(f"{services.keys.prefix}:cache:demo:pid"))
    os.kill(int(pid), signal.SIGKILL)
    result = client.wait(task.id, 30)
    assert result is not None
    assert result.status == "success"
    assert result.result == {"attempt": 2}
    assert result.attempt == 2


def test_dead_letter_after_max_attempts(client, worker, services):
    result = client.call("demo.always_crashes", timeout=30)
    assert result.status == "dead"
    assert result.attempt == 2
    dead = services.redis.xrange(services.keys.dead)
    assert len(dead) == 1
    assert decode_task(dead[0][1][b"e"]).function == "demo.always_crashes"


def test_non_json_result_is_a_clear_failure(client, worker):
    result = client.call("demo.not_json")
    assert result.status == "failure"
    assert result.error_type == "ResultNotSerializable"
    assert "object" in result.error_message


def test_retries_after_exceptions(client, worker):
    result = call_ok(client, "demo.flaky")
    assert result.result == 3
    assert result.attempt == 3


def test_unknown_function_and_bad_kwargs_are_refused_before_enqueueing(client, worker, services):
    with pytest.raises(CallError, match=r"unknown function 'demo.nope'.*exports"):
        client.call("demo.nope")
    with pytest.raises(CallError, match="no published script 'other'"):
        client.call("other.fn")
    with pytest.raises(CallError, match="unexpected keyword argument"):
        client.call("demo.echo", {"wrong": 1})
    with pytest.raises(CallError, match="missing required argument"):
        client.call("demo.slow", {})
    assert services.redis.xlen(services.keys.queue("sync")) == 0


def test_kwargs_over_the_size_limit_are_refused(client, worker, settings):
    big = "x" * (settings.kwargs_max_bytes + 1)
    with pytest.raises(CallError, match="over the limit") as info:
        client.call("demo.echo", {"value": big})
    assert info.value.kind == "too_large"


def test_unknown_function_reaching_a_worker_fails_clearly(client, worker, services):
    """A task for a function that vanished after enqueueing (or a forged one) fails, not hangs."""
    task = Task(function="demo.vanished", reply_to=client.reply_stream)
    pipe = services.redis.pipeline()
    add_enqueue(pipe, services.keys, task)
    pipe.execute()
    result = client.wait(task.id, 10)
    assert result.status == "failure"
    assert result.error_type == "UnknownFunction"


def test_malformed_queue_entry_is_dropped_and_the_worker_goes_on(client, worker, services):
    services.redis.xadd(services.keys.queue("sync"), {"e": b"\xff\x00not msgpack"})
    services.redis.xadd(services.keys.queue("sync"), {"other": b"1"})
    assert call_ok(client, "demo.echo", {"value": 1}).result == 1
    wait_for(lambda: services.redis.xlen(services.keys.queue("sync")) == 0)


def test_expired_task_never_runs(client, publish, start_worker, services):
    publish({"demo": SCRIPT})
    task = client.submit("demo.counts", {"n": 1}, wait=True, expires=0.3)
    time.sleep(0.5)
    start_worker(processes=1)
    result = client.wait(task.id, 10)
    assert result.status == "expired"
    assert services.redis.hget(f"{services.keys.prefix}:cache:demo:runs", "1") is None


def test_delayed_task_runs_after_its_eta(client, worker):
    started = time.time()
    task = client.submit("demo.echo", {"value": "later"}, wait=True, eta=started + 1.0)
    result = client.wait(task.id, 10)
    assert result.status == "success"
    assert result.start_time >= started + 1.0


def test_thousand_tasks_over_four_processes_none_lost_none_twice(
    client, publish, start_worker, services, settings
):
    publish({"demo": SCRIPT})
    start_worker(processes=4)
    ids = [client.submit("demo.counts", {"n": i}, wait=True).id for i in range(1000)]
    results = [client.wait(task_id, 60) for task_id in ids]
    assert all(r is not None and r.status == "success" for r in results)
    runs = services.redis.hgetall(f"{services.keys.prefix}:cache:demo:runs")
    assert len(runs) == 1000
    assert set(runs.values()) == {b"1"}


def test_graceful_shutdown_lets_running_task_finish(client, publish, start_worker, services):
    publish({"demo": SCRIPT})
    handle = start_worker(processes=1)
    task = client.submit("demo.slow", {"seconds": 1.0}, wait=True)
    wait_for(
        lambda: services.redis.xpending(services.keys.queue("sync"), "workers")["pending"] == 1
    )
    os.kill(handle.process.pid, signal.SIGTERM)
    result = client.wait(task.id, 10)
    assert result.status == "success"
    handle.process.join(10)
    assert handle.process.exitcode == 0


def test_shutdown_releases_queued_tasks_to_the_next_worker(client, publish, start_worker, settings):
    publish({"demo": SCRIPT})
    handle = start_worker(processes=1)
    ids = [client.submit("demo.slow", {"seconds": 0.3}, wait=True).id for _ in range(6)]
    time.sleep(0.5)
    handle.stop()
    start_worker(processes=2)
    results = [client.wait(task_id, 20) for task_id in ids]
    assert [r.status for r in results] == ["success"] * 6


def _stats() -> dict[int, list[str]]:
    """/proc/<pid>/stat of every process, the fields after the command name."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    found[int(entry)] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return found


def _children_of(pid: int) -> list[int]:
    """Every descendant of `pid`: a worker's fork server and the children it forked."""
    stats = _stats()
    found: list[int] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        kids = [p for p, fields in stats.items() if int(fields[1]) == parent]
        found += kids
        parents += kids
    return found


def _worker_children(supervisor: int) -> list[int]:
    """A supervisor's worker children: its descendants leading a session of their own."""
    stats = _stats()
    return [p for p in _children_of(supervisor) if p in stats and int(stats[p][3]) == p]


def test_dead_worker_tasks_are_released_by_another_worker(client, publish, start_worker, services):
    publish({"demo": SCRIPT})
    first = start_worker(processes=1)
    task = client.submit("demo.crash_once", wait=True)
    wait_for(lambda: services.redis.get(f"{services.keys.prefix}:cache:demo:pid"))
    # the whole worker dies at once, supervisor and child: nobody releases anything
    children = _children_of(first.process.pid)
    os.kill(first.process.pid, signal.SIGKILL)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    start_worker(processes=1)
    result = client.wait(task.id, 30)
    assert result is not None
    assert result.status == "success"
    assert result.result == {"attempt": 2}


def _kill_whole(supervisor_pid: int, children: list[int] | None = None) -> float:
    """SIGKILL a worker's supervisor and its children (found first unless given), as an OOM
    kill or a host crash would; returns when (`time.monotonic()`)."""
    children = _children_of(supervisor_pid) if children is None else children
    os.kill(supervisor_pid, signal.SIGKILL)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def _alive_key(services, supervisor_pid: int) -> str:
    """The heartbeat key of the worker whose supervisor runs as `supervisor_pid`, once it beat
    (`start_worker` returns as soon as any worker listens on its queues)."""

    def find() -> str | None:
        for worker_id, raw in services.redis.hgetall(services.keys.workers).items():
            if json.loads(raw).get("pid") == supervisor_pid:
                return services.keys.worker_alive(worker_id.decode())
        return None

    return wait_for(find, timeout=30)


def _just_renewed(client, key: str, within: float = 5.0) -> None:
    """Return as soon as `key`'s TTL is renewed (its PTTL goes up)."""
    deadline = time.monotonic() + within
    last = client.pttl(key)
    while time.monotonic() < deadline:
        pttl = client.pttl(key)
        if pttl > last:
            return
        last = pttl
        time.sleep(0.002)
    raise AssertionError(f"{key} was not renewed within {within} s")


def _busy_beside_a_live_one(client, start_worker, services, settings):
    """A worker (the default heartbeat) running `demo.crash_once`'s first attempt beside a
    live one whose connections are old enough to judge (`holders.QUIET_SECONDS`), returned
    (the busy one, its task, its descendants, the live one) right after it renewed its key."""
    from fnhub.holders import QUIET_SECONDS

    defaults = settings.model_copy(update={"heartbeat_seconds": 1.0})
    started = f"{services.keys.prefix}:cache:demo:pid"
    services.redis.delete(started)
    busy = start_worker(processes=1, settings_override=defaults)
    task = client.submit("demo.crash_once", wait=True)
    wait_for(lambda: services.redis.get(started))
    live = start_worker(processes=1, settings_override=defaults)
    _alive_key(services, live.process.pid)
    time.sleep(QUIET_SECONDS + 0.5)
    alive, children = _alive_key(services, busy.process.pid), _children_of(busy.process.pid)
    _just_renewed(services.redis, alive)
    return busy, task, children, live


def test_a_killed_workers_task_runs_on_a_live_worker_within_a_second_by_default(
    client, publish, start_worker, services, settings
):
    """With the default heartbeat (1 s), a worker renews its key every 0.25 s: killed whole
    right after a renewal (the phase that waits longest), it is stale 0.5 s later (two missed
    renewals), Redis lists no connection of it on two checks 0.25 s apart, and its task runs
    on a live worker 0.75-1 s after the kill. When its key was renewed with its beat, stale
    after 1.25 beats, that took 1.5-2 s. The median of three kills (each with a live worker
    of its own, whose connections are past their quiet time), for a loaded machine."""
    publish({"demo": SCRIPT})
    took = []
    for _ in range(3):
        first, task, children, live = _busy_beside_a_live_one(
            client, start_worker, services, settings
        )
        killed = _kill_whole(first.process.pid, children)
        result = client.wait(task.id, 30)
        assert result is not None and result.result == {"attempt": 2}
        took.append(time.monotonic() - killed)
        live.stop()
    assert statistics.median(took) < 1.4, took  # before: 1.5 s at the very least


def test_a_stopped_workers_task_stays_its_own_until_its_key_lapses(
    client, publish, start_worker, services, settings
):
    """A worker stopped whole (SIGSTOP: frozen, CPU-starved) misses its renewals but keeps its
    connections open: the live worker finds it stale within half a second and asks Redis for
    its connections at each renewal of its own, yet leaves its task alone until its key lapses
    (3.5 s after its last renewal); then the task runs again."""
    publish({"demo": SCRIPT})
    first, task, children, _live = _busy_beside_a_live_one(client, start_worker, services, settings)
    for pid in (first.process.pid, *children):
        os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        assert client.wait(task.id, 3.0) is None  # its key lives 3.5 s
        result = client.wait(task.id, 30)
        assert result is not None and result.result == {"attempt": 2}
        assert time.monotonic() - stopped >= 3.4
    finally:
        _kill_whole(first.process.pid, children)  # (SIGKILL ends a stopped process too)


def test_a_killed_workers_task_runs_elsewhere_long_before_its_key_lapses(
    client, publish, start_worker, services, settings
):
    """A worker killed whole has its connections closed by the kernel: once it missed two
    renewals of its key and Redis lists no connection of it, a live worker releases its tasks
    without waiting for its heartbeat key to lapse. The killed worker beats every 3 s (its key,
    renewed every 0.75 s, lives 10.5 s: its task would come back 9.75-10.5 s after the kill),
    the live one every 0.5 s; by its connections it is found dead 1-2 s after the kill."""
    publish({"demo": SCRIPT})
    slow_beat = settings.model_copy(update={"heartbeat_seconds": 3.0})
    first = start_worker(queues=["sync"], processes=1, settings_override=slow_beat)
    task = client.submit("demo.crash_once", wait=True)
    wait_for(lambda: services.redis.get(f"{services.keys.prefix}:cache:demo:pid"))
    fast_beat = settings.model_copy(update={"heartbeat_seconds": 0.5})
    live = start_worker(queues=["sync"], processes=1, settings_override=fast_beat)
    _alive_key(services, live.process.pid)
    time.sleep(3.5)  # its own connections outlive their quiet time (`holders.QUIET_SECONDS`)
    killed = _kill_whole(first.process.pid)
    result = client.wait(task.id, 30)
    assert result is not None and result.result == {"attempt": 2}
    assert time.monotonic() - killed < 7  # 5 s at most, plus room for a loaded machine


def test_a_workers_closed_connections_decide_soon_after_two_missed_renewals(services, settings):
    """A worker that renews its key every 0.25 s (a 1 s beat) and missed two renewals (0.5 s,
    not a beat and a quarter) with no connection open is dead on a second check a renewal
    later: 0.5-1 s from a kill -9 to the release. One that renewed on time is not looked at,
    nor is an older worker, whose description names no renewal period (it renews its key with
    its beat), until it missed 1.25 of its beats."""
    import uuid

    from fnhub.worker.supervisor import Supervisor

    checker = Supervisor(settings.model_copy(update={"heartbeat_seconds": 1.0}), ["sync"], 1)
    checker._unconnected.quiet = 0.0  # our own connections count as old
    keys = services.keys
    late, on_time, older = (f"{w}-{uuid.uuid4().hex[:6]}" for w in ("late", "on-time", "older"))
    info = {"queues": ["sync"], "every": 1.0, "renew": 0.25, "ttl_ms": 60_000, "named": True}
    before = {"queues": ["sync"], "every": 1.0, "ttl_ms": 60_000, "named": True}
    for worker_id, description in ((late, info), (on_time, info), (older, before)):
        checker._holders[worker_id] = checker._staleness(json.dumps(description).encode())
    services.redis.set(keys.worker_alive(late), "1", px=60_000 - 600)  # renewed 0.6 s ago
    services.redis.set(keys.worker_alive(older), "1", px=60_000 - 600)  # beat 0.6 s ago

    def check() -> set[str]:
        services.redis.set(keys.worker_alive(on_time), "1", px=60_000)  # renewed just now
        ttls = {w: services.redis.pttl(keys.worker_alive(w)) for w in (late, on_time, older)}
        return checker._unconnected.judge_sync(checker.redis, checker._stale_workers(ttls))

    try:
        assert check() == set()  # the first sighting without connections
        time.sleep(checker._renew)
        assert check() == {late}
        services.redis.set(keys.worker_alive(older), "1", px=60_000 - 1_300)  # beat 1.3 s ago
        assert check() == {late}
        time.sleep(checker._renew)
        assert check() == {late, older}
    finally:
        checker.redis.close()


def test_a_worker_whose_connection_stays_open_keeps_its_tasks_until_its_key_lapses(
    client, publish, start_worker, services
):
    """Missed beats alone are no death: a worker that is slow (CPU-starved, stopped) keeps its
    connections, and its tasks stay its own while its key lives; so do those of a worker that
    does not name its connections (an older version, an ACL refusing CLIENT SETNAME), which has
    none to find. Once the named worker's connection closes, its tasks come back within
    seconds, its key still alive for a minute."""
    import redis

    from fnhub.worker.presence import connection_name

    publish({"demo": SCRIPT})
    keys = services.keys
    ensure_groups(services.redis, keys, ["sync"])
    # both beat every second, their last beat was 2 s ago, their keys live 60 s
    slow, unnamed = "slow-1-abcdef", "unnamed-2-abcdef"
    tasks = {}
    for worker_id, named in ((slow, True), (unnamed, False)):
        services.redis.set(keys.worker_alive(worker_id), "1", px=60_000)
        info = {"queues": [], "every": 1.0, "renew": 0.25, "ttl_ms": 62_000, "named": named}
        services.redis.hset(keys.workers, worker_id, json.dumps(info))
        tasks[worker_id] = client.submit("demo.echo", {"value": worker_id}, wait=True)
        stream = {keys.queue("sync"): ">"}
        assert services.redis.xreadgroup(WORKER_GROUP, f"{worker_id}.0.42", stream, count=1)
    held = redis.Redis.from_url(services.settings.redis_url)
    held.client_setname(connection_name(slow))
    task = tasks[slow]
    beat = services.settings.model_copy(update={"heartbeat_seconds": 0.5})
    start_worker(queues=["sync"], processes=1, settings_override=beat)
    time.sleep(4)  # the live worker checked them several times, its own connections old enough
    assert client.wait(task.id, 0.1) is None
    pending = services.redis.xpending(keys.queue("sync"), WORKER_GROUP)
    assert pending["pending"] == 2
    held.close()  # as the kernel does for a process that died
    closed = time.monotonic()
    result = client.wait(task.id, 20)
    assert result is not None and result.result == slow
    assert time.monotonic() - closed < 5  # about 1 s; the key would live another 55 s
    assert services.redis.pttl(keys.worker_alive(slow)) > 40_000
    assert client.wait(tasks[unnamed].id, 0.1) is None  # its key decides


def test_a_worker_whose_acl_refuses_client_names_runs_and_finds_the_dead_by_their_key(
    client, publish, start_worker, services, settings
):
    """An ACL user without CLIENT (SETNAME, LIST): the worker starts and runs tasks with
    unnamed connections, and a dead worker's tasks still come back once its key lapsed."""
    from tests.conftest import redis_url_without_client

    publish({"demo": SCRIPT})
    keys = services.keys
    with redis_url_without_client(services.redis, settings.redis_url) as url:
        limited = settings.model_copy(update={"redis_url": url, "heartbeat_seconds": 0.5})
        ensure_groups(services.redis, keys, ["sync"])
        stale = "stale-1-abcdef"  # missed its beats, connections unknown: its key decides
        services.redis.set(keys.worker_alive(stale), "1", px=3000)
        services.redis.hset(keys.workers, stale, json.dumps({"queues": [], "ttl_ms": 5000}))
        task = client.submit("demo.echo", {"value": "held"}, wait=True)
        assert services.redis.xreadgroup(WORKER_GROUP, f"{stale}.0.1", {keys.queue("sync"): ">"})
        worker = start_worker(queues=["sync"], processes=1, settings_override=limited)
        result = client.wait(task.id, 20)
        assert result is not None and result.result == "held"
        assert services.redis.pttl(keys.worker_alive(stale)) == -2  # not before its key lapsed
        assert call_ok(client, "demo.echo", {"value": 7}).result == 7
        worker.stop()


def test_children_exit_when_their_supervisor_is_killed(client, publish, start_worker):
    publish({"demo": SCRIPT})
    handle = start_worker(processes=2)

    def spawned() -> list[int] | None:  # the worker announces itself before its children start
        found = _worker_children(handle.process.pid)
        return found if len(found) >= 2 else None

    wait_for(spawned)
    children = _children_of(handle.process.pid)  # with the fork server they were forked by
    os.kill(handle.process.pid, signal.SIGKILL)

    def running(pid: int) -> bool:  # an exited child nobody reaped is a zombie ("Z")
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def all_gone() -> bool:
        return not any(running(pid) for pid in children)

    wait_for(all_gone, timeout=10)


def test_workers_survive_their_queue_stream_being_deleted(client, worker, services):
    services.redis.delete(services.keys.queue("sync"))  # e.g. an operator's DEL or FLUSHDB
    result = wait_for(lambda: _call_quietly(client), timeout=20)
    assert result.result == 5


def _call_quietly(client):
    try:
        result = client.call("demo.echo", {"value": 5}, timeout=3)
    except CallError:
        return None
    return result if result.status == "success" else None


def test_a_dead_workers_tasks_on_every_queue_come_back_at_once(
    client, publish, start_worker, services
):
    """A worker's child reads every queue under one consumer name. Once the worker is dead,
    each queue's entries come back at the next reclaim pass: the reclaim lock is per queue and
    consumer (it was per consumer, so the second queue waited 60 s for the first's lock to
    lapse; found by bench/cluster.py, a worker killed under load)."""
    publish({"demo": SCRIPT})
    keys = services.keys
    queues = ["sync", "async"]
    ensure_groups(services.redis, keys, queues)
    tasks = [client.submit("demo.echo", {"value": q}, wait=True, queue=q) for q in queues]
    dead = "gone-1-abcdef.0.4242"  # worker "gone-1-abcdef" (never heartbeats), child 0, pid
    for queue in queues:
        assert services.redis.xreadgroup(WORKER_GROUP, dead, {keys.queue(queue): ">"}, count=10)
    started = time.monotonic()
    start_worker(queues=queues, processes=1)
    for task in tasks:
        result = client.wait(task.id, 30)
        assert result is not None, f"task on {task.queue} not released"
        assert result.status == "success"
    assert time.monotonic() - started < 20


def test_entries_delivered_by_a_read_whose_reply_was_lost_are_run(
    client, publish, start_worker, services
):
    """A read whose reply never arrived (connection cut, timeout) left its entries pending
    for the child's consumer, and nobody releases a live worker's entries: they waited until
    the worker died (found by bench/cluster.py, a worker cut off from Redis for 8 s). A child
    re-reads its own pending entries between batches, every few seconds and after a failed
    read (redis-py may retry the read itself, unseen)."""
    publish({"demo": SCRIPT})
    keys = services.keys
    start_worker(queues=["sync"], processes=1)
    call_ok(client, "demo.echo", {"value": "first"})  # the child's consumer exists now

    def consumer() -> str | None:
        found = services.redis.xinfo_consumers(keys.queue("sync"), WORKER_GROUP)
        return found[0]["name"].decode() if len(found) == 1 else None

    name = wait_for(consumer)
    child = int(name.rsplit(".", 1)[1])
    os.kill(child, signal.SIGSTOP)  # its blocking read (0.5 s) ends while it cannot read more
    try:
        time.sleep(1)
        task = client.submit("demo.echo", {"value": "lost reply"}, wait=True)
        # what a read whose reply was lost leaves: the entry delivered to the child's consumer
        assert services.redis.xreadgroup(WORKER_GROUP, name, {keys.queue("sync"): ">"}, count=9)
    finally:
        os.kill(child, signal.SIGCONT)
    result = client.wait(task.id, 15)
    assert result is not None, "the entry stayed pending for a live consumer"
    assert result.status == "success"
    assert result.result == "lost reply"


@pytest.mark.parametrize("host", ["vm", "ip-10-0-0-7.ec2.internal"])
def test_a_consumer_names_its_worker_whatever_dots_the_host_name_has(host):
    worker_id = f"{host}-4242-abc123"
    assert split_consumer(consumer_name(worker_id, 3, 99)) == (worker_id, "3", "99")
    assert split_consumer(direct_consumer_name(worker_id, 1, 98)) == (worker_id, "d1", "98")
    # a supervisor's own consumer is its worker's: read as "ip-10-0-0-7" it would look dead
    # to every other worker, which would release what it holds
    assert split_consumer(supervisor_consumer(worker_id)) == (worker_id, "supervisor", "")
