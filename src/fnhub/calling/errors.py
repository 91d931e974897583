"""Why a call was refused before it ran, or got no result: one error type for every front end."""

from __future__ import annotations

from typing import Literal

CallErrorKind = Literal[
    "unknown_function",  # no such published function
    "invalid_kwargs",  # kwargs do not fit its signature
    "too_large",  # kwargs over `kwargs_max_bytes`
    "no_worker",  # no live worker reads the task's queue
    "queue_full",  # the queue is at `queue_max_length`
    "not_replicated",  # no replica confirmed the enqueue in time (`fnhub.redis_wait`)
    "no_result",  # enqueued, but no result came in time (it may still run)
]


class CallError(Exception):
    """A call refused before enqueueing, or left without a result (`no_result`).

    `retry_after` says when trying again may succeed (no worker, queue full); `task_id` names
    the task that was enqueued when there is one."""

    def __init__(
        self,
        kind: CallErrorKind,
        message: str,
        *,
        task_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: CallErrorKind = kind
        self.task_id = task_id
        self.retry_after = retry_after
