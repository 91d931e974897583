"""Running one task in a worker child: expiry, lookup, output capture, the call, the result checks.

Everything the function does wrong ends as a `failure` result with a clear error type; nothing it
does (short of killing the process) escapes this module, BaseExceptions included. A copy of the
child that the function forked ends here (`os._exit`) instead of returning into the worker loop.
Timeouts and memory are not handled here: the supervisor kills a child past its deadline or its
memory limit, which holds even for code stuck in C.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from fnhub.config import Settings
from fnhub.dff import variables as dff_variables
from fnhub.envs.masking import guard_process, mask_result
from fnhub.node.host import RunEntry, run_frame
from fnhub.node.locate import NodeNotFound
from fnhub.node.packages import PackagesError
from fnhub.response import Response
from fnhub.runtime import current_task
from fnhub.tasks import Status, Task, TaskResult, expired_result, result_for, result_from
from fnhub.worker.loader import JsFunction, ScriptLoadError, UnknownFunction, WorkerScripts

if TYPE_CHECKING:
    from fnhub.node.executor import AheadPlan, NodeExecutor

#: `take(n, accept)`: move up to n of the batch's next tasks that `accept` takes, in order
TakeAhead = Callable[[int, Callable[[Task], bool]], int]

_SIMPLE = (str, int, float, bool, type(None))
#: how long past a JavaScript task's deadline the supervisor waits before killing the child
NODE_DEADLINE_SLACK_SECONDS = 3.0
BYTES_MARKER = "$fnhub_bytes"
#: success results kept to copy (`Executor._base`): one per function version and origin
RESULT_BASES = 256


def _exit_code(exc: BaseException) -> int:
    """The exit status a process ending with `exc` would have (as the interpreter picks it)."""
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 1


class ResultError(Exception):
    """The function returned, but its result cannot be delivered (not JSON, too large)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class NodeUnavailable(Exception):
    """This worker cannot run JavaScript: no usable Node, or the npm packages do not install."""


def _node_executor(settings: Settings, scripts: WorkerScripts) -> NodeExecutor:
    """This child's Node executor. The project's npm packages are installed on this machine
    when it starts, and looked up again as the scripts are (every few seconds): the first
    worker child to need a new lock runs `npm ci`, the others wait on its file lock."""
    from fnhub.node.executor import NodeExecutor
    from fnhub.node.locate import find_node
    from fnhub.node.packages import installed_modules

    find_node(settings.node_path)  # NodeNotFound now, not at the first task's start
    return NodeExecutor(
        settings,
        scripts.code,
        scripts.active_javascript,
        modules_dir=lambda: installed_modules(settings, scripts.redis, scripts.keys),
    )


class BoundedText(io.TextIOBase):
    """A text sink that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def reset(self) -> None:
        """Empty again, for the next task (a new TextIOBase costs more than a trivial task)."""
        self.parts.clear()
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
            self.dropped += len(text) - len(kept)
        else:
            self.dropped += len(text)
        return len(text)

    def getvalue(self) -> str:
        if not self.parts and not self.dropped:
            return ""
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output not kept]"
        return text


class _CaptureHandler(logging.Handler):
    """Sends log records of the running task to its output buffer."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sink: BoundedText | None = None
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.sink is not None:
            try:
                self.sink.write(self.format(record) + "\n")
            except Exception:
                self.handleError(record)


#: how many times this process was forked into (os.fork() in it or an ancestor since import)
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


