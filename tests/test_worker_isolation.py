"""What user code does to its worker child stays with its task: BaseExceptions, processes it
started, forked copies of the child, memory. Real Redis, real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from tests.conftest import call_ok, wait_for

from fnhub.calling.maker import make_task
from fnhub.queue import iter_results

SCRIPT = textwrap.dedent(
    """
    import os
    import subprocess
    import sys
    import time

    import fnhub


    @fnhub.api("pid")
    def pid():
        return os.getpid()


    @fnhub.api("raises a BaseException")
    def raises(kind: str):
        print("about to raise", kind)
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt("from user code")
        if kind == "SystemExit":
            sys.exit(3)
        if kind == "GeneratorExit":
            raise GeneratorExit("from user code")
        raise BaseException("a bare one")


    @fnhub.api("raises a BaseException from a coroutine")
    async def raises_async(kind: str):
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt("from a coroutine")
        sys.exit(4)


    @fnhub.api("starts processes, then overstays", timeout=1)
    def spawns():
        started = [
            subprocess.Popen(["sleep", "1000"]),
            subprocess.Popen(["sh", "-c", "sleep 1001 & wait"]),  # a grandchild
            subprocess.Popen(["sleep", "1002"], process_group=0),  # its own group
            subprocess.Popen(["sleep", "1003"], start_new_session=True),  # its own session
        ]
        fnhub.cache.set("pids", [p.pid for p in started])
        time.sleep(60)


    @fnhub.api("starts a process, then takes its time", timeout=60)
    def starts_sleep():
        fnhub.cache.set("pids", [subprocess.Popen(["sleep", "1000"]).pid])
        time.sleep(60)


    @fnhub.api("starts a program and stops it with a signal")
    def stops_a_program(signum: int):
        program = subprocess.Popen(["sleep", "100"])
        time.sleep(0.1)  # it has exec'd
        program.send_signal(signum)
        return program.wait(5)


    @fnhub.api("forks; the copy ends as told")
    def forks(copy: str):
        pid = os.fork()
        if pid == 0:  # the forked copy of the worker child
            if copy == "lingers":
                time.sleep(0.3)  # the parent has returned: the worker loop is idle
                raise SystemExit(0)
            if copy == "raises":
                raise SystemExit(0)
            if copy == "fails":
                raise ValueError("in the copy")
            return "from the copy"
        if copy != "lingers":
            os.waitpid(pid, 0)
        return "from the child"


    _hoard = []


    @fnhub.api("returns, and leaves a thread that allocates")
    def leaves_a_hoarder(mb: int):
        import threading

        def hoard():
            time.sleep(0.3)
            _hoard.append(b"x" * (mb << 20))

        threading.Thread(target=hoard, daemon=True).start()
        return "returned"


    @fnhub.api("allocates", timeout=30)
    def hog(mb: int):
        blocks = []
        for _ in range(mb // 8):
            blocks.append(b"x" * (8 << 20))  # written, so resident
        return len(blocks)
    """
)


@pytest.fixture
def one_child(publish, start_worker):
    publish({"iso": SCRIPT})
    return start_worker(processes=1)


def _alive(pid: int) -> bool:
    """Running (an exited process nobody reaped yet is a zombie, "Z": it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize(
    ("function", "kind", "error_type"),
    [
        ("iso.raises", "KeyboardInterrupt", "KeyboardInterrupt"),
        ("iso.raises", "SystemExit", "SystemExit"),
        ("iso.raises", "GeneratorExit", "GeneratorExit"),
        ("iso.raises", "BaseException", "BaseException"),
        ("iso.raises_async", "KeyboardInterrupt", "KeyboardInterrupt"),
        ("iso.raises_async", "SystemExit", "SystemExit"),
    ],
)
def test_base_exceptions_fail_the_task_not_the_child(client, one_child, function, kind, error_type):
    pid = call_ok(client, "iso.pid").result
    result = client.call(function, {"kind": kind}, timeout=15)
    assert result.status == "failure"
    assert result.error_type == error_type
    assert result.traceback and error_type in result.traceback
    assert result.attempt == 1  # failed once, not retried as a dead child's task
    assert call_ok(client, "iso.pid").result == pid  # the same child runs the next task


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_programs_a_task_runs_can_be_stopped_with_sigterm_or_sigint(client, one_child, signum):
    """The child does not ignore SIGTERM/SIGINT (an ignored signal stays ignored through exec):
    it catches them, and a program a task runs has the default action again."""
    result = client.call("iso.stops_a_program", {"signum": int(signum)}, timeout=15)
    assert result.status == "success", (result.error_type, result.error_message)
    assert result.result == -signum


def test_timeout_kills_every_process_the_task_started(client, one_child, services):
    task = client.submit("iso.spawns", wait=True)
    key = f"{services.keys.prefix}:cache:iso:pids"
    pids = json.loads(wait_for(lambda: services.redis.get(key)))
    grandchildren = wait_for(lambda: _children(pids[1]))
    everyone = [*pids, *grandchildren]
    assert all(_alive(p) for p in everyone)
    result = client.wait(task.id, 15)
    assert result.status == "timeout"
    wait_for(lambda: not any(_alive(p) for p in everyone), timeout=5)
    call_ok(client, "iso.pid")


@pytest.mark.parametrize("copy", ["raises", "fails", "returns", "lingers"])
def test_a_forked_copy_never_answers_nor_takes_tasks(client, one_child, services, settings, copy):
    pid = call_ok(client, "iso.pid").result
    replies = f"{services.keys.prefix}:test-replies"  # this task's alone: every answer counts
    client.enqueue(
        make_task(settings, client.active(), "iso.forks", {"copy": copy}, reply_to=replies)
    )
    answers = wait_for(lambda: services.redis.xrange(replies))
    time.sleep(0.6)  # a lingering copy is back in the loop by now, if it can get there
    results = [r for _, fields in services.redis.xrange(replies) for r in iter_results(fields)]
    assert len(answers) == 1 and len(results) == 1, results
    assert results[0].status == "success", (results[0].error_type, results[0].error_message)
    assert results[0].result == "from the child"
    assert {call_ok(client, "iso.pid").result for _ in range(20)} == {pid}


def test_memory_limit_fails_the_task_and_the_next_one_runs(client, publish, start_worker, settings):
    publish({"iso": SCRIPT})
    limited = settings.model_copy(update={"child_memory_limit_mb": 200})
    start_worker(processes=1, settings_override=limited)
    assert call_ok(client, "iso.hog", {"mb": 40}).result == 5  # well under: runs
    first = call_ok(client, "iso.pid").result
    result = client.call("iso.hog", {"mb": 2000}, timeout=30)
    assert result.status == "failure"
    assert result.error_type == "MemoryLimitExceeded"
    assert "memory limit of 200 MB" in result.error_message
    assert result.attempt == 1
    assert call_ok(client, "iso.pid").result != first  # the child was replaced


def test_ctrl_c_stops_fnhub_worker_and_what_its_tasks_started(
    client, publish, services, settings, tmp_path
):
    """A terminal's Ctrl-C signals its foreground group: the supervisor, no longer the children
    (each leads its own session). The supervisor stops them, and what their tasks started."""
    publish({"iso": SCRIPT})
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        "FNHUB_REDIS_URL": settings.redis_url,
        "FNHUB_DB_URL": settings.db_url,
        "FNHUB_KEY_PREFIX": settings.key_prefix,
        "FNHUB_DATA_DIR": str(settings.data_dir),
        "FNHUB_PROCESSES": "1",
        "FNHUB_HEARTBEAT_SECONDS": "0.5",
        "FNHUB_SHUTDOWN_GRACE_SECONDS": "1",
    }
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", "from fnhub.cli import main; main()", "worker", "-p", "."],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a shell gives a foreground job
        )
    try:
        wait_for(lambda: client.queue_has_worker("sync"), timeout=30)
        client.submit("iso.starts_sleep")
        key = f"{services.keys.prefix}:cache:iso:pids"
        (sleeper,) = json.loads(wait_for(lambda: services.redis.get(key)))
        os.killpg(worker.pid, signal.SIGINT)
        assert worker.wait(15) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        wait_for(lambda: not _alive(sleeper), timeout=5)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_child_over_the_memory_limit_between_tasks_is_replaced(
    client, publish, start_worker, settings
):
    publish({"iso": SCRIPT})
    limited = settings.model_copy(update={"child_memory_limit_mb": 200})
    start_worker(processes=1, settings_override=limited)
    first = call_ok(client, "iso.pid").result
    assert call_ok(client, "iso.leaves_a_hoarder", {"mb": 400}).result == "returned"
    time.sleep(1.0)  # the thread allocates 0.3 s after the return, the supervisor sees it
    # the next task is not blamed for what the last one left: it runs in a new child
    assert call_ok(client, "iso.pid").result != first
