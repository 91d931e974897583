"""`GET /api/v1/cluster` and `fnhub cluster` against real processes: a server, a worker and two
`fnhub beat`s around one Redis. Every role is listed with its facts (the server's subscription
among them); a clean stop leaves the list at once; a beat killed with SIGKILL is shown stale,
then gone after the presence TTL, while another beat leads. A worker's busy children say which
task and function each runs, for how long; a server, a beat and a worker killed with SIGKILL
stay listed as stale (the worker's tasks released meanwhile) until the TTL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import wait_for
from tests.sentinel_redis import SentinelRedis

from fnhub.bootstrap import open_services
from fnhub.cluster import gather
from fnhub.config import load_settings

from .conftest import SCRIPT, Stack, _cli, close_stack, make_stack, stop

TTL = 10.0  # presence_ttl_seconds: a beat (heartbeat 2 s) is stale after 6 s, gone after 10
FNHUB = [sys.executable, "-c", "from fnhub.cli import main; main()"]
NAP = """

@fnhub.api("Sleep long", timeout=120)
def nap(seconds: float = 60):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(
        tmp_path_factory.mktemp("cluster"),
        script=SCRIPT + NAP,
        presence_ttl_seconds=str(TTL),
        cron_lease_seconds="1",
    )
    try:
        yield s
    finally:
        close_stack(s)


def cluster_now(stack: Stack) -> dict[str, Any]:
    """What the API would answer, read straight from Redis (no server needed)."""
    saved = dict(os.environ)
    os.environ.update(stack.env)
    try:
        settings = load_settings(stack.dir)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    services = open_services(settings, migrate=False)
    try:
        return gather(services.redis, services.keys, services.db, settings)
    finally:
        services.close()


