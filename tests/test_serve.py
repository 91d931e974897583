"""`fnhub serve` on embedded defaults, driven through the real CLI as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import free_port, wait_for
from tests.test_heap import FROZEN

from fnhub.calling.queue_client import QueueClient
from fnhub.config import load_settings
from fnhub.heap import GC_THRESHOLDS
from fnhub.store.db import Database
from fnhub.store.models import TaskRecord
from fnhub.worker.processes import descendants

SLOW = """
import time
import fnhub

@fnhub.api("slow")
def slow(i: int):
    time.sleep(0.2)
    return i

@fnhub.api("long")
def long(started: str):
    open(started, "a").close()
    time.sleep(3)
    return fnhub.context.attempt
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


def _serve_work(tmp_path: Path) -> tuple[Path, dict[str, str], subprocess.Popen[bytes]]:
    """A project with SLOW's functions, and `fnhub serve` started on it."""
    env = _env(tmp_path)
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "work.py").write_text(SLOW)
    return project, env, _serve(project, env)


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
    project, env, serve = _serve_work(tmp_path)
    settings = load_settings(project)
    try:
        client = _client_once_serving(project)
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


def _client_once_serving(project: Path) -> QueueClient:
    """A client of the project's queue, once a worker takes its tasks."""
    client = QueueClient(load_settings(project))
    wait_for(lambda: _quiet(lambda: client.queue_has_worker("sync")), timeout=30)
    return client


def _start_long_task(client: QueueClient, tmp_path: Path) -> str:
    """The id of a `work.long` task (its result waited for), once a worker child runs it."""
    started = tmp_path / "started"
    task_id = client.submit("work.long", {"started": str(started)}, wait=True).id
    wait_for(started.exists, timeout=20)
    return task_id


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (reaped by whoever adopted it, or not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def _supervisor_pids(client: QueueClient) -> set[int]:
    """The pids of the worker supervisors heartbeating now."""
    workers = client.redis.hgetall(client.keys.workers).values()
    return {pid for w in workers if not _gone(pid := json.loads(w)["pid"])}


def test_serve_restarts_a_killed_supervisor_and_leaves_no_child(tmp_path):
    project, _, serve = _serve_work(tmp_path)
    try:
        client = _client_once_serving(project)
        [old] = wait_for(lambda: _supervisor_pids(client), timeout=10)
        held = _start_long_task(client, tmp_path)
        old_children = [pid for pid, _ in descendants(old)]
        assert old_children
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: all(_gone(pid) for pid in old_children), timeout=5)
        new = wait_for(lambda: _supervisor_pids(client) - {old}, timeout=15)
        assert new and serve.poll() is None
        assert client.call("work.slow", {"i": 7}, timeout=20).result == 7
        # the task the dead child held comes back once the old heartbeat expires
        redelivered = client.wait(held, timeout=40)
        assert redelivered is not None and redelivered.result == 2
        restarts = client.redis.hget(client.keys.loop_restarts, "serve-worker")
        assert restarts is not None and int(restarts) >= 1
        client.close()
    finally:
        _stop(serve)
    assert serve.returncode == 0
    log = (project / "serve.log").read_text()
    assert "loop serve-worker failed; restarting" in log
    assert f"worker supervisor {old} exited with code -9" in log


def test_a_killed_serve_leaves_no_process_behind(tmp_path):
    project, _, serve = _serve_work(tmp_path)
    try:
        client = _client_once_serving(project)
        _start_long_task(client, tmp_path)
        client.close()
        family = [pid for pid, _ in descendants(serve.pid)]
        assert len(family) >= 3  # Redis, the supervisor, its child
    finally:
        serve.kill()
        serve.wait()
    wait_for(lambda: all(_gone(pid) for pid in family), timeout=5)


def test_serve_logs_json_lines(tmp_path):
    """`log_format: json`: everything `fnhub serve` and its worker write is one JSON object per
    line, its lines for people (embedded Redis, the console's address, failed tasks) included."""
    env = {**_env(tmp_path), "FNHUB_LOG_FORMAT": "json"}
    assert _fnhub("init", "demo", cwd=tmp_path, env=env).returncode == 0
    project = tmp_path / "demo"
    serve = _serve(project, env)
    try:
        client = QueueClient(load_settings(project))
        wait_for(lambda: _quiet(lambda: client.queue_has_worker("sync")), timeout=30)
        bad = _fnhub("call", "hello.add", "--kwargs", '{"a": "x", "b": 1}', cwd=project, env=env)
        assert bad.returncode == 1
        wait_for(lambda: "hello.add failure" in (project / "serve.log").read_text(), timeout=10)
        client.close()
    finally:
        _stop(serve)
    assert serve.returncode == 0, (project / "serve.log").read_text()
    records = [json.loads(line) for line in (project / "serve.log").read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    messages = [r["message"] for r in records]
    assert any(m.startswith("embedded Redis on ") for m in messages)
    assert any(m.startswith("web console: http://") for m in messages)
    assert any("fnhub.worker" in r["logger"] for r in records)


def test_serve_with_two_http_processes_serves_from_both_and_stops_them(tmp_path):
    env = {**_env(tmp_path), "FNHUB_HTTP_PROCESSES": "2"}
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "work.py").write_text(SLOW)
    serve = _serve(project, env)
    url = f"http://127.0.0.1:{env['FNHUB_PORT']}"

    def pids() -> set[int]:
        found = set()
        for _ in range(40):
            answer = httpx.get(f"{url}/healthz", timeout=10)
            found.add(int(answer.headers["x-fnhub-pid"]))
        return found

    try:
        client = _client_once_serving(project)
        assert client.call("work.slow", {"i": 3}, timeout=20).result == 3
        client.close()
        wait_for(lambda: len(_quiet(pids) or ()) == 2, timeout=30)
        http = pids()
        family = [pid for pid, _ in descendants(serve.pid)]
        assert set(http) <= set(family)
    finally:
        _stop(serve)
    assert serve.returncode == 0
    wait_for(lambda: all(_gone(pid) for pid in family), timeout=10)


def test_serve_on_a_read_only_data_folder_says_so(tmp_path):
    """As in a container with a read-only root and no volume: one clear line, no traceback."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a read-only bind mount")
    env = _env(tmp_path)
    project = tmp_path / "proj"
    data = project / ".fnhub"
    data.mkdir(parents=True)
    (project / "fnhub.yaml").write_text("settings: {}\n")
    # a mount namespace of its own: the read-only mount never shows outside this process
    script = f'mount --bind -o ro "{data}" "{data}" && exec "$@"'
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "fnhub.cli", "serve"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "mount" in result.stderr and "permission denied" in result.stderr.lower():
        pytest.skip(f"no read-only bind mount here: {result.stderr.strip()}")
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, out
    assert f"the data folder {data} is not writable" in out
    assert "mount a volume there" in out and "Traceback" not in out


def test_serve_and_its_worker_froze_their_start_up_without_a_collection(tmp_path):
    """`fnhub serve -v`: the process serving HTTP and the worker supervisor it spawned each
    froze what start-up made, with no collection while paused (`fnhub.heap`)."""
    env = _env(tmp_path)
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    log = open(project / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    serve = subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", "serve", "--processes", "1", "-v"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        lines = wait_for(
            lambda: (
                (found := FROZEN.findall((project / "serve.log").read_text()))
                and len(found) >= 2
                and found
            ),
            timeout=60,
        )
    finally:
        _stop(serve)
    for frozen, on, thresholds, collections in lines:
        assert int(frozen) > 0 and on == "True" and collections == "0"
        assert thresholds == ", ".join(map(str, GC_THRESHOLDS))
