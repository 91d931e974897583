"""NodeExecutor against the machine's real `node`: conventions, failures with JS stacks,
deadlines, the heap limit, deaths, output capture, script layouts and npm packages."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from tests.conftest import wait_for

from fnhub.node.executor import NodeDied

from .conftest import JsScripts, ok, run

GREET = """
const fnhub = require('fnhub');
exports.greet = fnhub.api({ title: 'Greet' }, async ({ name = 'world', punctuation = '!' }) => {
  return `hello ${name}${punctuation}`;
});
exports.sync = ({ a, b }) => a + b;
exports.whole = (args) => args;
exports.pid = () => process.pid;
"""


def test_kwargs_convention_gets_one_kwargs_object(js: JsScripts, make_executor) -> None:
    js.publish(greet=GREET)
    executor = make_executor()
    assert ok(run(executor, "greet.greet", {"name": "Ada"})) == "hello Ada!"
    assert ok(run(executor, "greet.greet")) == "hello world!"
    assert ok(run(executor, "greet.sync", {"a": 2, "b": 3})) == 5
    assert ok(run(executor, "greet.whole", {"x": [1, {"y": None}]})) == {"x": [1, {"y": None}]}


BAETYL = """
exports.handler = (event, context, callback) => {
  callback(null, { ...event, Say: 'Hello', topic: context.messageTopic });
};
exports.later = (event, context, callback) => {
  setTimeout(() => callback(null, event.n * 2), 5);
};
exports.empty = (event, context, callback) => callback(null, '');
exports.zero = (event, context, callback) => callback(null, 0);
exports.nothing = (event, context, callback) => callback();
exports.buffer = (event, context, callback) => callback(null, Buffer.from([0, 1, 2, 255]));
exports.failing = (event, context, callback) => callback(new Error('no can do'));
exports.failingText = (event, context, callback) => callback('plain text error');
exports.modern = async (event, context) => ({ ...event, invoke: context.functionInvokeID });
exports.modernEmpty = async (event, context) => [];
exports.modernBytes = (event, context) => event;
exports.isBuffer = (event, context) => Buffer.isBuffer(event) && event.toString();
"""

CONTEXT = {"messageQOS": 1, "messageTopic": "t/in", "functionInvokeID": "inv-1"}


def test_baetyl_callback_convention_and_its_output_rules(js: JsScripts, make_executor) -> None:
    js.publish(rules=BAETYL)
    executor = make_executor()
    kwargs = {"event": {"id": 7}, "context": CONTEXT}
    assert ok(run(executor, "rules.handler", kwargs)) == {"id": 7, "Say": "Hello", "topic": "t/in"}
    assert ok(run(executor, "rules.later", {"event": {"n": 21}, "context": CONTEXT})) == 42
    # Baetyl's loose `== ""`: "", 0, undefined publish nothing
    assert ok(run(executor, "rules.empty", kwargs)) is None
    assert ok(run(executor, "rules.zero", kwargs)) is None
    assert ok(run(executor, "rules.nothing", kwargs)) is None
    raw = ok(run(executor, "rules.buffer", kwargs))
    assert base64.b64decode(raw["$fnhub_bytes"]) == bytes([0, 1, 2, 255])
    failed = run(executor, "rules.failing", kwargs)
    assert (failed.status, failed.error_type, failed.error_message) == (
        "failure",
        "Error",
        "no can do",
    )
    assert failed.traceback == "Error: no can do\n    at exports.failing (rules.js:12:58)"
    failed = run(executor, "rules.failingText", kwargs)
    assert (failed.status, failed.error_message) == ("failure", "plain text error")


def test_baetyl_event_context_convention(js: JsScripts, make_executor) -> None:
    js.publish(rules=BAETYL)
    executor = make_executor()
    kwargs = {"event": {"id": 7}, "context": CONTEXT}
    assert ok(run(executor, "rules.modern", kwargs)) == {"id": 7, "invoke": "inv-1"}
    assert ok(run(executor, "rules.modernEmpty", kwargs)) is None  # [] == ""
    # a payload that is not JSON arrives as bytes, and is a Buffer in JavaScript
    bytes_kwargs = {"event": b"\x00raw\xff", "context": CONTEXT}
    assert ok(run(executor, "rules.modernBytes", bytes_kwargs)) == {
        "$fnhub_bytes": base64.b64encode(b"\x00raw\xff").decode()
    }
    assert ok(run(executor, "rules.isBuffer", {"event": b"abc", "context": CONTEXT})) == "abc"


ERRORS = """
function inner(n) {
  throw new RangeError(`too far: ${n}`);
}
exports.throws = ({ n }) => inner(n);
exports.rejects = async () => {
  await new Promise((resolve) => setTimeout(resolve, 1));
  throw new TypeError('rejected here');
};
exports.stray = async () => {
  Promise.reject(new Error('nobody waits for me'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  return 'not reached';
};
exports.pid = () => process.pid;
exports.exits = () => process.exit(3);
exports.timer = async () => {
  setTimeout(() => { throw new Error('thrown in a timer'); }, 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  return 'not reached';
};
"""


def test_thrown_error_fails_with_the_js_stack(js: JsScripts, make_executor) -> None:
    js.publish(errors=ERRORS)
    result = run(make_executor(), "errors.throws", {"n": 5})
    assert result.status == "failure"
    assert (result.error_type, result.error_message) == ("RangeError", "too far: 5")
    assert result.traceback.startswith("RangeError: too far: 5\n")
    assert "at inner (errors.js:3:9)" in result.traceback
    assert "errors.js:5" in result.traceback
    assert "host.js" not in result.traceback and "node:internal" not in result.traceback


def test_rejected_promise_fails_with_the_js_stack(js: JsScripts, make_executor) -> None:
    js.publish(errors=ERRORS)
    executor = make_executor()
    result = run(executor, "errors.rejects")
    assert (result.status, result.error_type, result.error_message) == (
        "failure",
        "TypeError",
        "rejected here",
    )
    assert "errors.js:8" in result.traceback
    assert ok(run(executor, "errors.pid"))  # the process still serves


def test_unhandled_rejection_fails_the_task_and_replaces_the_process(
    js: JsScripts, make_executor
) -> None:
    js.publish(errors=ERRORS)
    executor = make_executor()
    before = ok(run(executor, "errors.pid"))
    result = run(executor, "errors.stray")
    assert (result.status, result.error_message) == ("failure", "nobody waits for me")
    assert "errors.js:11" in result.traceback
    assert ok(run(executor, "errors.pid")) != before


def test_uncaught_exception_in_a_timer_fails_the_task_and_replaces_the_process(
    js: JsScripts, make_executor
) -> None:
    js.publish(errors=ERRORS)
    executor = make_executor()
    before = ok(run(executor, "errors.pid"))
    result = run(executor, "errors.timer")
    assert (result.status, result.error_type, result.error_message) == (
        "failure",
        "Error",
        "thrown in a timer",
    )
    assert "errors.js:18" in result.traceback
    assert ok(run(executor, "errors.pid")) != before


def test_process_exit_fails_the_task_and_the_next_runs(js: JsScripts, make_executor) -> None:
    js.publish(errors=ERRORS)
    executor = make_executor()
    before = ok(run(executor, "errors.pid"))
    result = run(executor, "errors.exits")
    assert (result.status, result.error_type) == ("failure", "ProcessExit")
    assert "process.exit(3)" in result.error_message
    assert ok(run(executor, "errors.pid")) != before


LOOPS = """
exports.spin = () => { while (true) {} };
exports.pid = () => process.pid;
exports.hoard = () => {
  const kept = [];
  while (true) kept.push(new Array(100000).fill(1.5));
};
exports.sleep = ({ ms }) => new Promise((resolve) => setTimeout(() => resolve('woke'), ms));
"""


def test_busy_loop_times_out_and_the_next_task_runs_on_a_new_process(
    js: JsScripts, make_executor
) -> None:
    js.publish(loops=LOOPS)
    executor = make_executor()
    before = ok(run(executor, "loops.pid"))
    started = time.monotonic()
    result = run(executor, "loops.spin", timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert (result.status, result.error_type) == ("timeout", "TimeoutError")
    assert result.error_message == (
        "loops.spin ran longer than its 0.5s timeout and its process was killed"
    )
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)  # the spinning process is gone
    # its replacement was started at once, so the next task does not wait for Node's start-up
    assert executor.process is not None and executor.process.proc.poll() is None
    after = ok(run(executor, "loops.pid"))
    assert after != before


def test_heap_limit_fails_with_memory_limit_exceeded_and_the_next_task_runs(
    js: JsScripts, make_executor
) -> None:
    js.publish(loops=LOOPS)
    executor = make_executor(node_max_old_space_mb=48)
    before = ok(run(executor, "loops.pid"))
    result = run(executor, "loops.hoard", timeout=30)
    assert (result.status, result.error_type) == ("failure", "MemoryLimitExceeded")
    assert "48 MB" in result.error_message and "loops.hoard" in result.error_message
    assert ok(run(executor, "loops.pid")) != before


def test_sigkill_from_outside_raises_node_died(js: JsScripts, make_executor) -> None:
    js.publish(loops=LOOPS)
    executor = make_executor()
    pid = ok(run(executor, "loops.pid"))
    threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(NodeDied):
        run(executor, "loops.sleep", {"ms": 5000})
    assert ok(run(executor, "loops.sleep", {"ms": 1})) == "woke"  # a replacement serves


def test_a_process_killed_between_tasks_is_replaced_before_the_next(
    js: JsScripts, make_executor
) -> None:
    js.publish(loops=LOOPS)
    executor = make_executor()
    pid = ok(run(executor, "loops.pid"))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: executor.process is not None and executor.process.ended(), timeout=5)
    # not this task's doing: it runs (no NodeDied, no failure) in a replacement
    assert ok(run(executor, "loops.pid")) != pid


OUTPUT = """
exports.talk = ({ n = 1 }) => {
  console.log('log', n, { a: 1 });
  console.info('info');
  console.warn('warn');
  console.error('error');
  console.debug('debug');
  process.stdout.write('raw out\\n');
  process.stderr.write(Buffer.from('raw err\\n'));
  return n;
};
exports.flood = () => { console.log('x'.repeat(500)); return 'done'; };
exports.later = () => { setTimeout(() => console.log('after the task'), 0); return 1; };
exports.quiet = () => 2;
"""


def test_console_and_std_streams_are_captured(js: JsScripts, make_executor) -> None:
    js.publish(output=OUTPUT)
    executor = make_executor()
    result = run(executor, "output.talk", {"n": 2})
    assert result.logs == ("log 2 { a: 1 }\ninfo\nwarn\nerror\ndebug\nraw out\nraw err\n")
    # what a timer prints after its task ended belongs to no task
    assert ok(run(executor, "output.later")) == 1
    assert run(executor, "output.quiet").logs == ""


def test_captured_output_is_bounded(js: JsScripts, make_executor) -> None:
    js.publish(output=OUTPUT)
    result = run(make_executor(log_max_bytes=100), "output.flood")
    assert result.result == "done"
    assert result.logs == "x" * 100 + "\n[... 401 more characters of output not kept]"


RESULTS = """
exports.big = ({ n }) => 'y'.repeat(n);
exports.cyclic = () => { const a = {}; a.a = a; return a; };
exports.bigint = () => 10n;
exports.nested = () => ({ data: Buffer.from('hi'), when: new Date(0) });
exports.nothing = () => undefined;
"""


def test_results_are_bounded_and_checked_like_pythons(js: JsScripts, make_executor) -> None:
    js.publish(results=RESULTS)
    executor = make_executor(result_max_bytes=1000)
    assert ok(run(executor, "results.big", {"n": 998})) == "y" * 998
    too_large = run(executor, "results.big", {"n": 999})
    assert (too_large.status, too_large.error_type) == ("failure", "ResultTooLarge")
    assert too_large.error_message == (
        "the result is 1001 bytes as JSON, over the limit of 1000 bytes"
    )
    for ref in ("results.cyclic", "results.bigint"):
        bad = run(executor, ref)
        assert (bad.status, bad.error_type) == ("failure", "ResultNotSerializable"), ref
    assert ok(run(executor, "results.nested")) == {
        "data": {"$fnhub_bytes": "aGk="},
        "when": "1970-01-01T00:00:00.000Z",
    }
    assert ok(run(executor, "results.nothing")) is None


def test_unknown_function_and_unpublished_version(js: JsScripts, make_executor) -> None:
    js.publish(greet=GREET)
    executor = make_executor()
    missing = run(executor, "greet.nope")
    assert (missing.status, missing.error_type) == ("failure", "UnknownFunction")
    gone = run(executor, "greet.greet", version="f" * 64)
    assert (gone.status, gone.error_type) == ("failure", "UnknownFunction")
    assert gone.error_message == (
        "unknown function 'greet.greet' (script version greet@ffffffff is not published)"
    )
    unknown = run(executor, "other.greet")
    assert (unknown.status, unknown.error_type, unknown.error_message) == (
        "failure",
        "UnknownFunction",
        "unknown function 'other.greet' (no published JavaScript script 'other')",
    )


def test_arguments_json_cannot_carry_fail_the_task_and_the_next_runs(
    js: JsScripts, make_executor
) -> None:
    """msgpack allows bytes as a map key, JSON does not: the task fails saying so (it used to
    raise out of the executor), and the same process runs the next one."""
    js.publish(greet=GREET)
    executor = make_executor()
    pid = ok(run(executor, "greet.pid"))
    bad = run(executor, "greet.whole", {"x": {b"raw": 1}})
    assert (bad.status, bad.error_type) == ("failure", "ArgumentsNotSerializable")
    assert bad.error_message.startswith(
        "the arguments of greet.whole cannot be passed to JavaScript as JSON ("
    )
    assert ok(run(executor, "greet.whole", {"x": 1})) == {"x": 1}
    assert ok(run(executor, "greet.pid")) == pid


def test_throw_at_load_fails_the_task_as_a_load_error(js: JsScripts, make_executor) -> None:
    hashes = js.publish(
        broken="const x = 1;\nthrow new Error('cannot start');\nexports.f = () => 1;\n"
    )
    result = run(make_executor(), "broken.f")
    assert (result.status, result.error_type) == ("failure", "ScriptLoadError")
    # the version it loaded, from its layout (the task named none)
    assert f"loading script broken@{hashes['broken'][:8]} failed" in result.error_message
    assert "Error: cannot start" in result.error_message
    assert "broken.js:2" in result.traceback


CONTEXT_JS = """
const { context } = require('fnhub');
exports.who = () => ({
  taskId: context.taskId, function: context.function, script: context.script,
  origin: context.origin, originId: context.originId, attempt: context.attempt,
  queue: context.queue, meta: context.meta, triggerTime: context.triggerTime,
});
"""


def test_context_describes_the_running_task(js: JsScripts, make_executor) -> None:
    js.publish(ctx=CONTEXT_JS)
    result = run(
        make_executor(),
        "ctx.who",
        origin="cron",
        origin_id="nightly",
        attempt=2,
        queue="default",
        meta={"tick": 1},
        trigger_time=1234.5,
    )
    assert ok(result) == {
        "taskId": result.id,
        "function": "ctx.who",
        "script": "ctx",
        "origin": "cron",
        "originId": "nightly",
        "attempt": 2,
        "queue": "default",
        "meta": {"tick": 1},
        "triggerTime": 1234.5,
    }


def test_scripts_require_each_other(js: JsScripts, make_executor) -> None:
    js.publish(
        helpers="exports.double = (n) => n * 2;\n",
        main="const { double } = require('./helpers');\nexports.f = ({ n }) => double(n);\n",
    )
    executor = make_executor()
    assert ok(run(executor, "main.f", {"n": 4})) == 8
    # a new version of the helper reaches its importer once the active map is re-read
    js.publish(helpers="exports.double = (n) => n * 3;\n")
    executor.refreshed_at = -1e9  # as if 2 s passed
    assert ok(run(executor, "main.f", {"n": 4})) == 12


def test_es_module_imports_a_commonjs_sibling_and_an_es_sibling(
    js: JsScripts, make_executor
) -> None:
    js.publish(
        legacy="exports.base = 40;\n",
        modern="export const two = 2;\n",
        esm=(
            "import fnhub from 'fnhub';\n"
            "import { cache } from 'fnhub';\n"
            "import { base } from './legacy.js';\n"
            "import { two } from './modern.js';\n"
            "export const f = async ({}) => base + two + (typeof cache.get === 'function');\n"
            "export const g = fnhub.api({ title: 'g' }, async (event, context) => event);\n"
        ),
    )
    executor = make_executor()
    assert ok(run(executor, "esm.f")) == 43
    assert ok(run(executor, "esm.g", {"event": {"a": 1}, "context": {}})) == {"a": 1}


def test_an_older_version_runs_with_the_active_siblings(js: JsScripts, make_executor) -> None:
    old = js.publish(main="const h = require('./h');\nexports.f = () => 'old ' + h.v;\n")
    js.publish(h="exports.v = 1;\n")
    js.publish(main="const h = require('./h');\nexports.f = () => 'new ' + h.v;\n")
    executor = make_executor()
    assert ok(run(executor, "main.f")) == "new 1"
    assert ok(run(executor, "main.f", version=old["main"])) == "old 1"
    assert ok(run(executor, "main.f")) == "new 1"


@pytest.fixture
def modules_dir(tmp_path: Path) -> Path:
    """A project folder with a tiny npm package installed from a local tarball (offline)."""
    package = tmp_path / "tinypkg"
    package.mkdir()
    (package / "package.json").write_text('{"name": "tinypkg", "version": "1.0.0"}')
    (package / "index.js").write_text("exports.shout = (s) => s.toUpperCase() + '!';\n")
    subprocess.run(["npm", "pack", "--silent"], cwd=package, check=True, capture_output=True)
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "project", "version": "1.0.0"}')
    subprocess.run(
        [
            "npm",
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            str(package / "tinypkg-1.0.0.tgz"),
        ],
        cwd=project,
        check=True,
        capture_output=True,
    )
    assert (project / "node_modules" / "tinypkg" / "index.js").is_file()
    return project


def test_npm_package_from_the_modules_folder(
    js: JsScripts, make_executor, modules_dir: Path
) -> None:
    js.publish(
        cjs="const { shout } = require('tinypkg');\nexports.f = ({ s }) => shout(s);\n",
        esm="import { shout } from 'tinypkg';\nexport const f = ({ s }) => shout(s);\n",
    )
    executor = make_executor(modules_dir=modules_dir)
    assert ok(run(executor, "cjs.f", {"s": "hey"})) == "HEY!"
    assert ok(run(executor, "esm.f", {"s": "ho"})) == "HO!"
    # the node_modules folder itself works as well as the folder holding it
    other = make_executor(modules_dir=modules_dir / "node_modules")
    assert ok(run(other, "cjs.f", {"s": "x"})) == "X!"


def test_frames_larger_than_a_pipe_buffer_cross_both_ways(js: JsScripts, make_executor) -> None:
    js.publish(
        sizes="exports.echo = ({ text }) => text.length + ':' + text.slice(-3);\n"
        "exports.big = ({ n }) => 'z'.repeat(n);\n"
    )
    executor = make_executor()
    text = "a" * 3_000_000 + "end"
    assert ok(run(executor, "sizes.echo", {"text": text})) == "3000003:end"
    assert ok(run(executor, "sizes.big", {"n": 900_000})) == "z" * 900_000
    assert ok(run(executor, "sizes.echo", {"text": "small"})) == "5:all"


def test_a_new_packages_folder_replaces_the_process(
    js: JsScripts, settings, modules_dir: Path
) -> None:
    from fnhub.node.executor import NodeExecutor

    js.publish(
        cjs="const { shout } = require('tinypkg');\nexports.f = ({ s }) => shout(s);\n",
        pids="exports.pid = () => process.pid;\n",
    )
    installed: list[Path | None] = [None]
    executor = NodeExecutor(settings, js.code, js.active_js, modules_dir=lambda: installed[0])
    try:
        before = ok(run(executor, "pids.pid"))
        missing = run(executor, "cjs.f", {"s": "a"})
        assert "Cannot find module 'tinypkg'" in missing.error_message
        installed[0] = modules_dir  # `npm ci` finished into a new folder
        executor.refreshed_at = -1e9  # as if 2 s passed
        assert ok(run(executor, "cjs.f", {"s": "a"})) == "A!"
        assert ok(run(executor, "pids.pid")) != before
    finally:
        executor.close()
