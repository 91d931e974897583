"""JavaScript functions that start processes of their own (grandchildren of the worker child),
against the machine's real `node`: a kill or timeout of the Node process still ends the task
promptly as it should (the protocol pipes' ends a grandchild may hold do not hide the death),
their output never reaches the protocol, and none of them outlives the Node process that
started it, except one started `detached` (a session of its own, on purpose)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import wait_for

from fnhub.node.executor import NodeDied, NodeExecutor

from .conftest import JsScripts, ok, run

SPAWNS = r"""
const cp = require('child_process');
const fs = require('fs');
const CONFIG = JSON.parse(process.argv[process.argv.length - 1]);

// start `sleep <secs>` the way `how` says, note "<node pid> <child pid>" in `path`
function start(how, secs) {
  const args = [String(secs)];
  if (how === 'default') return cp.spawn('sleep', args);
  if (how === 'inherit') return cp.spawn('sleep', args, { stdio: 'inherit' });
  if (how === 'exec') return cp.exec(`sleep ${secs}; echo done`);
  if (how === 'nested') return cp.spawn('sh', ['-c', `sleep ${secs} & sleep ${secs}; wait`]);
  if (how === 'protocol') {
    // the worst case: a grandchild holding both protocol pipes' ends (a Node or libuv that
    // did not mark them close-on-exec would hand them over by default)
    const stdio = ['ignore', 'ignore', 'ignore', CONFIG.inFd, CONFIG.outFd];
    return cp.spawn('sleep', args, { stdio });
  }
  if (how === 'detached') {
    const child = cp.spawn('sleep', args, { detached: true, stdio: 'ignore' });
    child.unref();
    return child;
  }
  throw new Error(`unknown ${how}`);
}

exports.hang = async ({ how, secs, path }) => {
  const child = start(how, secs);
  fs.writeFileSync(path, `${process.pid} ${child.pid}`);
  await new Promise((resolve) => setTimeout(resolve, 60000));
};

exports.spin = ({ how, secs }) => {
  start(how, secs);
  while (true) {}
};

exports.leave = ({ how, secs }) => {
  start(how, secs);
  return process.pid;
};

// a grandchild writing much to the stdout/stderr it was given, while tasks go on
exports.chatter = ({ how }) => {
  const script =
    'i=0; while [ $i -lt 2000 ]; do echo "garbage $i"; echo "err $i" >&2; i=$((i+1)); done';
  if (how === 'inherit') cp.spawn('sh', ['-c', script], { stdio: 'inherit' });
  else cp.spawn('sh', ['-c', script]);
  return 'started';
};

exports.echo = ({ n }) => {
  console.log('task', n);
  return n;
};
"""

KINDS = ["default", "inherit", "exec", "nested", "protocol"]


def _token() -> str:
    """A `sleep` duration no other process on the machine has: how this test's grandchildren
    are found in /proc (and killed by pid at the end)."""
    return f"{random.randint(200, 900)}.{random.randint(10**8, 10**9 - 1)}"


def _running(token: str) -> list[int]:
    """Live (not zombie) processes whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if token not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def token() -> Iterator[str]:
    value = _token()
    yield value
    for pid in _running(value):  # whatever a failing test left behind: by pid, ours only
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pids(path: Path) -> tuple[int, int]:
    wait_for(lambda: path.exists() and path.read_text(), timeout=10)
    node, child = path.read_text().split()
    return int(node), int(child)


