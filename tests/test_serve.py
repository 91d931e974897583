"""`fnhub serve` on embedded defaults, driven through the real CLI as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from tests.conftest import free_port, wait_for

from fnhub.calling.queue_client import QueueClient
from fnhub.config import load_settings
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord

SLOW = """
import time
import fnhub

@fnhub.api("slow")
def slow(i: int):
    time.sleep(0.2)
    return i
"""


def _fnhub(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fnhub.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(FNHUB_PORT=str(free_port()), FNHUB_SHUTDOWN_GRACE_SECONDS="0.5")
    return env


def _serve(project: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(project / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", "serve", "--processes", "1"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_cli_init_serve_call_tasks(tmp_path):
    env = _env(tmp_path)
    assert _fnhub("init", "demo", cwd=tmp_path, env=env).returncode == 0
    project = tmp_path / "demo"
    serve = _serve(project, env)
    try:
        client = QueueClient(load_settings(project))
        wait_for(lambda: _quiet(lambda: client.queue_has_worker("sync")), timeout=30)
        ok = _fnhub("call", "hello.greet", "--kwargs", '{"name": "ada"}', cwd=project, env=env)
        assert ok.returncode == 0, ok.stderr
        assert '"hello, ada!"' in ok.stdout
        assert "greeting ada" in ok.stderr  # captured print, shown to the caller
        bad = _fnhub("call", "hello.add", "--kwargs", '{"a": "x", "b": 1}', cwd=project, env=env)
        assert bad.returncode == 1
        assert "TypeError" in bad.stderr
        unknown = _fnhub("call", "hello.nope", cwd=project, env=env)
        assert unknown.returncode == 2 and "unknown function 'hello.nope'" in unknown.stderr
        malformed = _fnhub("call", "hello.greet", "--kwargs", "{oops", cwd=project, env=env)
        assert malformed.returncode == 2 and "not valid JSON" in malformed.stderr
        time.sleep(1.5)  # records are batched
        tasks = _fnhub("tasks", cwd=project, env=env)  # piped: full width, nothing cut
        assert tasks.returncode == 0
        assert "hello.greet" in tasks.stdout and "success" in tasks.stdout
        assert "failure" in tasks.stdout
        client.close()
    finally:
        _stop(serve)
    assert serve.returncode == 0, (project / "serve.log").read_text()
    assert not (project / ".fnhub" / "redis.sock").exists()
    log = " ".join((project / "serve.log").read_text().split())  # rich wraps long lines
    assert f"web console: http://127.0.0.1:{env['FNHUB_PORT']}/" in log
    assert "sign in as admin with the password in" in log


def test_queued_tasks_survive_a_restart_of_serve(tmp_path):
    env = _env(tmp_path)
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "work.py").write_text(SLOW)
    serve = _serve(project, env)
    settings = load_settings(project)
    client = QueueClient(settings)
    try:
        wait_for(lambda: _quiet(lambda: client.queue_has_worker("sync")), timeout=30)
        ids = [client.submit("work.slow", {"i": i}).id for i in range(10)]
        time.sleep(0.5)
        queued_before_stop = client.redis.xlen(client.keys.queue("sync"))
        assert queued_before_stop > 0
        client.close()
    finally:
        _stop(serve)
    assert serve.returncode == 0
    serve = _serve(project, env)
    try:
        db = Database(settings.resolved_db_url())

        def all_done() -> bool:
            with db.session() as session:
                rows = session.execute(
                    select(TaskRecord.id, TaskRecord.status).where(TaskRecord.id.in_(ids))
                ).all()
            return len(rows) == 10 and {s for _, s in rows} == {"success"}

        wait_for(all_done, timeout=40, interval=0.3)
        db.dispose()
    finally:
        _stop(serve)


def _quiet(fn):
    try:
        return fn()
    except Exception:
        return False
