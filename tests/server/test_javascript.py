"""JavaScript functions through a real stack: published by the API (validated in Node), called by
HTTP, fired by cron, timed out, failing with their JS stack, and retried as attempt 2 when their
Node process is killed — the same queue, records and worker supervisor as Python's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import wait_for

from .conftest import Stack, close_stack, make_stack

JS = r"""
const fnhub = require('fnhub');

exports.greet = fnhub.api({ title: 'Greet', timeout: 5 }, async ({ name = 'world' }) => {
  console.log('greeting', name);
  return `hello ${name}`;
});

exports.tick = async () => fnhub.cache.incr('ticks');

exports.spin = fnhub.api({ timeout: 1 }, () => { while (true) {} });

exports.fails = () => { throw new TypeError('bad input'); };

exports.rejects = async () => Promise.reject(new RangeError('too far'));

// keeps everything it allocates: past node_max_old_space_mb, V8 gives up
exports.hog = fnhub.api({ timeout: 60 }, () => {
  const kept = [];
  for (;;) kept.push(new Array(1e6).fill(kept.length));
});

// the first attempt waits (to be killed), the next answers
exports.second = fnhub.api({ timeout: 60 }, async () => {
  if (fnhub.context.attempt === 1) await new Promise((resolve) => setTimeout(resolve, 50000));
  return `attempt ${fnhub.context.attempt}`;
});
"""


USES_DEP = """
const { shout } = require('fnhub-test-dep');
exports.loud = async ({ text }) => shout(text);
"""


def _npm_project(folder: Path) -> None:
    """A project needing an npm package: package.json and its lock, the package a tarball made
    here with `npm pack` (offline; a registry would serve the same file)."""
    src = folder / "dep-src"
    src.mkdir()
    (src / "package.json").write_text(
        json.dumps({"name": "fnhub-test-dep", "version": "1.0.0", "main": "index.js"})
    )
    (src / "index.js").write_text("exports.shout = (s) => s.toUpperCase() + '!';\n")
    packed = subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(folder)],
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    )
    tarball = folder / packed.stdout.strip().splitlines()[-1]
    dependencies = {"fnhub-test-dep": f"file:{tarball}"}
    (folder / "package.json").write_text(json.dumps({"name": "p", "dependencies": dependencies}))
    subprocess.run(
        ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("js")
    _npm_project(tmp)
    s = make_stack(tmp, processes="1", node_max_old_space_mb="64")
    try:
        with s.admin() as c:
            for name, code in (("js", JS), ("usesdep", USES_DEP)):
                published = c.put(
                    f"/api/v1/scripts/{name}", json={"code": code, "language": "javascript"}
                )
                assert published.status_code == 200, published.text
        yield s
    finally:
        close_stack(s)


def _call(c: httpx.Client, ref: str, **kwargs: Any) -> httpx.Response:
    return c.post(f"/api/v1/functions/{ref}/call", json={"kwargs": kwargs})


def _record(c: httpx.Client, task_id: str) -> dict[str, Any]:
    """The task's record (written within about a second of its end)."""
    answer = wait_for(lambda: (r := c.get(f"/api/v1/tasks/{task_id}/record")).is_success and r)
    record: dict[str, Any] = answer.json()
    return record


def test_published_with_its_language_and_functions(stack: Stack) -> None:
    with stack.admin() as c:
        listed = {s["name"]: s for s in c.get("/api/v1/scripts").json()}
        assert listed["js"]["language"] == "javascript"
        assert listed["demo"]["language"] == "python"
        assert set(listed["js"]["functions"]) == {
            "greet",
            "tick",
            "spin",
            "fails",
            "hog",
            "rejects",
            "second",
        }
        assert c.get("/api/v1/scripts/js").json()["active"]["language"] == "javascript"
        functions = {f["ref"]: f for f in c.get("/api/v1/functions").json()}
        assert functions["js.greet"]["title"] == "Greet"


def test_a_sync_call_returns_the_value_and_records_console_output(stack: Stack) -> None:
    with stack.admin() as c:
        answer = _call(c, "js.greet", name="ann")
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"] == "hello ann"
        record = _record(c, answer.headers["X-Task-Id"])
        assert record["status"] == "success"
        assert "greeting ann" in record["logs"]


def test_a_syntax_error_is_refused_where_it_is_and_the_old_version_stays(stack: Stack) -> None:
    broken = "exports.ok = () => 1;\nexports.bad = () => {\n  return (1 +;\n};\n"
    with stack.admin() as c:
        refused = c.put("/api/v1/scripts/js", json={"code": broken, "language": "javascript"})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_script" and error["line"] == 3 and error["column"]
        assert _call(c, "js.greet", name="bo").json()["result"] == "hello bo"


def test_errors_and_rejections_fail_with_the_javascript_stack(stack: Stack) -> None:
    with stack.admin() as c:
        for ref, kind, message in (
            ("js.fails", "TypeError", "bad input"),
            ("js.rejects", "RangeError", "too far"),
        ):
            answer = _call(c, ref)
            assert answer.status_code == 500, answer.text
            record = _record(c, answer.headers["X-Task-Id"])
            assert record["status"] == "failure"
            assert record["error_type"] == kind and message in record["error_message"]
            assert "js.js" in (record["traceback"] or "") or "/js." in (record["traceback"] or "")


