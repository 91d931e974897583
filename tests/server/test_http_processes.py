"""`fnhub server --workers 2`: two real HTTP processes on one port, both serving; the one that
leads the cron beat SIGKILLed, replaced and serving again, no cron tick doubled or lost; HTTP
counts in `/metrics` summed over both; SIGTERM ends every process."""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path

import httpx
from tests.conftest import wait_for

from fnhub.keys import Keys
from fnhub.tasks import decode_task

from .conftest import close_stack, make_stack
from .test_ops_metrics import sample

CRON = """
cron_jobs:
  - {id: tick, function: demo.echo, expr: "* * * * * *", overlap: allow}
"""


def pid_of(url: str) -> int:
    """The pid of the process that answered `/healthz` on a new connection."""
    return int(httpx.get(f"{url}/healthz", timeout=10).headers["x-fnhub-pid"])


def pids_answering(url: str, tries: int = 60) -> collections.Counter[int]:
    return collections.Counter(pid_of(url) for _ in range(tries))


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def descends_from(pid: int, ancestor: int) -> bool:
    """`ancestor` started `pid` (directly, or through the fork server it started)."""
    while pid > 1:
        pid = parent_of(pid)
        if pid == ancestor:
            return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_two_http_processes_share_the_port_survive_a_kill_and_stop_together(
    tmp_path: Path,
) -> None:
    (tmp_path / "fnhub.yaml").write_text(CRON)
    stack = make_stack(tmp_path, workers=False, http_processes="2", cron_lease_seconds="1")
    try:
        # both processes answer, both started by the supervisor
        first = pids_answering(stack.url)
        assert len(first) == 2, first
        assert all(descends_from(pid, stack.server.pid) for pid in first)

        # HTTP counts of both processes land in one cluster-wide series: every /healthz
        # request is this test's (60 above, 40 here), whichever process answered it
        for _ in range(40):
            pid_of(stack.url)

        def counted() -> bool:
            text = httpx.get(f"{stack.url}/metrics", timeout=10).text
            labels = {"route": "/healthz", "method": "GET", "status": "2xx"}
            return sample(text, "fnhub_http_requests_total", **labels) == 100

        wait_for(counted, timeout=10)

        # SIGKILL the process whose beat leads the cron ticks
        keys = Keys(stack.prefix)
        holder = wait_for(lambda: stack.redis.get(keys.beat_leader), timeout=10)
        victim = int(holder.decode().split("/")[0].rsplit("-", 2)[1])  # <host>-<pid>-<hex>/beat
        assert victim in first
        time.sleep(3.5)  # a few ticks under the first leader
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replaced: dict[str, float] = {}

        def new_pid_serves() -> bool:
            pids = pids_answering(stack.url, 10)
            fresh = set(pids) - set(first)
            if fresh and "at" not in replaced:
                replaced["at"] = time.monotonic() - killed_at
            return bool(fresh) and victim not in pids

        wait_for(new_pid_serves, timeout=20, interval=0.1)
        after = pids_answering(stack.url)
        assert len(after) == 2 and victim not in after, after
        assert all(descends_from(pid, stack.server.pid) for pid in after)
        time.sleep(4)  # ticks under the next leader
        print(f"replacement serving {replaced['at']:.2f}s after the kill")
        assert replaced["at"] < 10

        # every tick fired once: none doubled, none missed across the leader's death
        entries = stack.redis.xrange(keys.queue("cron"))
        ticks = collections.Counter(
            decode_task(fields[b"e"]).meta["cron"]["tick"] for _id, fields in entries
        )
        assert ticks and max(ticks.values()) == 1, [t for t, n in ticks.items() if n > 1]
        span = max(ticks) - min(ticks)
        assert sorted(ticks) == list(range(min(ticks), max(ticks) + 1)), sorted(ticks)
        assert span >= 8

        # SIGTERM stops them all
        children = set(after)
        stack.server.send_signal(signal.SIGTERM)
        stack.server.wait(30)
        wait_for(lambda: not any(alive(pid) for pid in children), timeout=15)
    finally:
        close_stack(stack)


def test_a_killed_supervisor_leaves_no_http_process_behind(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, workers=False, http_processes="2")
    try:
        children = set(pids_answering(stack.url))
        assert len(children) == 2, children
        fork_server = {parent_of(pid) for pid in children}
        stack.server.send_signal(signal.SIGKILL)
        stack.server.wait()
        gone = children | fork_server
        wait_for(lambda: not any(alive(pid) for pid in gone), timeout=20)
    finally:
        close_stack(stack)


def test_each_slot_past_the_first_is_a_node_of_its_own() -> None:
    """`multiple` subscriptions take their broker client id from the node name: one per slot,
    the same for the slot's next process."""
    from fnhub.config import Settings
    from fnhub.server.processes import slot_settings

    settings = Settings(node_name="web1")
    names = [slot_settings(settings, slot).node_name for slot in range(3)]
    assert names == ["web1", "web1-1", "web1-2"]
    assert slot_settings(settings, 2) == slot_settings(settings, 2)