class Executor:
    """Runs tasks in this process; one per worker child."""

    def __init__(
        self,
        scripts: WorkerScripts,
        log_max_bytes: int,
        result_max_bytes: int,
        settings: Settings | None = None,
    ) -> None:
        self.pid = os.getpid()  # the worker child's: a forked copy of it has another
        self.forks = _forks  # os.fork() calls before this executor: a copy counts one more
        self.scripts = scripts
        self.settings = settings  # for the Node process JavaScript tasks run in
        self.node: NodeExecutor | None = None
        self._take_ahead: TakeAhead | None = None
        self._give_back: Callable[[int], None] | None = None
        self._unstarted: Callable[[], int] = lambda: 0
        self.log_max_bytes = log_max_bytes
        self.result_max_bytes = result_max_bytes
        self.loop = asyncio.new_event_loop()
        self.output = BoundedText(log_max_bytes)
        self._bases: dict[tuple[Any, ...], TaskResult] = {}  # `_base`
        self.capture = _CaptureHandler()
        guard_process()  # passwords a task reads stay out of this process's own output
        root = logging.getLogger()
        root.addHandler(self.capture)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    def run(self, task: Task) -> TaskResult:
        """Run `task`; the passwords this process read (`fnhub.env`) masked in what it left."""
        return mask_result(self._run(task))

    def _run(self, task: Task) -> TaskResult:
        if self.node is not None and self.node.is_ahead(task):
            # sent to Node ahead of its turn, which it may have started: Node checks its expiry
            return self.node.run_ahead(task)
        start = time.time()
        if task.expires_at is not None and start > task.expires_at:
            return expired_result(task, start)
        try:
            js = self.scripts.javascript(task.function, task.version)
            if js is not None:
                return self._run_javascript(task, js, start)
            fn, _info = self.scripts.function(task.function, task.version)
        except (UnknownFunction, ScriptLoadError) as exc:
            self._exit_if_forked(1)  # a script's top-level code forked
            return self._failure(task, start, exc, "", with_traceback=False)
        self._exit_if_forked(0)
        return self._call(task, fn, start)

    def python_function(self, task: Task) -> Callable[..., Any] | None:
        """The Python function `task` names, resolved ahead of a batch of its tasks (loaded if
        need be); None when it is JavaScript, unknown or fails to load: `run` handles those."""
        try:
            if self.scripts.javascript(task.function, task.version) is not None:
                return None
            fn, _info = self.scripts.function(task.function, task.version)
        except (UnknownFunction, ScriptLoadError):
            fn = None
        self._exit_if_forked(0 if fn is not None else 1)  # a script's top-level code forked
        return fn

    def run_python(
        self,
        task: Task,
        fn: Callable[..., Any],
        base: TaskResult | None = None,
        start: float | None = None,
    ) -> TaskResult:
        """`run` for a task whose Python function `python_function` resolved: a batch of tasks
        of one function looks it up once (`worker.direct`). `base`: the result of the template
        the batch's tasks were copied from, which a success result is copied from
        (`tasks.result_from`); `start`: the time now, if the caller just read it."""
        if start is None:
            start = time.time()
        if task.expires_at is not None and start > task.expires_at:
            return expired_result(task, start)
        return mask_result(self._call(task, fn, start, base))

    def _call(
        self, task: Task, fn: Callable[..., Any], start: float, base: TaskResult | None = None
    ) -> TaskResult:
        """Call the function with the task's output captured; its result or failure."""
        output = self.output
        if output.parts or output.dropped:  # the last task wrote: empty it (most never do)
            output.reset()
        token = current_task.set(task)
        if dff_variables.modules:  # a script uses DataFlux Func's `_DFF_*` variables
            dff_variables.set_for(task)
        self.capture.sink = output
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = output
        try:
            value = fn(**task.kwargs)
            if value is not None and asyncio.iscoroutine(value):
                value = self.loop.run_until_complete(value)
        except BaseException as exc:
            # user code may raise anything (KeyboardInterrupt, SystemExit, GeneratorExit...):
            # it fails the task, never the child (which ignores SIGINT: no Ctrl-C lands here)
            self._exit_if_forked(_exit_code(exc))
            sys.stdout, sys.stderr = saved
            self.capture.sink = None
            current_task.reset(token)
            return self._failure(task, start, exc, output.getvalue())
        finally:
            sys.stdout, sys.stderr = saved
            self.capture.sink = None
        if _forks != self.forks:  # `_exit_if_forked(0)`, its call spared on every task
            os._exit(0)
        current_task.reset(token)
        logs = output.getvalue() if output.parts or output.dropped else ""
        if value is not None:
            try:
                value = self._jsonable(value)
            except ResultError as exc:
                return self._failure(task, start, exc, logs, with_traceback=False)
        if base is None:
            base = self._base(task)
        return result_from(
            base, task, Status.SUCCESS, start_time=start, end_time=time.time(), result=value,
            logs=logs,
        )  # fmt: skip

    def _base(self, task: Task) -> TaskResult:
        """The success result that every task of `task`'s function, version, origin, queue and
        record settings shares, for `tasks.result_from` to copy: made once for them, since
        building a result of twenty fields by keyword (`result_for`) costs twice the copy."""
        key = (
            task.function, task.version, task.origin, task.origin_id, task.queue, task.record,
            task.record_limit,
        )  # fmt: skip
        base = self._bases.get(key)
        if base is None:
            if len(self._bases) >= RESULT_BASES:  # many origins (cron jobs, endpoints): anew
                self._bases.clear()
            base = self._bases[key] = result_for(task, Status.SUCCESS)
        return base

    def deadline_slack(self, task: Task) -> float:
        """Seconds the supervisor waits past a task's deadline before it kills this child: a
        JavaScript task's deadline is kept here (its Node process is killed and replaced,
        the child lives on), so the supervisor only steps in if that fails."""
        try:
            js = self.scripts.javascript(task.function, task.version)
        except UnknownFunction:
            return 0.0
        return NODE_DEADLINE_SLACK_SECONDS if js is not None else 0.0

    def _run_javascript(self, task: Task, js: JsFunction, start: float) -> TaskResult:
        """Run in this child's Node process (started on first use). NodeDied (the process
        was killed from outside) goes up: the task is retried like one of a dead worker."""
        if self.settings is None:
            raise ScriptLoadError("this worker cannot run JavaScript (no settings given)")
        try:
            if self.node is None:
                self.node = _node_executor(self.settings, self.scripts)
                if self._take_ahead is not None:
                    self.node.top_up = self._top_up
                    self.node.give_back = self._give_back
            return self.node.run(task, js.script, js.hash, js.name, js.info, start + task.timeout)
        except (NodeNotFound, PackagesError, OSError) as exc:
            unavailable = NodeUnavailable(f"cannot run JavaScript on this worker: {exc}")
            return self._failure(task, start, unavailable, "", with_traceback=False)

    def lookahead(
        self, take: TakeAhead, give_back: Callable[[int], None], unstarted: Callable[[], int]
    ) -> None:
        """Let the Node process get the next JavaScript tasks of the batch ahead of their turn:
        `take(n, accept)` moves up to n next tasks that `accept` takes out of the batch's
        unstarted ones (they run next, in order), `give_back(n)` returns the last n,
        `unstarted()` says how many there are (a lone task's top-up then costs one call)."""
        self._take_ahead = take
        self._give_back = give_back
        self._unstarted = unstarted
        if self.node is not None:
            self.node.top_up = self._top_up
            self.node.give_back = give_back

    def _top_up(self, limit: int) -> bytes:
        """The frames of up to `limit` next tasks, sent to Node ahead (`lookahead`): one run
        frame for all of them, after the frames of the layouts new to Node (a layout frame only
        adds a layout: it may go before tasks that do not use it). Each function's script is
        looked up and its plan made once per top-up, not for every task."""
        node, take = self.node, self._take_ahead
        if node is None or take is None or not self._unstarted():
            return b""
        plans: dict[tuple[str, str], AheadPlan | None] = {}
        preludes: list[bytes] = []
        entries: list[RunEntry] = []

        def accept(task: Task) -> bool:
            key = (task.function, task.version)
            if key in plans:
                plan = plans[key]
            else:
                plan = plans[key] = self._ahead_plan(node, task)
                if plan is not None and plan.prelude:
                    preludes.append(plan.prelude)
            if plan is None:
                return False
            entries.append(node.ahead(task, plan))
            return True

        take(limit, accept)
        if entries:
            try:
                preludes.append(run_frame(entries))
            except TypeError:  # a task whose kwargs JSON cannot carry: all run in their turn
                node.unsend(len(entries))
                if self._give_back is not None:
                    self._give_back(len(entries))
        return b"".join(preludes)

    def _ahead_plan(self, node: NodeExecutor, task: Task) -> AheadPlan | None:
        try:
            js = self.scripts.javascript(task.function, task.version)
        except Exception:  # it fails in its turn, saying why
            return None
        if js is None:
            return None
        return node.ahead_plan(task.function, js.script, js.hash, js.name)

    def _exit_if_forked(self, code: int) -> None:
        """End a copy of the child that user code forked (`os.fork()`) and that returned or
        raised into us: it must never answer the task or read the queue, which only the child
        does. `os._exit` skips the child's `finally` blocks and exit handlers, which are the
        child's, not the copy's. The check is the fork count `os.register_at_fork` keeps, not
        a getpid() system call per task (costly in sandboxed kernels); a copy forked by C
        code, which runs no fork hooks, is caught by the getpid() check the batch loops make
        before they write or read anything (`worker.child`, `worker.direct`)."""
        if _forks != self.forks:
            os._exit(code)

    def _jsonable(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Response):
            try:
                value = value.to_json()
            except TypeError as exc:  # a body orjson cannot encode: the task fails, not the child
                raise ResultError(
                    "ResultNotSerializable",
                    f"the function returned a Response whose body is not JSON-serialisable ({exc})",
                ) from None
        elif isinstance(value, bytes | bytearray):  # rules publish bytes as they are
            return {BYTES_MARKER: base64.b64encode(value).decode()}
        elif isinstance(value, _SIMPLE) and not isinstance(value, str):
            return value
        try:
            encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            raise ResultError(
                "ResultNotSerializable",
                f"the function returned a {type(value).__name__}, "
                f"which is not JSON-serialisable ({exc})",
            ) from None
        if len(encoded) > self.result_max_bytes:
            raise ResultError(
                "ResultTooLarge",
                f"the result is {len(encoded)} bytes as JSON, over the limit of "
                f"{self.result_max_bytes} bytes",
            )
        return value if isinstance(value, str) else orjson.loads(encoded)

    def _failure(
        self,
        task: Task,
        start: float,
        exc: BaseException,
        logs: str,
        *,
        with_traceback: bool = True,
    ) -> TaskResult:
        error_type = type(exc).__name__
        if isinstance(exc, ResultError):
            error_type = exc.kind
        elif isinstance(exc, UnknownFunction):
            error_type = "UnknownFunction"
        elif isinstance(exc, NodeUnavailable):
            error_type = "NodeUnavailable"
        message = str(exc)
        tb = None
        if with_traceback:
            frames = traceback.extract_tb(exc.__traceback__)
            # keep the user's frames: drop ours at the top of the stack
            user = [f for f in frames if not f.filename.endswith("fnhub/worker/execute.py")]
            tb = "Traceback (most recent call last):\n"
            tb += "".join(traceback.format_list(user))
            tb += "".join(traceback.format_exception_only(type(exc), exc))
        return result_for(
            task,
            Status.FAILURE,
            start_time=start,
            end_time=time.time(),
            error_type=error_type,
            error_message=message,
            traceback=tb,
            logs=logs,
        )

    def close(self) -> None:
        if self.node is not None:
            self.node.close()
        logging.getLogger().removeHandler(self.capture)
        with contextlib.suppress(Exception):
            self.loop.close()