def test_an_endless_loop_times_out_and_the_next_task_runs(stack: Stack) -> None:
    with stack.admin() as c:
        started = time.monotonic()
        answer = _call(c, "js.spin")
        assert answer.status_code == 504, answer.text
        assert time.monotonic() - started < 10
        assert _call(c, "js.greet", name="after").json()["result"] == "hello after"
        workers = c.get("/api/v1/workers").json()
        # the child killed its Node process itself: the supervisor replaced no worker child
        assert [w["info"]["replaced"] for w in workers] == [0], workers


def _node_processes(prefix: str) -> list[int]:
    """The Node processes of this stack's worker (their environment names its key prefix)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if Path(exe).name.startswith("node") and f"FNHUB_KEY_PREFIX={prefix}".encode() in environ:
            found.append(int(entry.name))
    return found


def test_a_killed_node_process_gives_the_task_a_second_attempt(stack: Stack) -> None:
    with stack.admin() as c:
        submitted = c.post("/api/v1/functions/js.second/tasks", json={"kwargs": {}})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]
        wait_for(lambda: c.get(f"/api/v1/tasks/{task_id}").json()["status"] == "running", 20)
        pids = _node_processes(stack.prefix)
        assert pids, "no Node process found for this stack"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: _record(c, task_id)["status"] == "success", 30)
        record = _record(c, task_id)
        assert record["result"] == "attempt 2"
        assert record["attempt"] == 2
        first = record["attempts"][0]
        assert first["error_type"] == "NodeDied"


# the first attempt starts a grandchild holding the protocol pipes' ends (the worst a function
# can do to them) and one that does not, then waits to be killed; the next answers
KIDS = r"""
const cp = require('child_process');
const fnhub = require('fnhub');
const CONFIG = JSON.parse(process.argv[process.argv.length - 1]);

exports.second = fnhub.api({ timeout: 60 }, async ({ secs }) => {
  if (fnhub.context.attempt === 1) {
    cp.spawn('sleep', [secs], { stdio: ['ignore', 'ignore', 'ignore', CONFIG.inFd, CONFIG.outFd] });
    cp.spawn('sleep', [secs]);
    await new Promise((resolve) => setTimeout(resolve, 50000));
  }
  return `attempt ${fnhub.context.attempt}`;
});
"""


def _sleeping(secs: str) -> list[int]:
    """Live `sleep <secs>` processes (`secs` unique to the test)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and secs in (entry / "cmdline").read_text()
                and (entry / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_killed_node_process_with_grandchildren_gives_a_prompt_second_attempt(
    stack: Stack,
) -> None:
    """Its grandchildren keep the answer pipe open: the death is seen on the process, not the
    pipe, and they go with it (not a 60 s wait for the timeout, nor orphans)."""
    secs = f"{os.getpid() % 500 + 300}.{time.time_ns() % 10**9}"
    with stack.admin() as c:
        put = c.put("/api/v1/scripts/kids", json={"code": KIDS, "language": "javascript"})
        assert put.status_code == 200, put.text
        submitted = c.post("/api/v1/functions/kids.second/tasks", json={"kwargs": {"secs": secs}})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]
        try:
            wait_for(lambda: len(_sleeping(secs)) == 2, 20)
            pids = _node_processes(stack.prefix)
            assert pids, "no Node process found for this stack"
            killed = time.monotonic()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: _record(c, task_id)["status"] == "success", 30)
            assert time.monotonic() - killed < 10
            record = _record(c, task_id)
            assert (record["result"], record["attempt"]) == ("attempt 2", 2)
            assert record["attempts"][0]["error_type"] == "NodeDied"
            wait_for(lambda: not _sleeping(secs), 5)
        finally:
            for pid in _sleeping(secs):
                os.kill(pid, signal.SIGKILL)


def test_a_cron_job_fires_a_javascript_function(stack: Stack) -> None:
    job = {"id": "js-tick", "function": "js.tick", "expr": "* * * * * *"}
    with stack.admin() as c:
        assert c.post("/api/v1/cron-jobs", json=job).status_code == 201
        try:
            wait_for(lambda: int(stack.redis.get(f"{stack.prefix}:cache:js:ticks") or 0) >= 2, 20)
        finally:
            c.delete("/api/v1/cron-jobs/js-tick")
        page = c.get("/api/v1/tasks", params={"origin": "cron", "function": "js.tick"}).json()
        assert page["items"] and all(t["status"] == "success" for t in page["items"])


def test_a_heap_blow_up_fails_the_task_and_the_worker_keeps_serving(stack: Stack) -> None:
    with stack.admin() as c:
        answer = _call(c, "js.hog")
        assert answer.status_code == 500, answer.text
        record = _record(c, answer.headers["X-Task-Id"])
        assert record["status"] == "failure"
        assert record["error_type"] == "MemoryLimitExceeded"
        assert "node_max_old_space_mb" in record["error_message"]
        assert _call(c, "js.greet", name="still").json()["result"] == "hello still"


def test_an_npm_package_installed_from_the_lock_at_apply_is_required(stack: Stack) -> None:
    with stack.admin() as c:
        answer = _call(c, "usesdep.loud", text="npm")
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"] == "NPM!"
    assert list((stack.dir / ".fnhub" / "node" / "packages").glob("*/node_modules/fnhub-test-dep"))
