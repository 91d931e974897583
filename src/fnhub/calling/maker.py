"""Turning "call this function with these kwargs" into a checked task envelope.

Every trigger (CLI, HTTP, cron, subscriptions, the hub) goes through `make_task`, or a
`TaskMaker` for many tasks of one function, so unknown functions, kwargs that do not fit the
signature and oversized kwargs are refused before anything reaches a queue, with the same
errors everywhere.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from fnhub import json_values, tracing
from fnhub.calling.errors import CallError
from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.scripts.registry import ActiveScripts
from fnhub.tasks import Origin, Task, new_task_id

if TYPE_CHECKING:
    from opentelemetry.trace import Span


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


class TaskMaker:
    """Tasks of one function from one trigger: what depends only on the function and the
    trigger (its options, limits, queue, script version) is worked out once, so a trigger
    that makes many tasks at once (a subscription's batch of messages) pays it once."""

    def __init__(
        self,
        settings: Settings,
        active: ActiveScripts,
        ref: str,
        *,
        origin: Origin | str = Origin.DIRECT,  # a str: a replayed task's, maybe unknown here
        origin_id: str | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        expires: float | None = None,
        reply_to: str | None = None,
        record: bool | None = None,
        record_limit: int | None = None,
        check_kwargs: bool = True,
        traced: bool = True,
    ) -> None:
        self.info = info = resolve(active, ref)
        self.traced = traced  # False: a template copied later (cron), traced when copied
        options = info.options
        self.kwargs_max_bytes = settings.kwargs_max_bytes
        self.check_kwargs = check_kwargs and info.convention == "kwargs"
        self.expires = expires or options.expires or settings.default_expires
        self.concurrency = options.concurrency  # read by the worker child (fnhub.concurrency)
        # every task starts as a copy of this one: msgspec copies a struct faster than it parses
        # a dozen keyword arguments, and a subscription makes thousands of tasks a second
        self.template = Task(
            function=info.ref,  # `ref` may be an alias (DataFlux Func's `set__script.func`)
            version=active.scripts[info.script].hash,
            origin=origin,
            origin_id=origin_id if origin_id is not None else info.ref,
            queue=queue or options.queue or DEFAULT_QUEUES.get(origin, "sync"),
            timeout=min(
                timeout or options.timeout or settings.default_timeout, settings.max_timeout
            ),
            max_attempts=options.max_attempts or settings.max_attempts,
            retries=options.retries,
            retry_delay=options.retry_delay,
            dead_letter=options.dead_letter,
            reply_to=reply_to,
            record=settings.records_enabled and options.record and (record is not False),
            record_limit=record_limit if record_limit is not None else options.record_limit,
        )

    def __call__(
        self,
        kwargs: dict[str, Any] | None,
        meta: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        size_at_most: int | None = None,
        parent: Span | None = None,
        now: float | None = None,
    ) -> Task:
        """A checked task: CallError when kwargs are not an object, cannot travel intact
        (`encode_kwargs`), are too large or (if asked) do not fit the function's signature.
        `task_id` comes from `new_task_ids` when the caller makes many; `size_at_most`, a
        bound on the kwargs' encoded size the caller knows because it built them from a
        message's text, spares encoding them only to check them. With tracing on, the task
        gets an `enqueue` span under `parent` (else the current span). `now`: the trigger
        time, when the caller makes many tasks of one moment (a subscription's batch)."""
        kwargs = kwargs or {}
        if not isinstance(kwargs, dict):
            raise CallError("invalid_kwargs", "kwargs must be a JSON object")
        if size_at_most is None or size_at_most > self.kwargs_max_bytes:
            size = len(encode_kwargs(kwargs))
            if size > self.kwargs_max_bytes:
                raise CallError(
                    "too_large",
                    f"kwargs are {size} bytes, over the limit of {self.kwargs_max_bytes} bytes",
                )
        if self.check_kwargs:
            problem = self.info.check_kwargs(kwargs)
            if problem:
                raise CallError("invalid_kwargs", problem)
        if self.concurrency:
            meta = {**(meta or {}), "concurrency": self.concurrency}
        if now is None:
            now = time.time()
        task = msgspec.structs.replace(
            self.template,
            id=task_id or new_task_id(),
            kwargs=kwargs,
            trigger_time=now,
            expires_at=now + self.expires,
            meta=meta or {},
        )
        if tracing.hooks is not None and self.traced:
            tracing.hooks.enqueue(task, parent)
        return task


def make_task(
    settings: Settings,
    active: ActiveScripts,
    ref: str,
    kwargs: dict[str, Any] | None = None,
    *,
    meta: dict[str, Any] | None = None,
    **options: Any,
) -> Task:
    """One checked task (options as for `TaskMaker`)."""
    return TaskMaker(settings, active, ref, **options)(kwargs, meta)


DEFAULT_QUEUES: dict[str, str] = {Origin.CRON: "cron", Origin.SUBSCRIPTION: "sub"}
_encode = msgspec.msgpack.Encoder().encode


#: how deep kwargs may nest (`json_values.MAX_DEPTH`)
KWARGS_MAX_DEPTH = json_values.MAX_DEPTH


def encode_kwargs(kwargs: dict[str, Any]) -> bytes:
    """kwargs as the queue carries them; CallError naming the part that cannot travel intact
    (`json_values.problem`: nesting past KWARGS_MAX_DEPTH, integers past 64 bits, lone
    surrogates, NaN or infinities). Kwargs that encode fine are walked only when their
    encoding may hide one (`json_values.worth_checking`): most never are."""
    try:
        encoded = _encode(kwargs)
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:
        # UnicodeEncodeError is a ValueError; a type msgpack lacks is a TypeError
        problem = json_values.problem(kwargs, "kwargs")
        raise CallError("invalid_kwargs", problem or f"kwargs cannot be queued: {exc}") from None
    if json_values.worth_checking(encoded):
        problem = json_values.problem(kwargs, "kwargs")
        if problem:
            raise CallError("invalid_kwargs", problem)
    return encoded
