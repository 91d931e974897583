"""`fnhub call` started before any worker listens (a script that starts `fnhub serve` and calls
at once): it waits for one, up to `--wait-worker`, and queues nothing until then."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import redis
from tests.conftest import REDIS_URL
from tests.project_cli import drop_keys, fnhub, shared_redis_env

SCRIPT = """
import fnhub

@fnhub.api("Add")
def add(a: int, b: int) -> int:
    return a + b
"""


def _project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "calc.py").write_text(SCRIPT)
    (project / "fnhub.yaml").write_text("settings: {}\n")
    env = shared_redis_env(project)
    applied = fnhub("apply", cwd=project, env=env)
    assert applied.returncode == 0, applied.stderr
    return project, env


def _queued(env: dict[str, str]) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        prefix = env["FNHUB_KEY_PREFIX"]
        return sum(
            client.xlen(k) for k in client.scan_iter(match=f"{prefix}:queue:*", _type="stream")
        )
    finally:
        client.close()


def test_a_call_waits_for_a_worker_to_start_then_runs(tmp_path: Path) -> None:
    project, env = _project(tmp_path)
    call = subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", "call", "calc.add", "--kwargs", '{"a": 2, "b": 3}'],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = None
    try:
        assert call.stderr is not None
        line = call.stderr.readline()  # said once, before it waits
        assert "no worker is listening on queue 'sync': waiting up to 30 s" in line
        assert _queued(env) == 0  # nothing queued while nobody listens
        worker = subprocess.Popen(
            [sys.executable, "-m", "fnhub.cli", "worker", "--processes", "1"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out, rest = call.communicate(timeout=60)
        assert call.returncode == 0, rest
        assert out.strip() == "5"
    finally:
        for proc in (call, worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        drop_keys(env)


def test_without_waiting_a_call_fails_at_once_and_queues_nothing(tmp_path: Path) -> None:
    project, env = _project(tmp_path)
    try:
        result = fnhub(
            "call",
            "calc.add",
            "--kwargs",
            '{"a": 1, "b": 1}',
            "--wait-worker",
            "0",
            cwd=project,
            env=env,
        )
        assert result.returncode == 2
        assert "no worker is listening on queue 'sync'" in result.stderr
        assert "waiting" not in result.stderr
        assert _queued(env) == 0
    finally:
        drop_keys(env)
