"""Every Redis key fnhub uses, in one place, so the layout can be read (and changed) at a glance."""

from __future__ import annotations

from dataclasses import dataclass

WORKER_GROUP = "workers"
RECORDER_GROUP = "recorders"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "fnhub"

    def queue(self, name: str) -> str:
        """Stream of task envelopes for one queue; consumer group `workers`."""
        return f"{self.prefix}:q:{name}"

    def queue_name(self, stream: str) -> str:
        return stream.removeprefix(f"{self.prefix}:q:")

    @property
    def delayed(self) -> str:
        """Sorted set `<queue>|<task id>` scored by the time the task becomes due."""
        return f"{self.prefix}:delayed"

    @property
    def delayed_tasks(self) -> str:
        """Hash task id → envelope for delayed tasks."""
        return f"{self.prefix}:delayed:tasks"

    @property
    def dead(self) -> str:
        """Stream of envelopes that exhausted their attempts."""
        return f"{self.prefix}:dead"

    @property
    def records(self) -> str:
        """Stream of task results waiting to be written to the database in batches."""
        return f"{self.prefix}:records"

    def reply(self, caller_id: str) -> str:
        """Stream a waiting caller (a server, a CLI) reads its tasks' results from."""
        return f"{self.prefix}:reply:{caller_id}"

    @property
    def workers(self) -> str:
        """Hash worker id → JSON description (queues, processes, host, pid)."""
        return f"{self.prefix}:workers"

    def worker_alive(self, worker_id: str) -> str:
        """Key with a short TTL, refreshed by a live worker's heartbeat."""
        return f"{self.prefix}:worker:{worker_id}:alive"

    def reclaim_lock(self, consumer: str) -> str:
        return f"{self.prefix}:lock:reclaim:{consumer}"

    @property
    def scripts(self) -> str:
        """Hash script name → JSON {version, hash, functions} of the active version."""
        return f"{self.prefix}:scripts"

    @property
    def scripts_revision(self) -> str:
        """Counter bumped on every publish, so caches know when to reload."""
        return f"{self.prefix}:scripts:rev"

    def script_code(self, name: str, hash_: str) -> str:
        """Code of one immutable script version."""
        return f"{self.prefix}:script:{name}:{hash_}"

    def cache(self, scope: str, key: str) -> str:
        return f"{self.prefix}:cache:{scope}:{key}"

    def cache_pattern(self, scope: str) -> str:
        return f"{self.prefix}:cache:{scope}:*"
