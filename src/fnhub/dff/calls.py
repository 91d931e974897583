"""`DFF.FUNC(func_id, kwargs, queue)`: queue another function as a child task of this one.

The task is made by `calling.maker.make_task`, the one place calls are checked (unknown
function, kwargs against its signature, size), and queued with `queue.add_enqueue`, like a
`QueueClient.submit` without a caller waiting. As in DataFlux Func the child keeps the
parent's origin and origin id and runs on the function's queue, else the parent's; its
`meta` carries the root task and the call chain (at most `CHAIN_LIMIT` deep, no cycles).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fnhub import runtime
from fnhub.dff.variables import CHAIN_META, ROOT_META
from fnhub.tasks import Origin

if TYPE_CHECKING:
    from fnhub.scripts.registry import ActiveScripts

#: DataFlux Func's `_FUNC_TASK_CALL_CHAIN_LIMIT`
CHAIN_LIMIT = 5


class FuncCallChainTooLong(Exception):
    pass


class FuncCircularCall(Exception):
    pass


_lock = threading.Lock()
_active: ActiveScripts | None = None


def _read_active() -> ActiveScripts:
    """The active scripts, read again only when their revision moved (one GET per call)."""
    from fnhub.scripts.registry import read_active  # Redis: not for every import of `DFF`

    global _active
    with _lock:
        _active = read_active(runtime.redis_client(), runtime.keys(), _active)
        return _active


def call_func(
    func_id: str,
    kwargs: dict[str, Any] | None = None,
    queue: int | str | None = None,
) -> str:
    """Queue `func_id` (`script.func`, or DataFlux Func's `set__script.func`) with `kwargs`;
    returns the child's task id (DataFlux Func returns nothing)."""
    from fnhub.calling.maker import make_task
    from fnhub.dff.api import queue_name
    from fnhub.queue import add_enqueue
    from fnhub.redis_wait import run_confirmed_sync

    parent = runtime.current_task.get()
    active = _read_active()
    info = active.function(func_id)
    ref = info.ref if info is not None else func_id  # make_task says why it is unknown
    meta: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if parent is not None:
        earlier = parent.meta.get(CHAIN_META)
        chain = [*(earlier if isinstance(earlier, list) else []), parent.function]
        shown = " -> ".join(f"`{f}`" for f in chain)
        if len(chain) >= CHAIN_LIMIT:
            raise FuncCallChainTooLong(shown)
        if ref in chain:
            raise FuncCircularCall(f"{shown} -> [`{ref}`]")
        meta = {ROOT_META: parent.meta.get(ROOT_META) or parent.id, CHAIN_META: chain}
        options = {"origin": parent.origin, "origin_id": parent.origin_id}
        own_queue = info.options.queue if info is not None else None
        options["queue"] = queue_name(queue) if queue is not None else own_queue or parent.queue
    elif queue is not None:
        options["queue"] = queue_name(queue)
    else:
        options["origin"] = Origin.DIRECT
    task = make_task(runtime.settings(), active, ref, kwargs or {}, meta=meta, **options)
    client = runtime.redis_client()
    pipe = client.pipeline(transaction=False)
    add_enqueue(pipe, runtime.keys(), task)
    # behind Sentinel, once a replica has it (CallError `not_replicated` if not)
    run_confirmed_sync(runtime.settings(), client, pipe, "the task")
    return task.id
