"""Turning "call this function with these kwargs" into a checked task envelope.

Every trigger (CLI, HTTP, cron, subscriptions, the hub) goes through `make_task`, so unknown
functions, kwargs that do not fit the signature and oversized kwargs are refused before anything
reaches a queue, with the same errors everywhere.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.scripts.registry import ActiveScripts
from fnhub.tasks import Task


class CallError(Exception):
    """A call refused before enqueueing. `kind` maps to an HTTP status in the server."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # unknown_function | invalid_kwargs | too_large | unavailable


def resolve(active: ActiveScripts, ref: str) -> FunctionInfo:
    info = active.function(ref)
    if info is None:
        script = ref.rpartition(".")[0]
        if "." not in ref:
            hint = " (expected 'script.function')"
        elif script not in active.scripts:
            hint = f" (no published script '{script}')"
        else:
            names = ", ".join(f.name for f in active.scripts[script].functions) or "none"
            hint = f" (script '{script}' exports: {names})"
        raise CallError("unknown_function", f"unknown function '{ref}'{hint}")
    return info


def make_task(
    settings: Settings,
    active: ActiveScripts,
    ref: str,
    kwargs: dict[str, Any] | None = None,
    *,
    origin: str = "direct",
    origin_id: str | None = None,
    queue: str | None = None,
    timeout: float | None = None,
    expires: float | None = None,
    reply_to: str | None = None,
    record: bool | None = None,
    record_limit: int | None = None,
    meta: dict[str, Any] | None = None,
    check_kwargs: bool = True,
) -> Task:
    info = resolve(active, ref)
    kwargs = kwargs or {}
    if not isinstance(kwargs, dict):
        raise CallError("invalid_kwargs", "kwargs must be a JSON object")
    size = len(msgspec.msgpack.encode(kwargs))
    if size > settings.kwargs_max_bytes:
        raise CallError(
            "too_large",
            f"kwargs are {size} bytes, over the limit of {settings.kwargs_max_bytes} bytes",
        )
    if check_kwargs and info.convention == "kwargs":
        problem = info.check_kwargs(kwargs)
        if problem:
            raise CallError("invalid_kwargs", problem)
    options = info.options
    now = time.time()
    timeout = min(timeout or options.timeout or settings.default_timeout, settings.max_timeout)
    expires = expires or options.expires or settings.default_expires
    script = active.scripts[info.script]
    if options.concurrency:  # read by the worker child (fnhub.concurrency)
        meta = {**(meta or {}), "concurrency": options.concurrency}
    return Task(
        function=ref,
        version=script.hash,
        kwargs=kwargs,
        origin=origin,
        origin_id=origin_id if origin_id is not None else ref,
        queue=queue or options.queue or _default_queue(origin),
        timeout=timeout,
        trigger_time=now,
        expires_at=now + expires,
        max_attempts=options.max_attempts or settings.max_attempts,
        retries=options.retries,
        retry_delay=options.retry_delay,
        reply_to=reply_to,
        record=settings.records_enabled and options.record and (record is not False),
        record_limit=record_limit if record_limit is not None else options.record_limit,
        meta=meta or {},
    )


def _default_queue(origin: str) -> str:
    return {"cron": "cron", "subscription": "sub", "endpoint_async": "async"}.get(origin, "sync")
