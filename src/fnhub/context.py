"""`fnhub.context`: what a running function may know about its own task."""

from __future__ import annotations

from typing import Any

from fnhub.runtime import current_task


class TaskContext:
    """Read-only view of the current task; attributes are None outside a task."""

    @property
    def task_id(self) -> str | None:
        task = current_task.get()
        return None if task is None else task.id

    @property
    def function(self) -> str | None:
        task = current_task.get()
        return None if task is None else task.function

    @property
    def script(self) -> str | None:
        ref = self.function
        return ref.rpartition(".")[0] if ref else None

    @property
    def origin(self) -> str | None:
        task = current_task.get()
        return None if task is None else task.origin

    @property
    def origin_id(self) -> str | None:
        task = current_task.get()
        return None if task is None else task.origin_id

    @property
    def trigger_time(self) -> float | None:
        task = current_task.get()
        return None if task is None else task.trigger_time

    @property
    def attempt(self) -> int | None:
        task = current_task.get()
        return None if task is None else task.attempt

    @property
    def queue(self) -> str | None:
        task = current_task.get()
        return None if task is None else task.queue

    @property
    def meta(self) -> dict[str, Any]:
        task = current_task.get()
        return (task.meta if task is not None else None) or {}

    def __repr__(self) -> str:
        return f"<fnhub.context task_id={self.task_id} function={self.function}>"


context = TaskContext()