@pytest.mark.parametrize("how", KINDS)
def test_kill9_of_node_with_a_grandchild_alive_is_a_prompt_node_died(
    js: JsScripts, make_executor, tmp_path: Path, token: str, how: str
) -> None:
    """The worker child turns NodeDied into attempt 2 (`after_node_died`): it must come at once,
    not as a timeout when the deadline passes, and no grandchild of the dead process stays."""
    js.publish(spawns=SPAWNS)
    executor: NodeExecutor = make_executor()
    path = tmp_path / "pids"
    killed_at: list[float] = []

    def kill_when_started() -> None:
        node, _ = _pids(path)
        assert _running(token)
        killed_at.append(time.monotonic())
        os.kill(node, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    with pytest.raises(NodeDied):
        run(
            executor,
            "spawns.hang",
            {"how": how, "secs": token, "path": str(path)},
            timeout=20,
        )
    ended = time.monotonic()
    killer.join()
    assert ended - killed_at[0] < 2.0
    assert ok(run(executor, "spawns.echo", {"n": 1})) == 1  # the replacement serves
    wait_for(lambda: not _running(token), timeout=3)


@pytest.mark.parametrize("how", KINDS)
def test_timeout_with_a_grandchild_alive_ends_as_timeout_and_the_next_task_runs(
    js: JsScripts, make_executor, token: str, how: str
) -> None:
    js.publish(spawns=SPAWNS)
    executor: NodeExecutor = make_executor()
    started = time.monotonic()
    result = run(executor, "spawns.spin", {"how": how, "secs": token}, timeout=0.8)
    assert (result.status, result.error_type) == ("timeout", "TimeoutError")
    assert time.monotonic() - started < 2.5
    assert ok(run(executor, "spawns.echo", {"n": 2})) == 2
    wait_for(lambda: not _running(token), timeout=3)


@pytest.mark.parametrize("how", KINDS)
def test_no_grandchild_outlives_its_node_process(
    js: JsScripts, make_executor, token: str, how: str
) -> None:
    """Replaced (new scripts, a crash) or closed with its worker child, a Node process takes
    the processes its functions left running with it."""
    js.publish(spawns=SPAWNS)
    executor: NodeExecutor = make_executor()
    first = ok(run(executor, "spawns.leave", {"how": how, "secs": token}))
    wait_for(lambda: _running(token), timeout=5)
    assert executor.process is not None
    executor._replace(executor.process)
    wait_for(lambda: not _running(token), timeout=3)
    assert ok(run(executor, "spawns.leave", {"how": how, "secs": token})) != first
    wait_for(lambda: _running(token), timeout=5)
    executor.close()
    wait_for(lambda: not _running(token), timeout=3)


def test_a_detached_grandchild_is_left_alone(js: JsScripts, make_executor, token: str) -> None:
    """`detached: true` puts the grandchild in a session of its own, on purpose (a daemon): it
    outlives the Node process, as it would outlive any parent (the fixture ends it)."""
    js.publish(spawns=SPAWNS)
    executor: NodeExecutor = make_executor()
    ok(run(executor, "spawns.leave", {"how": "detached", "secs": token}))
    wait_for(lambda: _running(token), timeout=5)
    executor.close()
    time.sleep(0.3)
    assert _running(token)


@pytest.mark.parametrize("how", ["default", "inherit"])
def test_grandchild_output_never_reaches_the_protocol(
    js: JsScripts, make_executor, how: str
) -> None:
    """A grandchild's stdout and stderr are Node's pipes to it (default) or Node's own log file
    (`inherit`), never a protocol pipe: tasks keep their results and logs while it writes."""
    js.publish(spawns=SPAWNS)
    executor: NodeExecutor = make_executor()
    assert ok(run(executor, "spawns.chatter", {"how": how})) == "started"
    for n in range(200):
        result = run(executor, "spawns.echo", {"n": n})
        assert ok(result) == n
        assert result.logs == f"task {n}\n"
    assert executor.process is not None
    if how == "inherit":
        wait_for(lambda: "garbage 1999" in executor.process.log_tail(200), timeout=10)
    assert ok(run(executor, "spawns.echo", {"n": -1})) == -1


OWNER = """
import hashlib, os, sys, time
from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.node.executor import NodeExecutor
from fnhub.tasks import Task

code = open(sys.argv[1]).read()
active = {"spawns": hashlib.sha256(code.encode()).hexdigest()}
executor = NodeExecutor(Settings(), lambda name, version: code, lambda: active)
kwargs = {"how": "nested", "secs": os.environ["SECS"]}
task = Task(function="spawns.leave", kwargs=kwargs, timeout=10)
info = FunctionInfo(script="spawns", name="leave")
result = executor.run(task, "spawns", "", "leave", info, time.time() + 10)
print(result.result, flush=True)
time.sleep(60)
"""


def test_grandchildren_of_a_sigkilled_worker_child_end_with_the_next_node_start(
    js: JsScripts, make_executor, tmp_path: Path, token: str
) -> None:
    """A worker child killed with SIGKILL takes its Node process along (the parent-death
    signal) but cannot kill the group; the next Node process started on the machine does, from
    the folder the dead one left."""
    (tmp_path / "spawns.js").write_text(SPAWNS)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "spawns.js")],
        env={**os.environ, "SECS": token},  # not in its command line, which `_running` reads
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        node = int(owner.stdout.readline())
        wait_for(lambda: len(_running(token)) == 3, timeout=5)  # the shell and its two sleeps
    finally:
        owner.kill()
        owner.wait()
    wait_for(lambda: not Path(f"/proc/{node}").exists(), timeout=5)
    time.sleep(0.2)
    assert len(_running(token)) == 3  # orphans, until:
    js.publish(spawns=SPAWNS)
    assert ok(run(make_executor(), "spawns.echo", {"n": 3})) == 3
    wait_for(lambda: not _running(token), timeout=3)
