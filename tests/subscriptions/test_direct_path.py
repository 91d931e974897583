"""`path: direct` on Redis Streams, end to end: worker children consume the stream themselves.

No server runs in these tests: a direct subscription needs none.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from tests.conftest import REDIS_URL, wait_for

from fnhub.holders import QUIET_SECONDS

HANG = """
import time
import fnhub


@fnhub.api("hang on 'stuck'", timeout=1)
def hang(topic, message):
    fnhub.cache.hincr("runs", message, scope="ctl")
    if message == "stuck":
        time.sleep(60)
    fnhub.cache.hincr("seen", message, scope="ctl")
"""


CRASH = """
import os
import fnhub


@fnhub.api("its worker process dies on 'boom'")
def crash(topic, message):
    fnhub.cache.hincr("runs", message, scope="ctl")
    if message == "boom":
        os._exit(1)
    fnhub.cache.hincr("seen", message, scope="ctl")
"""


ONE_AT_A_TIME = """
import time
import fnhub


@fnhub.api("one at a time across the cluster", concurrency=1)
def echo(topic, message):
    running = fnhub.cache.incr("running", scope="ctl")
    fnhub.cache.hincr("peaks", str(running), scope="ctl")
    time.sleep(0.005)
    fnhub.cache.incr("running", -1, scope="ctl")
    return {"echo": message}
