"""Running JavaScript tasks: one long-lived Node process per worker child, driven over pipes.

A process per task would cost Node's start-up (~40 ms) each time; one kept process costs a
frame each way. The child enforces the task's deadline itself (poll on the answer pipe until
the deadline), since Node cannot be interrupted from inside while a function spins: past it the
process is SIGKILLed, the task ends as `timeout`, and a replacement starts at once so the next
task does not wait for Node's start-up. A process that died otherwise (heap limit, crash,
`process.exit()`) fails its task and is replaced the same way; one SIGKILLed from outside raises
`NodeDied`, which the worker treats like a dead worker (the task runs again as attempt + 1).

Frames (see host.js): 4-byte big-endian length + UTF-8 JSON, bytes as `{"$fnhub_bytes": b64}`.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.node.host import (
    Gone,
    HostProcess,
    RunEntry,
    encode_frame,
    from_wire,
    run_entry,
    run_frame,
)
from fnhub.node.locate import find_node
from fnhub.tasks import Status, Task, TaskResult, expired_result, result_for

log = logging.getLogger(__name__)

#: how often the active-scripts map is re-read when no task names an unknown version
REFRESH_SECONDS = 2.0
#: layouts (sets of script versions) one process may hold before it is replaced: every one
#: keeps its modules loaded, and ES modules cannot be unloaded
MAX_LAYOUTS = 64
#: tasks of the batch sent to Node ahead of their turn (more when fewer than half are left), so
#: that Node goes from one to the next without waiting on Python: one write and one wake-up for
#: many tasks instead of one of each per task
AHEAD = 32
#: a function's tasks go ahead (and others go ahead behind it) once this many of its tasks in a
#: row ended within FAST_SECONDS here: a task that turns out slow holds back at most the tasks
#: sent ahead behind it, a function not known to be quick (a first task, one that spins) none
FAST_RUNS = 3
FAST_SECONDS = 0.05
#: how long the running task may keep the tasks sent ahead behind it before they are taken
#: back (the worker hands unstarted tasks back to the queue behind a task slow for 0.5 s)
DROP_AFTER_SECONDS = 0.4
_CACHE_OPS = frozenset(
    {
        "set",
        "get",
        "delete",
        "exists",
        "ttl",
        "expire",
        "incr",
        "keys",
        "hset",
        "hget",
        "hgetall",
        "hdel",
        "hincr",
    }
)
_CACHE_OPTIONS = frozenset({"expires", "not_exists"})


class AheadPlan(NamedTuple):
    """How the tasks of one function (and version) go ahead to the running process: the
    layout they run in, and the frame creating it (b"" when the process has it)."""

    layout: int
    script: str
    name: str
    prelude: bytes


class NodeDied(Exception):
    """The Node process was killed from outside (SIGKILL) while a task ran."""


#: the first item of a task's answer (host.js sends an array: [1, value, logs], [0, error
#: type, message, stack, logs, replace], [2])
ANSWER_FAILED = 0
ANSWER_RETURNED = 1
ANSWER_EXPIRED = 2
#: a task sent to the Node process whose answer has not come yet: its id, attempt and script
#: (a plain tuple: one is made for every task, and a NamedTuple's constructor costs more)
Sent = tuple[str, int, str]


def _failed(
    task: Task,
    start: float,
    error_type: str,
    message: str,
    *,
    traceback: str | None = None,
    status: Status = Status.FAILURE,
) -> TaskResult:
    """The result of a task that did not return, ending now: every way the executor itself
    ends one (unknown function, arguments JSON cannot carry, deadline, the process's end)."""
    return result_for(
        task,
        status,
        start_time=start,
        end_time=time.time(),
        error_type=error_type,
        error_message=message,
        traceback=traceback,
    )


class NodeExecutor:
    """Runs JavaScript tasks of one worker child in a Node process of its own.

    `code(name, hash)` gives a script version's code (None when not published), `active_js()`
    the active JavaScript scripts (name → hash); `modules_dir()` (optional) the folder of the
    project's installed npm packages (its `node_modules`, or the folder holding one), read when
    a process starts and re-checked with the active map: a new install replaces the process."""

    def __init__(
        self,
        settings: Settings,
        code: Callable[[str, str], str | None],
        active_js: Callable[[], dict[str, str]],
        *,
        modules_dir: Callable[[], Path | None] | None = None,
    ) -> None:
        self.settings = settings
        self.code = code
        self.active_js = active_js
        self.modules_dir = modules_dir or (lambda: None)
        self.active: dict[str, str] = {}
        self.refreshed_at = -REFRESH_SECONDS
        self.base: int | None = None  # layout id of the active map in the current process
        self.next_layout = 1
        self.process: HostProcess | None = None
        self.process_modules: Path | None = None
        # tasks sent and not answered, in the order Node runs them: the first runs (since
        # `head_since`), the others wait in Node; `top_up(n)` (set by the worker child) gives the
        # frames of up to n next tasks of the batch (`ahead_plan`, `ahead`), `give_back(n)`
        # returns the last n of them to the batch when Node did not start them
        self.inflight: deque[Sent] = deque()
        self.head_since = 0.0
        self.dropping = False  # a drop was sent, its answer not read yet
        self.top_up: Callable[[int], bytes] | None = None
        # a top-up gave nothing: none will until the next task that runs in `run` (the batch's
        # next task is not one that goes ahead, or there is none), so none is asked for
        self.topped_out = False
        self.quick: dict[str, int] = {}  # function → its tasks in a row that were quick
        self.give_back: Callable[[int], None] | None = None

    # --- processes ---------------------------------------------------------------------------

    def _modules(self) -> Path | None:
        found = self.modules_dir()
        if found is not None and (found / "node_modules").is_dir():
            return found / "node_modules"
        return found

    def _start(self) -> HostProcess:
        self.process_modules = self._modules()
        settings = self.settings
        self.process = HostProcess(
            find_node(settings.node_path),
            "serve",
            heap_mb=settings.node_max_old_space_mb,
            result_max_bytes=settings.result_max_bytes,
            log_max_bytes=settings.log_max_bytes,
            modules_dir=self.process_modules,
        )
        self.base = None
        self.next_layout = 1
        return self.process

    def _replace(self, process: HostProcess) -> None:
        """End `process` and start its replacement now, so the next task finds it booted.
        Tasks sent ahead to it did not start: they are sent again to the new one in turn."""
        self.inflight.clear()
        self.dropping = False
        if not process.killed:
            process.kill()
        process.close()
        if self.process is process:
            self.process = None
            self._start()

    def close(self) -> None:
        if self.process is not None:
            if self.inflight:  # tasks it must not run: nobody will record them
                self.process.kill()
            self.process.close()
            self.process = None
        self.inflight.clear()

    # --- script versions ---------------------------------------------------------------------

    def _refresh(self) -> None:
        active = self.active_js()
        self.refreshed_at = time.monotonic()
        if active != self.active:
            self.active = dict(active)
            self.base = None
        if self.process is not None and self._modules() != self.process_modules:
            self._replace(self.process)

    def _layout(self, process: HostProcess, script: str, hash_: str) -> tuple[int, bytes] | str:
        """The layout id the task runs in and the frame creating it (b"" when it exists), or
        why the task cannot run."""
        versions = self.active
        if script not in versions or (hash_ and versions[script] != hash_):
            versions = dict(versions)
            if not hash_:
                return f"no published JavaScript script '{script}'"
            versions[script] = hash_
        elif self.base is not None:
            return self.base, b""
        key = frozenset(versions.items())
        known = process.layouts.get(key)
        if known is not None:
            return known, b""
        files: dict[str, list[str | None]] = {}
        for name, version in versions.items():
            if (name, version) in process.sent:
                files[name] = [version, None]
                continue
            text = self.code(name, version)
            if text is None:
                if name == script:
                    return f"script version {script}@{version[:8]} is not published"
                continue  # a sibling gone meanwhile: its importers say so when they load
            files[name] = [version, text]
        layout = self.next_layout
        self.next_layout += 1
        for name, entry in files.items():
            process.sent.add((name, str(entry[0])))
        process.layouts[key] = layout
        if versions is self.active:
            self.base = layout
        return layout, encode_frame({"t": "layout", "id": layout, "files": files})

    # --- running -----------------------------------------------------------------------------

    def run(
        self,
        task: Task,
        script: str,
        hash_: str,
        function: str,
        info: FunctionInfo,
        deadline: float,
    ) -> TaskResult:
        """Run one task; SUCCESS, FAILURE or TIMEOUT. Raises NodeDied when the process was
        killed from outside while it ran (a replacement is started first)."""
        start = time.time()
        name = function.rpartition(".")[2]
        if self.inflight and self.process is not None:
            # tasks sent ahead that the worker did not run in turn (it never should): Node must
            # not run them unrecorded, and they go back to the batch
            log.error("JavaScript tasks sent ahead were skipped; replacing the Node process")
            skipped = len(self.inflight)
            self._replace(self.process)
            if self.give_back is not None:
                self.give_back(skipped)
        if (
            time.monotonic() - self.refreshed_at > REFRESH_SECONDS
            or script not in self.active
            or (hash_ and self.active[script] != hash_)
        ):
            self._refresh()
        process = self.process
        if process is not None and process.ended():
            # it ended between tasks (a stray timer's crash, a kill): not this task's doing
            log.warning("the Node process ended between tasks: %s", process.log_tail(500))
            process.close()
            process = None
        if process is None or len(process.layouts) >= MAX_LAYOUTS:
            if process is not None:
                process.close()
            process = self._start()
        found = self._layout(process, script, hash_)
        if isinstance(found, str):
            return _failed(
                task, start, "UnknownFunction", f"unknown function '{task.function}' ({found})"
            )
        layout, prelude = found
        try:
            frame = run_frame([run_entry(task, layout, script, name)])
        except TypeError as exc:  # e.g. a nested map with bytes keys (msgpack allows them)
            if prelude:  # the layout counts as sent from now on: it must be
                self._send_alone(process, prelude, deadline)
            return _failed(
                task,
                start,
                "ArgumentsNotSerializable",
                f"the arguments of {task.function} cannot be passed to JavaScript as JSON ({exc})",
            )
        self.inflight.append((task.id, task.attempt, script))
        self.head_since = start
        self.topped_out = False
        return self._answer(process, task, script, start, deadline, prelude + frame)

    def _send_alone(self, process: HostProcess, data: bytes, deadline: float) -> None:
        """Write `data` with no task: a process that does not take it is replaced."""
        try:
            if process.write(data, deadline):
                return
        except Gone:
            pass
        self._replace(process)

    def is_ahead(self, task: Task) -> bool:
        """Whether `task` was sent ahead and is the one Node runs now (or next)."""
        if not self.inflight:
            return False
        head = self.inflight[0]
        return head[0] == task.id and head[1] == task.attempt

    def run_ahead(self, task: Task) -> TaskResult:
        """Run a task sent ahead (`is_ahead`): its answer, within its deadline from when Node
        started it (when the one before it ended; or when it was sent)."""
        process = self.process
        assert process is not None
        start = self.head_since
        return self._answer(process, task, self.inflight[0][2], start, start + task.timeout)

    def is_quick(self, function: str) -> bool:
        """Whether the tasks of `function` (a reference) were quick here of late."""
        return self.quick.get(function, 0) >= FAST_RUNS

    def ahead_plan(self, function: str, script: str, hash_: str, name: str) -> AheadPlan | None:
        """How tasks of `function` (a reference; its script version and function name) go
        ahead to the running process, or None when they cannot: the function is not known to
        be quick, its script needs the active map re-read, or a new process. Asked once per
        function for the tasks of one top-up, which then go with `ahead`."""
        process = self.process
        if process is None or self.dropping or not self.inflight:
            return None
        if not self.is_quick(function):
            return None
        if script not in self.active or (hash_ and self.active[script] != hash_):
            return None
        if len(process.layouts) >= MAX_LAYOUTS:
            return None
        found = self._layout(process, script, hash_)
        if isinstance(found, str):
            return None
        return AheadPlan(found[0], script, name, found[1])

    def ahead(self, task: Task, plan: AheadPlan) -> RunEntry:
        """`task` sent ahead as `plan` says: counted as sent, its entry for the run frame."""
        self.inflight.append((task.id, task.attempt, plan.script))
        return run_entry(task, plan.layout, plan.script, plan.name)

    def unsend(self, n: int) -> None:
        """The last `n` tasks counted as sent ahead were not sent after all (their frame did
        not encode): they go back to the batch (the caller gives them back)."""
        for _ in range(min(n, len(self.inflight) - 1)):
            self.inflight.pop()

    def _answer(
        self,
        process: HostProcess,
        task: Task,
        script: str,
        start: float,
        deadline: float,
        data: bytes = b"",
    ) -> TaskResult:
        """Send `data` (with the next tasks of the batch, when it has some), then read until
        the running task's answer, past its deadline killing the process."""
        try:
            if (
                self.top_up is not None
                and not self.topped_out
                and not self.dropping
                and len(self.inflight) <= AHEAD // 2
                and self.is_quick(task.function)
            ):
                more = self.top_up(AHEAD + 1 - len(self.inflight))
                if more:
                    data += more
                else:
                    self.topped_out = True
            if data and not process.write(data, deadline):
                return self._timeout(process, task, start)
            while True:
                until = deadline
                if len(self.inflight) > 1 and not self.dropping:
                    until = min(deadline, start + DROP_AFTER_SECONDS)
                frame = process.read(until)
                if frame is None:
                    if until < deadline:  # slow: take back what waits behind it
                        self.dropping = True
                        if not process.write(encode_frame({"t": "drop"}), deadline):
                            return self._timeout(process, task, start)
                        continue
                    return self._timeout(process, task, start)
                if type(frame) is list:  # the task's answer (host.js: an array)
                    break
                kind = frame["t"]
                if kind == "sdk":
                    if not process.write(self._sdk(frame, script), deadline):
                        return self._timeout(process, task, start)
                elif kind == "dropped":
                    self._dropped(frame["n"])
                elif kind == "exit":
                    process.exit_code = frame.get("code")
        except Gone:
            return self._ended(process, task, start)
        self.inflight.popleft()
        end = self.head_since = time.time()
        quick = self.quick
        if end - start < FAST_SECONDS:
            quick[task.function] = quick.get(task.function, 0) + 1
        else:
            quick.pop(task.function, None)
        outcome = frame[0]
        if outcome == ANSWER_RETURNED:
            return result_for(
                task, Status.SUCCESS, start_time=start, end_time=end, result=frame[1], logs=frame[2]
            )
        if outcome == ANSWER_EXPIRED:
            return expired_result(task, start)
        _, error_type, message, stack, logs, replace = frame
        if replace:  # an uncaught error or rejection: its state is suspect
            self._replace(process)
        return result_for(
            task,
            Status.FAILURE,
            start_time=start,
            end_time=end,
            error_type=error_type,
            error_message=message,
            traceback=stack,
            logs=logs,
        )

    def _dropped(self, n: int) -> None:
        """Node did not start the last `n` tasks sent ahead: they go back to the batch."""
        self.dropping = False
        n = min(n, len(self.inflight) - 1)
        for _ in range(n):
            self.inflight.pop()
        if n and self.give_back is not None:
            self.give_back(n)

    def _timeout(self, process: HostProcess, task: Task, start: float) -> TaskResult:
        self.quick.pop(task.function, None)
        self._replace(process)
        return _failed(
            task,
            start,
            "TimeoutError",
            f"{task.function} ran longer than its {task.timeout:g}s timeout and its process "
            "was killed",
            status=Status.TIMEOUT,
        )

    def _ended(self, process: HostProcess, task: Task, start: float) -> TaskResult:
        """The process ended while `task` ran: say how, and start its replacement."""
        self.quick.pop(task.function, None)
        if not process.wait_ended(5):
            process.kill()
            process.wait_ended(5)
        code = process.exit_status()  # unreaped: its group is still there to kill
        killed_by_us = process.killed
        tail = process.log_tail()
        exit_code = process.exit_code
        self._replace(process)
        if code == -signal.SIGKILL and not killed_by_us:
            raise NodeDied(f"the Node process running {task.function} was killed (SIGKILL)")
        if "heap out of memory" in tail or "Reached heap limit" in tail:
            error_type = "MemoryLimitExceeded"
            message = (
                f"{task.function} used more than the JavaScript heap limit of "
                f"{self.settings.node_max_old_space_mb} MB (node_max_old_space_mb); its Node "
                "process was replaced"
            )
        elif exit_code is not None:
            error_type = "ProcessExit"
            message = (
                f"{task.function} ended its Node process (process.exit({exit_code})); "
                "the process was replaced"
            )
        else:
            error_type = "NodeCrashed"
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            message = f"the Node process died ({how}) while running {task.function}; replaced"
        return _failed(task, start, error_type, message, traceback=tail.strip()[-2000:] or None)

    # --- the SDK, answered here --------------------------------------------------------------

    def _sdk(self, frame: dict[str, Any], script: str) -> bytes:
        try:
            value = self._sdk_call(frame["op"], frame.get("a") or [], frame.get("o") or {}, script)
            reply: dict[str, Any] = {"t": "r", "c": frame["c"], "ok": True, "v": value}
        except Exception as exc:
            reply = {"t": "r", "c": frame["c"], "ok": False, "y": type(exc).__name__}
            reply["m"] = str(exc)
        return encode_frame(reply)

    def _sdk_call(self, op: str, args: list[Any], options: dict[str, Any], script: str) -> Any:
        kind, _, name = op.partition(".")
        if kind == "cache" and name in _CACHE_OPS:
            from fnhub.cache import cache

            scope = options.get("scope") or script
            extra = {k: v for k, v in options.items() if k in _CACHE_OPTIONS and v is not None}
            return getattr(cache, name)(*args, scope=scope, **extra)
        if op == "connector.publish" and len(args) == 3:
            from fnhub.connections import connector

            target, topic, message = args
            connector(target).publish(topic, from_wire(message), **options)
            return None
        raise ValueError(f"unknown fnhub SDK call {op!r}")
