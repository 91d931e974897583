"""`fnhub.context`: what a running function may know about its own task."""

from __future__ import annotations

from typing import Any

from fnhub.runtime import current_task


class TaskContext:
    """Read-only view of the current task; attributes are None outside a task."""

    def _get(self, name: str) -> Any:
        task = current_task.get()
        return getattr(task, name) if task is not None else None

    @property
    def task_id(self) -> str | None:
        return self._get("id")

    @property
    def function(self) -> str | None:
        return self._get("function")

    @property
    def script(self) -> str | None:
        ref = self._get("function")
        return ref.rpartition(".")[0] if ref else None

    @property
    def origin(self) -> str | None:
        return self._get("origin")

    @property
    def origin_id(self) -> str | None:
        return self._get("origin_id")

    @property
    def trigger_time(self) -> float | None:
        return self._get("trigger_time")

    @property
    def attempt(self) -> int | None:
        return self._get("attempt")

    @property
    def queue(self) -> str | None:
        return self._get("queue")

    @property
    def meta(self) -> dict[str, Any]:
        return self._get("meta") or {}

    def __repr__(self) -> str:
        return f"<fnhub.context task_id={self.task_id} function={self.function}>"


context = TaskContext()
