"""DataFlux Func's built-in variables (`_DFF_TASK_ID`, `_DFF_ORIGIN`...), true for the running task.

DataFlux Func executes a script's module again for every task, so its variables are plain module
globals. fnhub imports a script once per worker process and version, and every task of the
process shares that module's globals. So:

- `modules.build_module` registers (`register`) the modules whose code names a `_DFF_`
  variable, and sets the variables there before the module's code runs (`values_for` the task
  running then, or None/{} when the module loads outside a task).
- The worker's executor calls `set_for(task)` before each call while any module is registered:
  one `dict.update` per registered module. While none is (no script uses the variables), it
  only tests that the list is empty, so the task path of other scripts pays nothing more.

A worker child runs one task at a time, so the globals are those of the running task while it
runs. Module-level code runs once per version, not per task: what it reads there is the task
that loaded the module (or None), not the later ones; a thread a task leaves running sees the
variables of whichever task runs now. Read `fnhub.context` there instead.
"""

from __future__ import annotations

import time
import types
import weakref
from typing import Any

from fnhub.tasks import Origin, Task

#: where a script's code names a built-in variable, if anywhere (a cheap text test)
MARK = "_DFF_"

#: modules whose code names a built-in variable, as weak references (versions are dropped when
#: the active scripts change); the executor tests this list before every task
modules: list[weakref.ref[types.ModuleType]] = []

#: fnhub's origins as DataFlux Func names them (an endpoint: `syncAPI` or `asyncAPI`)
ORIGINS: dict[str, str] = {
    Origin.DIRECT: "direct",
    Origin.API: "direct",
    Origin.ENDPOINT_AUTH: "apiAuth",
    Origin.CRON: "cronJob",
    Origin.SUBSCRIPTION: "connector",
}

#: meta keys `DFF.FUNC` writes into the tasks it makes
ROOT_META = "dff_root_task"
CHAIN_META = "dff_call_chain"


def dff_origin(task: Task) -> str:
    if task.origin == Origin.ENDPOINT:
        return "asyncAPI" if task.queue == "async" else "syncAPI"
    return ORIGINS.get(task.origin, task.origin)


def http_request(task: Task) -> dict[str, Any]:
    """`_DFF_HTTP_REQUEST` from what the server recorded (`meta["http"]`); {} when not HTTP.
    The query and body are not there: they are the function's kwargs."""
    http = task.meta.get("http") if task.meta else None
    if not isinstance(http, dict):
        return {}
    headers = http.get("headers")
    if not isinstance(headers, dict):
        headers = {}
    return {
        "method": str(http.get("method") or "").upper(),
        "url": http.get("path"),
        "originalUrl": http.get("path"),
        "path": http.get("path"),
        "host": headers.get("host"),
        "headers": headers,
        "ip": http.get("client"),
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def values_for(task: Task | None) -> dict[str, Any]:
    """Every built-in variable for `task` (None: outside a task)."""
    if task is None:
        return {name: ({} if name == "_DFF_HTTP_REQUEST" else None) for name in NAMES}
    meta = task.meta or {}
    cron = meta.get("cron") if isinstance(meta.get("cron"), dict) else None
    script, _, func_name = task.function.rpartition(".")
    chain = [*_list(meta.get(CHAIN_META)), task.function]
    now = time.time()
    cron_expr = cron.get("expr") if cron else None
    cron_delay = (cron.get("delay") or 0) if cron else 0
    exec_mode = ("manual" if cron.get("manual") else "cronJob") if cron else None
    return {
        "_DFF_DEBUG": False,
        "_DFF_TASK_ID": task.id,
        "_DFF_ROOT_TASK_ID": meta.get(ROOT_META) or task.id,
        "_DFF_SCRIPT_SET_ID": script.split("__")[0] if "__" in script else None,
        "_DFF_SCRIPT_ID": script,
        "_DFF_FUNC_ID": task.function,
        "_DFF_FUNC_NAME": func_name,
        "_DFF_FUNC_CHAIN": chain,
        "_DFF_ORIGIN": dff_origin(task),
        "_DFF_ORIGIN_ID": task.origin_id,
        "_DFF_TRIGGER_TIME": int(task.trigger_time),
        "_DFF_TRIGGER_TIME_MS": int(task.trigger_time * 1000),
        "_DFF_START_TIME": int(now),
        "_DFF_START_TIME_MS": int(now * 1000),
        "_DFF_ETA": None,
        "_DFF_DELAY": None,
        "_DFF_CRON_EXPR": cron_expr,
        "_DFF_CRON_JOB_DELAY": cron_delay,
        "_DFF_CRON_JOB_EXEC_MODE": exec_mode,
        "_DFF_QUEUE": task.queue,
        "_DFF_HTTP_REQUEST": http_request(task),
        # DataFlux Func's older names
        "_DFF_CRONTAB": cron_expr,
        "_DFF_CRONTAB_DELAY": cron_delay,
        "_DFF_CRONTAB_EXEC_MODE": exec_mode,
    }


NAMES = tuple(values_for(Task(function="s.f")))


def register(module: types.ModuleType, task: Task | None) -> None:
    """Give `module` the variables now (of `task`, the one running as it loads) and at every
    later task of this process."""
    module.__dict__.update(values_for(task))
    modules.append(weakref.ref(module))


def set_for(task: Task) -> None:
    """Set the variables of `task` in every registered module (the executor, before the call)."""
    values = values_for(task)
    dead = False
    for ref in modules:
        module = ref()
        if module is None:
            dead = True
        else:
            module.__dict__.update(values)
    if dead:
        modules[:] = [ref for ref in modules if ref() is not None]
