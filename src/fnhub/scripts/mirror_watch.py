"""Servers put the scripts' mirror back when Redis comes back empty.

The database holds the published scripts; Redis holds the copy producers and workers read
(`ScriptStore.sync_redis`: the scripts hash, their code, the scripts revision) and its marker
(`keys.scripts_mirrored`). A Redis restarted without persistence, flushed, or an empty node
promoted by Sentinel has neither: every call and cron tick then finds no function. Each server
looks at the marker once a second (an EXISTS; at its start too, so `fnhub server` mirrors like
`fnhub serve`). When Redis answers that it is gone, one server (a 5 s lease) mirrors the active
versions again from the database, with the revision moved past every cached one so callers,
beats and workers reload by themselves, and logs one WARNING. Redis unreachable answers nothing
and changes nothing; a publish meanwhile wins (`ScriptStore.restore_mirror` watches the marker).
"""

from __future__ import annotations

import asyncio
import logging

import redis
import redis.asyncio as aredis
from sqlalchemy.exc import SQLAlchemyError

from fnhub import lease
from fnhub.keys import Keys
from fnhub.outage_log import OutageLog
from fnhub.scripts.store import Restored, ScriptStore

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
#: how long one server has to restore before another may try (it takes well under a second)
LEASE_SECONDS = 5.0
#: what Redis alone held, said in the warning (docs/operations.md, "Redis that comes back empty")
LOST = (
    "queued and delayed tasks, task statuses, dead letters, results not yet recorded, cron "
    "pauses and dynamic cron jobs, fnhub.cache values and the npm packages of `fnhub apply` "
    "(apply again) are gone"
)


class MirrorWatch:
    """One per server process: `check` once (at start), `run` for the loop."""

    def __init__(self, client: aredis.Redis, keys: Keys, store: ScriptStore, owner: str) -> None:
        self.redis = client
        self.keys = keys
        self.store = store
        self.owner = owner
        self.restores = 0  # mirrors this process restored
        self._failing = OutageLog(log, "cannot restore the scripts' mirror in Redis")

    async def check(self) -> Restored | None:
        """Restore the mirror if Redis says its marker is gone and this process takes the
        lease; what it restored, else None. Redis or the database away: raises."""
        if await self.redis.exists(self.keys.scripts_mirrored):
            return None
        if not await lease.take(self.redis, self.keys.scripts_restore, self.owner, LEASE_SECONDS):
            return None  # another server restores it now
        restored = await asyncio.to_thread(self.store.restore_mirror)
        if restored is None:
            return None  # mirrored meanwhile (a publish)
        self.restores += 1
        if restored.mirror_was_there:  # an older version's mirror, without the marker
            log.info("scripts' mirror in Redis marked (%d scripts)", len(restored.scripts))
        else:
            log.warning(
                "Redis lost fnhub's data (restarted empty or flushed): restored the mirror of "
                "%d active script(s) from the database (%s); %s",
                len(restored.scripts),
                ", ".join(restored.scripts) or "none",
                LOST,
            )
        return restored

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check()
            except (redis.RedisError, OSError):
                pass  # Redis away: nothing to judge (the caller logs the outage)
            except SQLAlchemyError as exc:
                self._failing.failed(exc)
            else:
                self._failing.ok()