"""


T = TypeVar("T")


def _subscription(stream: str, **extra: object) -> dict:
    return {
        "connector": "local",
        "topics": [stream],
        "function": "handlers.count",
        "window": 50,
        "options": {"kind": "stream", "start": "0"},
        "path": "direct",
        "record_limit": 100_000,
        **extra,
    }


def _cluster(make_cluster, name: str, scripts: dict[str, str] | None = None, **extra: object):
    """A new stream and a project subscribing `name` to it (`extra`: the subscription's)."""
    stream = f"in-{time.time_ns()}"
    local = {"local": {"type": "redis", "settings": {"url": REDIS_URL}}}
    subscription = _subscription(stream, **extra)
    return stream, make_cluster(local, {name: subscription}, extra_scripts=scripts)


def _publish(r, stream: str, messages: list[str]) -> list[str]:
    pipe = r.pipeline(transaction=False)
    for m in messages:
        pipe.xadd(stream, {"data": m})
    return [i.decode() for i in pipe.execute()]


def _records(cluster, name: str) -> dict[str, str]:
    """task id → status of the subscription's records in the cluster's database."""
    with sqlite3.connect(cluster.dir / "fnhub.db") as db:
        rows = db.execute(
            "SELECT id, status FROM task_records WHERE origin = 'subscription' AND origin_id = ?",
            (name,),
        ).fetchall()
    return dict(rows)


def _check_records_and_views(cluster, name: str, n: int, share: int) -> None:
    """n successful records, and live views of connected direct children that processed n
    messages together, none holding more than its `share` of the window at once."""
    wait_for(lambda: len(_records(cluster, name)) == n, timeout=30, interval=0.3)
    assert set(_records(cluster, name).values()) == {"success"}
    views = cluster.status(name)
    assert {v["path"] for v in views} == {"direct"}
    assert all(v["source"]["state"] == "connected" for v in views)
    processed = lambda: sum(v["processed"] for v in cluster.status(name))  # noqa: E731
    wait_for(lambda: processed() == n, timeout=5, interval=0.2)
    assert max(v["source"]["max_in_flight"] for v in cluster.status(name)) <= share


def _direct_children(cluster, name: str) -> list[int]:
    """The pids of the live direct children, from their status views (`<worker>.d<k>.<pid>`)."""
    return [int(v["server"].rsplit(".", 1)[1]) for v in cluster.status(name)]


def _wait_children(cluster, name: str, n: int) -> None:
    """Until `n` direct children report (generous: a loaded machine starts processes slowly)."""
    wait_for(lambda: len(cluster.status(name)) == n, timeout=150, interval=0.2)


def _acked_ids(r, stream: str, group: str, ids: list[str]) -> set[str]:
    """Entries delivered to the group and no longer pending: acknowledged."""
    [info] = [g for g in r.xinfo_groups(stream) if g["name"].decode() == group]
    last = info["last-delivered-id"].decode()
    pending = {p["message_id"].decode() for p in r.xpending_range(stream, group, "-", "+", 10_000)}

    def key(entry_id: str) -> tuple[int, int]:
        a, b = entry_id.split("-")
        return int(a), int(b)

    return {i for i in ids if key(i) <= key(last) and i not in pending}


@pytest.mark.timeout(240)
def test_direct_handles_acks_after_done_records_and_status(make_cluster):
    stream, cluster = _cluster(make_cluster, "direct")
    cluster.set_delay(0.02)  # slow enough to catch messages in flight
    cluster.start_worker(processes=2)
    _wait_children(cluster, "direct", 2)
    n = 600
    messages = [f"m{i}" for i in range(n)]
    ids = dict(zip(_publish(cluster.redis, stream, messages), messages, strict=True))
    samples = 0
    while len(cluster.seen()) < n:
        acked = _acked_ids(cluster.redis, stream, "fnhub-direct", list(ids))
        seen = cluster.seen()
        # every acknowledged message was handled before (the ack comes after the function)
        assert all(ids[i] in seen for i in acked)
        samples += 1 + (0 < len(acked) < n)
        time.sleep(0.05)
    assert samples > 5
    seen = cluster.seen()
    assert seen == dict.fromkeys(messages, 1)
    wait_for(lambda: cluster.redis.xpending(stream, "fnhub-direct")["pending"] == 0, timeout=10)
    _check_records_and_views(cluster, "direct", n, share=25)  # 50 / 2
    cluster.redis.delete(stream)


@pytest.mark.timeout(270)
def test_direct_child_killed_mid_burst_loses_nothing(make_cluster):
    stream, cluster = _cluster(make_cluster, "burst")
    cluster.set_delay(0.002)
    cluster.start_worker(processes=2)
    _wait_children(cluster, "burst", 2)
    n = 3000
    messages = [f"m{i}" for i in range(n)]
    _publish(cluster.redis, stream, messages)
    wait_for(lambda: len(cluster.seen()) > 300, timeout=60, interval=0.05)
    victim = _direct_children(cluster, "burst")[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = len(cluster.seen())
    assert killed_at < n
    wait_for(lambda: len(cluster.seen()) == n, timeout=90, interval=0.3)
    assert cluster.seen().keys() == set(messages)
    wait_for(lambda: cluster.redis.xpending(stream, "fnhub-burst")["pending"] == 0, timeout=20)
    # one record per message, whether it ran once or again after the kill (its task id is
    # derived from the entry, so a second run replaces the row), and each a success
    wait_for(lambda: len(_records(cluster, "burst")) == n, timeout=30, interval=0.3)
    assert set(_records(cluster, "burst").values()) == {"success"}
    wait_for(lambda: victim not in _direct_children(cluster, "burst"), timeout=10)
    wait_for(lambda: len(_direct_children(cluster, "burst")) == 2, timeout=60, interval=0.2)
    cluster.redis.delete(stream)


@pytest.mark.timeout(240)
def test_direct_timeout_kills_the_child_and_the_rest_is_redelivered(make_cluster):
    stream, cluster = _cluster(make_cluster, "hung", {"hang": HANG}, function="hang.hang")
    cluster.start_worker(processes=1)
    _wait_children(cluster, "hung", 1)
    [before] = _direct_children(cluster, "hung")
    # one read: the stuck message first, the rest behind it in the same batch
    messages = ["stuck", *(f"m{i}" for i in range(20))]
    _publish(cluster.redis, stream, messages)
    wait_for(lambda: len(cluster.seen()) == 20, timeout=120, interval=0.2)
    raw = cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:runs")
    runs = {k.decode(): int(v) for k, v in raw.items()}
    assert runs["stuck"] == 1, "a timed-out message is final, not run again"
    assert cluster.seen().keys() == set(messages[1:])
    wait_for(lambda: cluster.redis.xpending(stream, "fnhub-hung")["pending"] == 0, timeout=10)
    # the child past its deadline was killed and replaced (its view goes stale in 3 s)
    wait_for(lambda: len(set(_direct_children(cluster, "hung")) - {before}) == 1, timeout=10)
    wait_for(lambda: before not in _direct_children(cluster, "hung"), timeout=10)
    wait_for(lambda: "timeout" in _records(cluster, "hung").values(), timeout=30, interval=0.3)
    statuses = list(_records(cluster, "hung").values())
    assert statuses.count("timeout") == 1
    cluster.redis.delete(stream)


@pytest.mark.timeout(270)
def test_a_message_whose_child_dies_every_time_is_dead_lettered(make_cluster):
    stream, cluster = _cluster(make_cluster, "boom", {"crash": CRASH}, function="crash.crash")
    cluster.start_worker(processes=1)
    _wait_children(cluster, "boom", 1)
    messages = ["a", "boom", "b"]
    _publish(cluster.redis, stream, messages)
    wait_for(lambda: len(cluster.seen()) == 2, timeout=180, interval=0.2)
    wait_for(lambda: cluster.redis.xpending(stream, "fnhub-boom")["pending"] == 0, timeout=60)
    raw = cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:runs")
    runs = {k.decode(): int(v) for k, v in raw.items()}
    assert runs["boom"] == 3, "max_attempts (3) runs, then no more"
    [dead] = cluster.redis.xrange(f"{cluster.prefix}:dead")
    assert b"worker process died" in dead[1][b"reason"]
    wait_for(lambda: "dead" in _records(cluster, "boom").values(), timeout=30, interval=0.3)
    records = _records(cluster, "boom")
    # one task per message, whatever became of its runs: the attempts that died are kept
    assert sorted(records.values()) == ["dead", "success", "success"]
    [boom] = [task_id for task_id, status in records.items() if status == "dead"]
    with sqlite3.connect(cluster.dir / "fnhub.db") as db:
        attempts = db.execute(
            "SELECT attempt, status, error_type FROM task_attempts WHERE task_id = ? "
            "ORDER BY attempt",
            (boom,),
        ).fetchall()
    assert attempts == [(1, "retrying", "WorkerDied"), (2, "retrying", "WorkerDied")]
    cluster.redis.delete(stream)


@pytest.mark.timeout(240)
def test_direct_rule_publishes_before_the_ack_and_keeps_concurrency(make_cluster):
    out = f"out-{time.time_ns()}"
    stream, cluster = _cluster(
        make_cluster,
        "rule",
        {"one": ONE_AT_A_TIME},
        function="one.echo",
        mode="multiple",
        publish={"topic": out, "kind": "stream"},
    )
    cluster.start_worker(processes=2)
    _wait_children(cluster, "rule", 2)
    n = 200
    messages = [f"m{i}" for i in range(n)]
    ids = dict(zip(_publish(cluster.redis, stream, messages), messages, strict=True))

    def published() -> set[str]:
        return {json.loads(fields[b"data"])["echo"] for _id, fields in cluster.redis.xrange(out)}

    while len(published()) < n:
        acked = _acked_ids(cluster.redis, stream, "fnhub-rule", list(ids))
        outputs = published()
        # an input is acknowledged only once its output was published
        assert all(ids[i] in outputs for i in acked)
        time.sleep(0.05)
    assert published() == set(messages)
    wait_for(lambda: cluster.redis.xpending(stream, "fnhub-rule")["pending"] == 0, timeout=10)
    peaks = cluster.redis.hgetall(f"{cluster.prefix}:cache:ctl:peaks")
    assert set(peaks) == {b"1"}, f"the function ran more than once at a time: {peaks}"
    cluster.redis.delete(stream, out)


def fail_over_single_mode(
    cluster,
    name: str,
    publish: Callable[[list[str]], T],
    settled: Callable[[T], None],
    ready: Callable[[Any, str], None] | None = None,
) -> None:
    """A single-mode subscription's one direct child handles part of a burst, its worker is
    killed (children with it), and the worker standing by takes the lease and handles every
    message; `publish` sends the burst, `settled` waits until the broker has it all
    acknowledged (what each broker shows of it differs); `ready` waits until the holder's child
    is there (by default: until it reports its status)."""
    cluster.set_delay(0.01)
    cluster.start_worker(processes=1)
    (ready or (lambda c, n: _wait_children(c, n, 1)))(cluster, name)
    other = cluster.cli("worker", "--processes", "1", "--queues", "sub,sync", node="n2")
    try:
        # the second worker is up and stands by, its connections old enough to judge a dead
        # holder (`fnhub.holders`): the lease is held
        wait_for(lambda: cluster.redis.hlen(f"{cluster.prefix}:workers") == 2, timeout=30)
        time.sleep(QUIET_SECONDS + 1)
        assert len(cluster.status(name)) == 1
        n = 1000
        messages = [f"m{i}" for i in range(n)]
        sent = publish(messages)
        wait_for(lambda: len(cluster.seen()) > 100, timeout=60, interval=0.05)
        assert cluster.worker is not None
        key = f"{cluster.prefix}:subs:lease:{name}"
        holder = cluster.redis.get(key)
        cluster.worker.send_signal(signal.SIGKILL)  # the holder, its children with it
        cluster.worker.wait()
        killed = time.monotonic()
        (seconds, micros), left = cluster.redis.pipeline().time().pttl(key).execute()
        lapse = seconds * 1000 + micros // 1000 + left  # Redis's clock, ms
        wait_for(lambda: cluster.redis.get(key) not in (None, holder), timeout=10, interval=0.02)
        seconds, micros = cluster.redis.time()
        taken = seconds * 1000 + micros // 1000
        assert taken < lapse, f"taken {taken - lapse} ms after the killed holder's lease lapsed"
        assert len(cluster.seen()) < n
        wait_for(lambda: len(cluster.seen()) == n, timeout=60, interval=0.2)
        print(f"failover: every message handled {time.monotonic() - killed:.1f}s after the kill")
        assert cluster.seen().keys() == set(messages)
        settled(sent)
    finally:
        other.send_signal(signal.SIGTERM)
        other.wait(20)


@pytest.mark.timeout(270)
def test_direct_single_mode_fails_over_to_another_worker(make_cluster):
    stream, cluster = _cluster(make_cluster, "one", mode="single")
    fail_over_single_mode(
        cluster,
        "one",
        lambda messages: _publish(cluster.redis, stream, messages),
        lambda _ids: wait_for(
            lambda: cluster.redis.xpending(stream, "fnhub-one")["pending"] == 0, timeout=20
        ),
    )
    cluster.redis.delete(stream)


DOZE = """
import time
import fnhub


@fnhub.api("dozes on 'slow'", timeout=60)
def doze(topic, message):
    if message == "slow":
        time.sleep(8)
"""


@pytest.mark.timeout(240)
def test_the_cluster_view_shows_what_a_direct_child_runs(make_cluster):
    """A worker's heartbeat names its direct children's running messages too: subscription,
    function, the task id its record gets, child and since when (`fnhub cluster`'s running
    table), and counts the direct child among its busy ones (its queue child is idle)."""
    stream, cluster = _cluster(make_cluster, "dozy", {"doze": DOZE}, function="doze.doze")
    cluster.start_worker(processes=1)
    _wait_children(cluster, "dozy", 1)
    [child] = _direct_children(cluster, "dozy")
    _publish(cluster.redis, stream, ["slow"])

    def beat() -> dict[str, Any]:
        [entry] = cluster.redis.hgetall(f"{cluster.prefix}:workers").values()
        return json.loads(entry)

    busy = wait_for(lambda: (b := beat()).get("running") and b, timeout=30, interval=0.2)
    [task] = busy["running"]
    assert task["subscription"] == "dozy" and task["function"] == "doze.doze", task
    assert task["pid"] == child and time.time() - 30 < task["since"] <= time.time(), task
    assert busy["busy"] == 1 and busy["processes"] == 1 and busy["direct"] == 1, busy
    listing = subprocess.run(
        [sys.executable, "-m", "fnhub.cli", "cluster", "-p", str(cluster.dir)],
        env={**cluster.env, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "doze.doze" in line)
    assert task["task"] in row and "dozy (direct)" in row, listing.stdout
    assert "1/2" in listing.stdout, listing.stdout  # busy: of its process and direct child
    # the task id is the one its record gets, once the message is done
    wait_for(lambda: _records(cluster, "dozy"), timeout=30, interval=0.3)
    assert _records(cluster, "dozy") == {task["task"]: "success"}
    idle = wait_for(lambda: (b := beat())["busy"] == 0 and b, timeout=10, interval=0.2)
    assert idle["running"] == [] and idle["direct"] == 1, idle
    cluster.redis.delete(stream)
