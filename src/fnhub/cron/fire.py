"""Firing ticks exactly once: one Lua script decides and enqueues each (job, tick) atomically.

For each job in a batch the script, inside Redis and so atomically with respect to every other
beat:

1. refuses the whole batch unless the caller still holds the beat lease (a deposed leader that
   woke up late cannot enqueue anything);
2. compares the tick with the job's watermark in `keys.cron_fired` — the last tick decided for
   it — and does nothing if the tick is not newer. This is the per-(job, tick) idempotency key,
   kept as one number per job: ticks are decided in order, so "decided" = "≤ watermark";
3. moves the watermark to the tick, then: paused (globally or per job) → nothing runs; overlap
   policy `skip` and the job's running marker exists → `skipped`; otherwise enqueues the tick's
   tasks (delay 0 → an entry of the queue stream, later delays → the delayed set) as
   `fnhub.queue.queue_entry` / `delayed_entry` built them, the one definition every writer of
   a queue uses, and sets the running marker, which the last task's final result deletes
   (`fnhub.queue.add_result`).

A crash between two batches loses nothing: the next leader resumes from the watermarks.
"""

from __future__ import annotations

from typing import Any

import msgspec

from fnhub.keys import Keys
from fnhub.queue import delayed_entry, lua_str, queue_entry
from fnhub.tasks import Task, encode

FIRED, ALREADY, SKIPPED, PAUSED = 1, 0, 2, 3
NOT_LEADER = -1

FIRE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local all_paused = redis.call('EXISTS', KEYS[3]) == 1
local out = {}
for _, job in ipairs(cmsgpack.unpack(ARGV[6])) do
  local id, tick, marker, ttl, tasks = job[1], job[2], job[3], job[4], job[5]
  local code = 0
  local last = redis.call('HGET', KEYS[2], id)
  if (not last) or tonumber(last) < tick then
    redis.call('HSET', KEYS[2], id, string.format('%d', tick))
    if all_paused or redis.call('EXISTS', ARGV[2] .. id) == 1 then
      code = 3
    elseif marker ~= '' and redis.call('EXISTS', marker) == 1 then
      code = 2
    else
      for _, task in ipairs(tasks) do
        if task[1] == 'now' then  -- stream, field, value, extra: a `queue.Entry`
          redis.call('XADD', task[2], '*', task[3], task[4])
          if task[5] ~= '0' then redis.call('HINCRBY', ARGV[3], task[2], task[5]) end
        else  -- due, member, task id, envelope: a `queue.Delayed`
          redis.call('HSET', ARGV[5], task[4], task[5])
          redis.call('ZADD', ARGV[4], task[2], task[3])
        end
      end
      if marker ~= '' then redis.call('SET', marker, job[6], 'EX', ttl) end
      code = 1
    end
  end
  out[#out + 1] = code
end
return out
"""


def fire_keys(keys: Keys) -> list[str]:
    return [keys.beat_leader, keys.cron_fired, keys.cron_pause_all]


def fire_head(keys: Keys, owner: str) -> list[Any]:
    """The fixed arguments before the packed batch."""
    return [owner, keys.cron_pause_prefix, keys.bundled, keys.delayed, keys.delayed_tasks]


def job_segment(
    keys: Keys,
    job_id: str,
    tick: int,
    marker: str,
    marker_ttl: int,
    tasks: list[tuple[Task, float | None]],
) -> list[Any]:
    """One job's entry: its tick, running marker ("" = overlap allowed) and tasks, each with
    when it is due (None: at once).

    The marker's value is the last task's id, the one whose end clears it."""
    writes = [_task_write(keys, task, due) for task, due in tasks]
    return [job_id, tick, marker, marker_ttl, writes, tasks[-1][0].id]


def _task_write(keys: Keys, task: Task, due: float | None) -> list[Any]:
    """The Lua's words for putting one task on its queue: the `queue.Entry` or `queue.Delayed`
    built by the same functions as every other enqueue."""
    envelope = encode(task)
    if due:
        due, member, task_id, data = delayed_entry(task, envelope, due)
        return ["later", repr(due), member, task_id, lua_str(data)]
    field, value, extra = queue_entry([envelope])
    return ["now", keys.queue(task.queue), field, lua_str(value), str(extra)]


def pack(segments: list[list[Any]]) -> bytes:
    """A batch as one msgpack argument: packing 10,000 separate arguments costs far more."""
    return _packer.encode(segments)


_packer = msgspec.msgpack.Encoder()
