"""Finding the tasks a Redis failover lost while their callers waited for them.

Redis replicates asynchronously: what the primary took in the moment before it died, or before
Sentinel promoted its replica, can be missing on the new primary. A caller waiting for such a
task (a subscription holds its message unacknowledged until the task's result comes) would wait
until the task's expiry and then settle the message as `expired`, its function never run.

A primary that is not the one it was shows a new replication id (`master_replid`: a promoted
replica, or a Redis restarted without its data, draws a new one). After such a change the
caller looks for each task it waits for: in the delayed set (a retry waiting for its time, a
task that found its function's concurrency slots taken), in its queue stream (an entry stays
there, in a bundle or alone, until the task finished: acknowledging deletes it), in the delayed
set again (a task may move there while the stream is read), and, for tasks that finished
meanwhile, in its reply stream past what its reader has read. A task in none of them is gone
and is enqueued again, with the same id, so at most its result comes twice (the second finds
nobody waiting). A task that moves between the delayed set and its queue more than once during
the search can be taken for lost and run twice: at-least-once, as a crash allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import redis
import redis.asyncio as aredis

from fnhub.queue import bundle_envelopes, iter_results
from fnhub.redis_replies import as_entries

#: entries per XRANGE page while looking through a queue or reply stream
PAGE = 500


class _TaskId(msgspec.Struct):
    """The one field of a task envelope the search needs (msgspec skips the others)."""

    id: str


_id_decoder = msgspec.msgpack.Decoder(_TaskId)


async def primary_replid(client: aredis.Redis) -> str | None:
    """The replication id of the primary `client` reaches; None if it does not say (INFO not
    permitted, or answered without it, or by a replica)."""
    try:
        info: dict[str, Any] = await client.info("replication")
    except redis.ResponseError:  # e.g. an ACL without INFO: failovers go unnoticed here
        return None
    if info.get("role") != "master":
        return None
    replid = info.get("master_replid")
    if isinstance(replid, bytes):
        replid = replid.decode()
    return replid if isinstance(replid, str) and replid else None


def _entry_task_ids(fields: dict[bytes, bytes]) -> Iterable[str]:
    """The task ids a queue entry holds (one envelope `e` or a bundle `b`); none if malformed
    (the worker that reads it deals with that)."""
    try:
        if b"e" in fields:
            return (_id_decoder.decode(fields[b"e"]).id,)
        if b"b" in fields:
            return [_id_decoder.decode(raw).id for raw in bundle_envelopes(fields[b"b"])]
    except msgspec.DecodeError:
        pass
    return ()


async def _pages(
    client: aredis.Redis, stream: str, after: str
) -> Any:  # an async iterator of (entry id, fields)
    start = f"({after}" if after != "0-0" else "-"
    while True:
        entries = as_entries(await client.xrange(stream, start, "+", count=PAGE))
        for entry_id, fields in entries:
            yield entry_id, fields
        if len(entries) < PAGE:
            return
        last = entries[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))


async def queued(client: aredis.Redis, stream: str, wanted: set[str]) -> set[str]:
    """Those of `wanted` that an entry of queue stream `stream` holds (waiting, read by a
    worker, or running: an entry leaves only once its tasks finished)."""
    found: set[str] = set()
    if not wanted:
        return found
    async for _entry_id, fields in _pages(client, stream, "0-0"):
        found.update(i for i in _entry_task_ids(fields) if i in wanted)
        if len(found) == len(wanted):
            break
    return found


async def delayed(client: aredis.Redis, key: str, wanted: set[str]) -> set[str]:
    """Those of `wanted` waiting in the delayed set (`keys.delayed_tasks`, task id → envelope)."""
    ids = sorted(wanted)
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hexists(key, task_id)
    return {task_id for task_id, held in zip(ids, await pipe.execute(), strict=True) if held}


async def replied(client: aredis.Redis, stream: str, after: str, wanted: set[str]) -> set[str]:
    """Those of `wanted` with a result in reply stream `stream` after entry `after`."""
    found: set[str] = set()
    async for _entry_id, fields in _pages(client, stream, after):
        try:
            found.update(r.id for r in iter_results(fields) if r.id in wanted)
        except msgspec.DecodeError:
            continue
    return found
