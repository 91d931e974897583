"""Two real `fnhub beat` processes; the leader is SIGKILLed mid-run, twice: every tick of every
job is enqueued exactly once over 30+ ticks."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fnhub.bootstrap import Services

from .conftest import REDIS_URL, add_job, queued, ticks_of


def start_beat(services: Services, project: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FNHUB_REDIS_URL": REDIS_URL,
        "FNHUB_KEY_PREFIX": services.settings.key_prefix,
        "FNHUB_DATA_DIR": str(services.settings.data_dir),
        "FNHUB_CRON_LEASE_SECONDS": "1.0",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from fnhub.cli import main; main()", "beat", "-p", str(project)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def leader_pid(services: Services, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = services.redis.get(services.keys.beat_leader)
        if holder:
            return int(holder.decode().rsplit("-", 2)[1])
        time.sleep(0.05)
    raise AssertionError("no beat took the lease")


def test_leader_killed_mid_run_loses_and_doubles_nothing(
    services: Services, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        add_job(
            services, id=f"job-{name}", function="jobs.tick", expr="* * * * * *", overlap="allow"
        )
    beats = [start_beat(services, tmp_path), start_beat(services, tmp_path)]
    try:
        start = time.time()
        for kill_at in (11, 22):
            while time.time() - start < kill_at:
                time.sleep(0.1)
            pid = leader_pid(services)
            victim = next(b for b in beats if b.pid == pid)
            time.sleep(0.5)  # mid-run: between two ticks' sends, lease recently renewed
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            beats.remove(victim)
            beats.append(start_beat(services, tmp_path))  # keep two candidates
        while time.time() - start < 36:
            time.sleep(0.1)
    finally:
        for beat in beats:
            beat.send_signal(signal.SIGTERM)
        for beat in beats:
            beat.wait(10)
    tasks = queued(services)
    for job in ("job-a", "job-b"):
        ticks = ticks_of(tasks, job)
        counts = collections.Counter(ticks)
        assert max(counts.values()) == 1, (
            f"doubled ticks: {[t for t, n in counts.items() if n > 1]}"
        )
        expected = list(range(min(ticks), max(ticks) + 1))
        assert sorted(ticks) == expected, f"lost ticks: {sorted(set(expected) - set(ticks))}"
        assert len(ticks) >= 30