def ready(stack: Stack, server: subprocess.Popen[bytes]) -> None:
    def answers() -> bool:
        assert server.poll() is None, (stack.dir / "s2.log").read_text()[-3000:]
        try:
            return httpx.get(f"{stack.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, timeout=60, interval=0.1)


def test_every_role_listed_stale_then_gone_and_another_beat_leads(stack: Stack) -> None:
    beats = [
        _cli("beat", "-p", str(stack.dir), env=stack.env, log=stack.dir / f"beat{i}.log")
        for i in range(2)
    ]
    stack.extra.extend(beats)
    pids = {b.pid for b in beats}
    wait_for(lambda: {b["pid"] for b in cluster_now(stack)["beats"]} >= pids, timeout=30)

    # a clean stop leaves the list at once: the server and the beat it ran
    stop(stack.server)
    now = cluster_now(stack)
    assert now["servers"] == []
    assert {b["pid"] for b in now["beats"]} == pids, now["beats"]
    # so a `fnhub beat` leads; then a new server comes (its own beat stands by)
    wait_for(lambda: cluster_now(stack)["beat_leader"] is not None, timeout=10)
    stack.server = _cli("server", "-p", str(stack.dir), env=stack.env, log=stack.dir / "s2.log")
    ready(stack, stack.server)

    connector = {"type": "redis", "settings": {"url": "redis://127.0.0.1:6379/0"}}
    subscription = {
        "connector": "local",
        "topics": [f"{stack.prefix}:in"],
        "function": "demo.echo",
        "options": {"kind": "stream"},
    }
    with stack.admin() as c:
        assert c.put("/api/v1/connectors/local", json=connector).status_code == 200
        answer = c.put("/api/v1/subscriptions/orders-in", json=subscription)
        assert answer.status_code == 200, answer.text

        def settled() -> bool:
            now = c.get("/api/v1/cluster").json()
            held = [s["subscriptions"] for s in now["servers"]]
            return len(now["beats"]) == 3 and held == [["orders-in"]]

        wait_for(settled, timeout=15)
        answer = c.get("/api/v1/cluster")
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert httpx.get(f"{stack.url}/api/v1/cluster").status_code == 401
    [server] = data["servers"]
    assert server["pid"] == stack.server.pid and server["url"] == stack.url
    assert server["http_processes"] == 1 and server["version"] and not server["stale"]
    assert server["subscriptions"] == ["orders-in"] and server["websub_claims"] == 0
    [worker] = data["workers"]
    assert worker["pid"] == stack.worker.pid and worker["queues"] and not worker["stale"]
    leader = next(b for b in data["beats"] if b["id"] == data["beat_leader"])
    assert leader["pid"] in pids and leader["leading"]
    standby = [b for b in data["beats"] if b["id"] != data["beat_leader"]]
    assert [b["leading"] for b in standby] == [False, False]
    assert [b["server"] for b in data["beats"]].count(None) == 2  # the server's beat says so
    assert data["redis"]["version"] and data["redis"]["address"] == "127.0.0.1:6379"
    assert data["redis"]["role"] == "master" and data["redis"]["used_memory"] > 0
    database = data["database"]
    assert database["dialect"] == "sqlite" and database["current"] and database["revision"]

    # the CLI says the same, in a table at 80 columns and as JSON
    env = {**stack.env, "COLUMNS": "80"}
    listing = subprocess.run(
        [*FNHUB, "cluster", "-p", str(stack.dir)], env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    assert "leading" in listing.stdout and "standing by" in listing.stdout
    assert "Redis" in listing.stdout and "sqlite" in listing.stdout
    assert all(len(line) <= 80 for line in listing.stdout.splitlines()), listing.stdout
    as_json = subprocess.run(
        [*FNHUB, "cluster", "--json", "-p", str(stack.dir)], env=env, capture_output=True
    )
    listed = json.loads(as_json.stdout)
    assert listed["beat_leader"] == data["beat_leader"]
    assert {m["id"] for m in listed["beats"]} == {m["id"] for m in data["beats"]}

    # SIGKILL the leading beat: another leads within about a lease; the dead one is stale after
    # three missed heartbeats, then gone after the TTL
    victim = next(b for b in beats if b.pid == leader["pid"])
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed = time.monotonic()

    def led_by_another() -> bool:
        now = cluster_now(stack)
        return now["beat_leader"] not in (None, leader["id"])

    wait_for(led_by_another, timeout=10)
    with stack.admin() as c:

        def entry() -> dict[str, Any] | None:
            beats_now = c.get("/api/v1/cluster").json()["beats"]
            return next((b for b in beats_now if b["id"] == leader["id"]), None)

        assert entry() is not None and not entry()["stale"]  # type: ignore[index]
        wait_for(lambda: entry()["stale"], timeout=TTL)  # type: ignore[index]
        wait_for(lambda: entry() is None, timeout=TTL)
        gone_after = time.monotonic() - killed
        data = c.get("/api/v1/cluster").json()
    assert TTL - 2.5 < gone_after < TTL + 3, gone_after
    new_leader = next(b for b in data["beats"] if b["id"] == data["beat_leader"])
    assert new_leader["leading"] and not new_leader["stale"] and len(data["beats"]) == 2


def test_a_workers_busy_children_say_which_task_runs_for_how_long(stack: Stack) -> None:
    with stack.admin() as c:
        answer = c.post("/api/v1/functions/demo.nap/tasks", json={"kwargs": {"seconds": 60}})
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["id"]

    def running() -> dict[str, Any] | None:
        [worker] = cluster_now(stack)["workers"]
        return next((t for t in worker["running"] if t["task"] == task_id), None)

    first = wait_for(running, timeout=15)
    assert first["function"] == "demo.nap" and first["queue"] == answer.json()["queue"], first
    assert first["pid"] != stack.worker.pid and first["child"] in (0, 1), first

    def ran_on() -> dict[str, Any] | None:
        task = running()
        return task if task and task["running_for"] >= first["running_for"] + 1 else None

    later = wait_for(ran_on)
    assert later["since"] == first["since"] and later["pid"] == first["pid"]
    with stack.admin() as c:
        [worker] = c.get("/api/v1/cluster").json()["workers"]
    assert worker["busy"] == 1 and worker["processes"] == 2 and worker["direct"] == 0, worker
    [task] = worker["running"]
    assert task["task"] == task_id and task["running_for"] >= 1, task

    env = {**stack.env, "COLUMNS": "80"}
    listing = subprocess.run(
        [*FNHUB, "cluster", "-p", str(stack.dir)], env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    assert all(len(line) <= 80 for line in listing.stdout.splitlines()), listing.stdout
    assert "1/2" in listing.stdout, listing.stdout
    row = next(line for line in listing.stdout.splitlines() if "demo.nap" in line)
    assert task_id in row and str(first["pid"]) in row, listing.stdout
    as_json = subprocess.run(
        [*FNHUB, "cluster", "--json", "-p", str(stack.dir)], env=env, capture_output=True
    )
    [listed] = json.loads(as_json.stdout)["workers"]
    assert [t["task"] for t in listed["running"]] == [task_id]


def test_members_killed_with_sigkill_stay_listed_stale_until_the_ttl(stack: Stack) -> None:
    """A server, a beat and a worker supervisor SIGKILLed while another worker runs: each is
    shown stale, with when it was last seen, for the presence TTL; the dead worker's tasks are
    released meanwhile (its entry used to go with them, about 4 s after the kill)."""
    worker = _cli("worker", "-p", str(stack.dir), env=stack.env, log=stack.dir / "w2.log")
    beat = _cli("beat", "-p", str(stack.dir), env=stack.env, log=stack.dir / "beat.log")
    stack.extra.extend([worker, beat])
    victims = {"servers": stack.server, "beats": beat, "workers": worker}

    def entries() -> dict[str, dict[str, Any] | None]:
        now = cluster_now(stack)
        return {
            role: next((m for m in now[role] if m["pid"] == p.pid), None)
            for role, p in victims.items()
        }

    wait_for(lambda: all(e and not e["stale"] for e in entries().values()), timeout=30)
    [worker_id] = [e["id"] for role, e in entries().items() if role == "workers" and e]

    def consumers() -> list[str]:
        stream = f"{stack.prefix}:q:sync"
        return [str(c["name"]) for c in stack.redis.xinfo_consumers(stream, "workers")]

    wait_for(lambda: sum(worker_id in c for c in consumers()) == 2, timeout=30)  # its children
    for process in victims.values():
        process.send_signal(signal.SIGKILL)
    for process in victims.values():
        process.wait()
    killed, killed_at = time.monotonic(), time.time()

    wait_for(lambda: all(e and e["stale"] for e in entries().values()), timeout=TTL - 3)
    # the live worker released the dead one's consumers: its entry is still there, stale
    released = f"releasing tasks of dead consumer {worker_id}."
    wait_for(lambda: released in (stack.dir / "worker.log").read_text(), timeout=TTL - 3)
    seen = entries()
    for role, entry in seen.items():
        assert entry is not None and entry["stale"], (role, seen)
        assert killed_at - 3 < entry["last_seen"] <= killed_at, (role, entry, killed_at)
    assert time.monotonic() - killed < TTL - 2, "too slow to tell stale from gone"

    wait_for(lambda: not any(entries().values()), timeout=TTL + 2)
    gone_after = time.monotonic() - killed
    assert TTL - 3 < gone_after < TTL + 3, gone_after
    # only the survivor is listed
    now = cluster_now(stack)
    assert [w["pid"] for w in now["workers"]] == [stack.worker.pid], now["workers"]
    assert now["servers"] == [] and now["beats"] == [], now


def test_through_sentinel_redis_is_the_primary_the_sentinels_name(tmp_path: Path) -> None:
    """After a failover the cluster shows the new primary, with its replica."""
    redis = SentinelRedis(tmp_path / "redis", replicas=1)
    redis.start()
    stack = None
    try:
        stack = make_stack(tmp_path / "stack", redis_url=redis.url)
        with stack.admin() as c:
            facts = c.get("/api/v1/cluster").json()["redis"]
            assert facts["sentinel"] and facts["role"] == "master" and facts["replicas"] == 1
            assert facts["address"] == f"127.0.0.1:{redis.primary_port()}"
            assert "redis+sentinel://" in facts["url"]
            new, _seconds = redis.failover()

            def moved() -> bool:
                answer = c.get("/api/v1/cluster")
                return answer.status_code == 200 and answer.json()["redis"]["address"].endswith(
                    f":{new}"
                )

            wait_for(moved, timeout=30, interval=0.2)
            assert c.get("/api/v1/cluster").json()["redis"]["role"] == "master"
    finally:
        if stack is not None:
            close_stack(stack)
        redis.close()
