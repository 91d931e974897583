"""At most N concurrent runs of a function across the cluster (`@fnhub.api(concurrency=N)`).

Baetyl bounds a function by its pool of instances (`instance.max`); fnhub's worker children are
shared by all functions, so the bound is a Redis counting semaphore instead: a sorted set per
function whose members are the running task ids, scored by when the hold expires (the task's
deadline plus a margin, so a holder lost with its whole machine frees itself). A child takes a
slot before running and gives it back in the same MULTI that acknowledges the task (see
`queue.add_result` and `queue.release_consumer`). A child that finds no free slot does not wait:
it puts the task back through the delayed set (same attempt) and reads the next one.

Functions without `concurrency` never touch this module: `make_task` only copies the limit into
`task.meta["concurrency"]` when one is set.
"""

from __future__ import annotations

import time
from typing import Any

from fnhub.keys import Keys
from fnhub.tasks import Task

#: how long a task that found every slot taken waits in the delayed set before it is read again
RETRY_SECONDS = 0.2
#: a hold outlives its task's deadline by this much (the supervisor kills at the deadline)
HOLD_MARGIN_SECONDS = 30.0

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(ARGV[4]) * 1000))
  return 1
end
return 0
"""


def limit_of(task: Task) -> int | None:
    value = task.meta.get("concurrency")
    return int(value) if value else None


def acquire(client: Any, keys: Keys, task: Task, limit: int) -> bool:
    """Take one of the function's `limit` slots for this task; False when all are held."""
    now = time.time()
    until = now + task.timeout + HOLD_MARGIN_SECONDS
    key = keys.concurrency(task.function)
    return bool(client.eval(_ACQUIRE, 1, key, repr(now), limit, task.id, repr(until)))


def add_release(pipe: Any, keys: Keys, task: Task) -> None:
    """Queue giving back the task's slot (a no-op for functions without a limit)."""
    if task.meta.get("concurrency"):
        pipe.zrem(keys.concurrency(task.function), task.id)
