"""The Cluster page: `fnhub serve`'s server, worker and beat plus two `fnhub beat`s and two
`fnhub worker`s, each worker running a long task and `fnhub serve`'s worker a direct child's
(a `path: direct` subscription's message), one beat and one worker killed with SIGKILL: every
role listed, the leader marked, the dead beat and worker marked stale with when they were last
seen, which child runs which task for how long (the dead worker's marked lost; the direct
child's with its task id and subscription), the busy children counted (the direct child too),
the Redis and database facts shown (docs/console/cluster.png is this page)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import Page, expect
from tests.conftest import REDIS_URL, wait_for

from .conftest import Console, Screens


@pytest.fixture
def beats(console: Console) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "fnhub.cli", "beat"],
            cwd=console.project,
            env=console.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    yield started
    for beat in started:
        if beat.poll() is None:
            beat.send_signal(signal.SIGTERM)
            beat.wait(30)


NAP = """import time

import fnhub


@fnhub.api("Sleep", timeout=120)
def sleep(seconds: float = 30):
    time.sleep(seconds)
    return seconds


@fnhub.api("Doze on a message", timeout=120)
def doze(topic, message):
    time.sleep(60)
"""
QUEUES = ("night", "batch")  # one `fnhub worker` on each
STREAM = "cluster-page-in"  # a direct subscription's, run by `fnhub serve`'s worker


@pytest.fixture
def workers(console: Console) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "fnhub.cli", "worker", "--queues", queue, "--processes", "1"],
            cwd=console.project,
            env=console.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for queue in QUEUES
    ]
    yield started
    for worker in started:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)


@pytest.fixture
def direct_stream(console: Console) -> Iterator[str]:
    """The `nap` script, and a direct subscription (`fnhub serve`'s worker runs its children)
    on a stream of its own whose messages `nap.doze` runs; the subscription removed after."""
    stream = f"{STREAM}-{console.prefix}"
    with console.api() as api:
        assert api.put("/api/v1/scripts/nap", json={"code": NAP}).status_code == 200
        local = {"type": "redis", "settings": {"url": REDIS_URL}}
        assert api.put("/api/v1/connectors/cluster-local", json=local).status_code == 200
        dozy = {
            "connector": "cluster-local",
            "topics": [stream],
            "function": "nap.doze",
            "options": {"kind": "stream", "start": "0"},
            "path": "direct",
        }
        answer = api.put("/api/v1/subscriptions/cluster-dozy", json=dozy)
        assert answer.status_code == 200, answer.text
    yield stream
    with console.api() as api:
        assert api.delete("/api/v1/subscriptions/cluster-dozy").status_code in (200, 204)
        assert api.delete("/api/v1/connectors/cluster-local").status_code in (200, 204)
    broker = redis.Redis.from_url(REDIS_URL)
    broker.delete(stream)
    broker.close()


@pytest.mark.timeout(240)  # Chromium, five fnhub processes and a 6 s wait for the stale ones
def test_cluster_page_shows_every_role_what_runs_and_the_dead_as_stale(
    page: Page,
    console: Console,
    screens: Screens,
    beats: list[subprocess.Popen[bytes]],
    workers: list[subprocess.Popen[bytes]],
    direct_stream: str,
) -> None:
    pids = {w.pid for w in workers}
    with console.api() as api:

        def listed() -> dict:
            data = api.get("/api/v1/cluster").json()
            ready = {b.pid for b in beats} <= {m["pid"] for m in data["beats"]}
            return data if ready and pids <= {m["pid"] for m in data["workers"]} else {}

        data = wait_for(listed, timeout=60)  # five processes starting on a loaded machine
        standby = next(
            b for b in beats if b.pid not in {m["pid"] for m in data["beats"] if m["leading"]}
        )
        dead = next(m for m in data["beats"] if m["pid"] == standby.pid)
        tasks = {}
        for queue in QUEUES:
            body = {"kwargs": {"seconds": 30}, "queue": queue}
            answer = api.post("/api/v1/functions/nap.sleep/tasks", json=body)
            assert answer.status_code == 202, answer.text
            tasks[queue] = answer.json()["id"]

        broker = redis.Redis.from_url(REDIS_URL)
        try:
            broker.xadd(direct_stream, {"data": "zzz"})

            def running() -> dict:
                data = api.get("/api/v1/cluster").json()
                ran = {t["task"] for w in data["workers"] for t in w["running"]}
                direct = [t for w in data["workers"] for t in w["running"] if t.get("subscription")]
                return data if set(tasks.values()) <= ran and direct else {}

            data = wait_for(running, timeout=60)
        finally:
            broker.close()
        [direct] = [t for w in data["workers"] for t in w["running"] if t.get("subscription")]
        assert direct["task"] and direct["subscription"] == "cluster-dozy", direct
        victim = workers[1]
        lost = next(m for m in data["workers"] if m["pid"] == victim.pid)
    standby.send_signal(signal.SIGKILL)
    victim.send_signal(signal.SIGKILL)
    standby.wait()
    victim.wait()
    page.set_viewport_size({"width": 1280, "height": 1220})
    page.goto(console.url + "/cluster")
    expect(page.get_by_role("heading", name="Cluster", exact=True)).to_be_visible()
    for heading in ("Servers", "Beats", "Workers", "Redis", "Database"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Cluster")).to_be_visible()  # in the navigation
    beats_table = page.locator("table").nth(1)
    expect(beats_table.get_by_text("leading", exact=True)).to_have_count(1)
    expect(beats_table.get_by_text("standing by", exact=True)).to_have_count(2)
    expect(page.locator("table").nth(0)).to_contain_text(console.url)  # the server's address
    # the killed beat misses three 2-second heartbeats: marked stale at the next refresh
    dead_row = page.get_by_role("row").filter(has_text=dead["id"])
    expect(dead_row.get_by_text("stale", exact=True)).to_be_visible(timeout=15_000)
    expect(dead_row).to_contain_text("leaves in")
    workers_table = page.locator("table").nth(2)
    lost_row = workers_table.get_by_role("row").filter(has_text=lost["id"])
    expect(lost_row.get_by_text("stale", exact=True)).to_be_visible(timeout=15_000)
    expect(page.locator(".stat", has_text="stale members")).to_contain_text("2")
    # the live workers: `fnhub serve`'s (its processes, its direct children; one runs the
    # message) and the one on `night`; the direct child counts as busy
    live = [w for w in data["workers"] if w["pid"] != victim.pid]
    children = sum(w["processes"] + w["direct"] for w in live)
    assert children > 3, live
    busy = page.locator(".stat", has_text="workers")
    expect(busy).to_contain_text(f"2 of {children} processes busy")
    running = page.locator("table").nth(3)
    for queue, task_id in tasks.items():
        row = running.get_by_role("row").filter(has_text=task_id)
        expect(row).to_contain_text("nap.sleep")
        expect(row).to_contain_text(queue)
        expect(row.get_by_text("lost", exact=True)).to_have_count(int(queue == QUEUES[1]))
    row = running.get_by_role("row").filter(has_text=direct["task"])
    expect(row).to_contain_text("nap.doze")
    expect(row).to_contain_text("cluster-dozy (direct)")
    expect(page.locator("dl.facts").first).to_contain_text("master")
    expect(page.locator("dl.facts").nth(1)).to_contain_text("sqlite")
    expect(page.locator("dl.facts").nth(1).get_by_text("newest", exact=True)).to_be_visible()
    screens.shot(page, "cluster")
