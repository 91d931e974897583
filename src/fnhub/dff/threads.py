"""`DFF.THREAD`: DataFlux Func's thread pool for running parts of a task in parallel.

A `concurrent.futures.ThreadPoolExecutor` per worker process (5 threads unless
`set_pool_size` said otherwise before the first `submit`). Each submitted call runs in a copy
of the submitting task's context, so `DFF.CACHE`, `fnhub.context` and the built-in task see
that task. Results are kept per task: a new task starts with none.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fnhub import runtime

DEFAULT_POOL_SIZE = 5


@dataclass
class ThreadResult:
    key: str
    value: Any = None
    error: BaseException | None = None


def _result(key: str, future: concurrent.futures.Future[Any]) -> ThreadResult:
    try:
        return ThreadResult(key, future.result())
    except Exception as exc:
        return ThreadResult(key, None, exc)


class ThreadHelper:
    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._size: int | None = None
        self._task_id: str | None = None
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}

    def _current(self) -> dict[str, concurrent.futures.Future[Any]]:
        task = runtime.current_task.get()
        task_id = task.id if task is not None else None
        if task_id != self._task_id:
            self._task_id, self._futures = task_id, {}
        return self._futures

    @property
    def pool_size(self) -> int | None:
        return self._size

    @property
    def is_all_finished(self) -> bool:
        return all(f.done() for f in self._current().values())

    def set_pool_size(self, pool_size: int) -> None:
        if self._pool is not None:
            print("[THREAD POOL] Cannot set thread pool size after task submitted, skip")
            return
        size = int(pool_size)
        if size <= 0:
            raise ValueError("Invalid pool size, should be an integer which is greater than 0")
        self._size = size

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """Run `fn(*args, **kwargs)` on the pool; returns the key of its result."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._size or DEFAULT_POOL_SIZE, thread_name_prefix="dff-thread"
            )
        key = f"thread-result-{uuid.uuid4().hex[:16]}"
        context = contextvars.copy_context()
        self._current()[key] = self._pool.submit(context.run, fn, *args, **kwargs)
        return key

    def get_result(self, key: str, wait: bool = True) -> ThreadResult | None:
        future = self._current().get(str(key))
        if future is None or (not wait and not future.done()):
            return None
        return _result(str(key), future)

    def get_all_results(self, wait: bool = True) -> list[ThreadResult | None]:
        return [self.get_result(k, wait) for k in list(self._current())]

    def pop_result(self, wait: bool = True) -> ThreadResult | None:
        """The result of a finished call (waiting for one unless `wait` is False), removed."""
        futures = self._current()
        if not futures:
            return None
        done = next((k for k, f in futures.items() if f.done()), None)
        if done is None and wait:
            concurrent.futures.wait(
                list(futures.values()), return_when=concurrent.futures.FIRST_COMPLETED
            )
            done = next((k for k, f in futures.items() if f.done()), None)
        if done is None:
            return None
        return _result(done, futures.pop(done))

    def wait_all_finished(self) -> None:
        concurrent.futures.wait(list(self._current().values()))
