"""A synchronous client for the queue, straight through Redis: what the CLI, tests and benchmarks
use to call functions on the server's machine. Callers elsewhere use `fnhub.Client` (HTTP)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis

from fnhub.calling.errors import CallError
from fnhub.calling.maker import make_task
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.queue import add_enqueue, iter_results
from fnhub.redis_client import sync_redis
from fnhub.redis_replies import as_streams
from fnhub.redis_wait import run_confirmed_sync
from fnhub.scripts.registry import ActiveScripts, read_active
from fnhub.tasks import Task, TaskResult
from fnhub.worker.presence import live_workers


class QueueClient:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = client or sync_redis(settings)
        self.caller_id = f"client-{uuid.uuid4().hex[:12]}"
        self.reply_stream = self.keys.reply(self.caller_id)
        self._last_reply = b"0-0"  # the id of the last reply read
        self._early: dict[str, TaskResult] = {}

    def active(self) -> ActiveScripts:
        return read_active(self.redis, self.keys)

    def workers(self) -> dict[str, dict[str, Any]]:
        """Live workers (heartbeat not expired) by id."""
        return live_workers(self.redis, self.keys)

    def queue_has_worker(self, queue: str) -> bool:
        return any(queue in w["queues"] for w in self.workers().values())

    def submit(
        self,
        ref: str,
        kwargs: dict[str, Any] | None = None,
        *,
        wait: bool = False,
        eta: float | None = None,
        **options: Any,
    ) -> Task:
        """Enqueue a call; with `wait`, its result will come to this client's reply stream."""
        task = make_task(
            self.settings,
            self.active(),
            ref,
            kwargs,
            reply_to=self.reply_stream if wait else None,
            **options,
        )
        self.enqueue(task, eta=eta)
        return task

    def enqueue(self, task: Task, *, eta: float | None = None) -> None:
        """Behind Sentinel, returns once a replica has the task (CallError `not_replicated`
        if none confirmed it in time: a failover may drop it)."""
        pipe = self.redis.pipeline(transaction=False)
        add_enqueue(pipe, self.keys, task, eta=eta)
        run_confirmed_sync(self.settings, self.redis, pipe, "the task")

    def wait(self, task_id: str, timeout: float) -> TaskResult | None:
        """The result of a task submitted with `wait=True`, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while task_id not in self._early:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # short blocks: redis-py's default socket timeout (5 s) must not cut a long wait
            block_ms = max(min(int(left * 1000), 2000), 1)
            response = self.redis.xread(
                {self.reply_stream: self._last_reply}, count=100, block=block_ms
            )
            for _stream, entries in as_streams(response):
                for entry_id, fields in entries:
                    self._last_reply = entry_id
                    for result in iter_results(fields):
                        self._early[result.id] = result
        return self._early.pop(task_id)

    def call(
        self,
        ref: str,
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        **options: Any,
    ) -> TaskResult:
        """Run a function and wait for its result; raises CallError if it cannot be queued."""
        task = make_task(
            self.settings, self.active(), ref, kwargs, reply_to=self.reply_stream, **options
        )
        if not self.queue_has_worker(task.queue):
            raise CallError("no_worker", f"no worker is listening on queue '{task.queue}'")
        self.enqueue(task)
        limit = timeout if timeout is not None else task.timeout + 30
        result = self.wait(task.id, limit)
        if result is None:
            raise CallError(
                "no_result", f"no result for task {task.id} within {limit:g}s", task_id=task.id
            )
        return result

    def close(self) -> None:
        self.redis.delete(self.reply_stream)
        self.redis.close()
