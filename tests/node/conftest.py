"""JavaScript scripts published in memory, and NodeExecutors over them, on the machine's real
`node` (no mocks): the executor reads code and the active map through the two callables a
worker gives it, here backed by a dict."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fnhub import runtime
from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.node.executor import NodeExecutor
from fnhub.tasks import Task, TaskResult


class JsScripts:
    """Script versions by (name, hash) and the active map, as the store would hold them."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], str] = {}
        self.active: dict[str, str] = {}

    def publish(self, **scripts: str) -> dict[str, str]:
        hashes = {}
        for name, code in scripts.items():
            hash_ = hashlib.sha256(code.encode()).hexdigest()
            self.versions[(name, hash_)] = code
            self.active[name] = hash_
            hashes[name] = hash_
        return hashes

    def code(self, name: str, hash_: str) -> str | None:
        return self.versions.get((name, hash_))

    def active_js(self) -> dict[str, str]:
        return dict(self.active)


@pytest.fixture
def js() -> JsScripts:
    return JsScripts()


@pytest.fixture
def make_executor(settings: Settings, js: JsScripts) -> Iterator[Callable[..., NodeExecutor]]:
    made: list[NodeExecutor] = []

    def make(modules_dir: Path | None = None, **overrides: Any) -> NodeExecutor:
        s = settings.model_copy(update=overrides) if overrides else settings
        executor = NodeExecutor(s, js.code, js.active_js, modules_dir=lambda: modules_dir)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close()


@pytest.fixture
def sdk_runtime(settings: Settings) -> Iterator[Settings]:
    """The process's SDK state (fnhub.runtime) pointed at this test's settings, as a worker
    child's `runtime.init` does; put back after."""
    saved = runtime._settings, runtime._redis
    runtime.init(settings)
    yield settings
    if runtime._redis is not None and runtime._redis is not saved[1]:
        runtime._redis.close()
    runtime._settings, runtime._redis = saved


def run(
    executor: NodeExecutor,
    ref: str,
    kwargs: dict[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    version: str = "",
    **fields: Any,
) -> TaskResult:
    """Run `script.function` as a worker child would, with a deadline `timeout` from now."""
    script, _, name = ref.rpartition(".")
    task = Task(function=ref, kwargs=kwargs or {}, timeout=timeout, **fields)
    info = FunctionInfo(script=script, name=name)
    return executor.run(task, script, version, name, info, time.time() + timeout)


def ok(result: TaskResult) -> Any:
    assert result.status == "success", (result.error_type, result.error_message, result.traceback)
    return result.result
