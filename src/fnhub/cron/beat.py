"""The beat: any number may run; the one holding the Redis lease fires cron ticks.

Every beat keeps all enabled jobs in memory (reloaded when `keys.cron_revision`, the dynamic
expressions' revision or the scripts' revision moves), so a standby can take over within about
one lease period. The leader keeps a heap of next fire times; shortly (`LEAD`) before a tick it
builds that tick's task envelopes, then at the tick sends them to Redis in a few Lua calls
(`fnhub.cron.fire`) that check the lease and each job's watermark, so every (job, tick) is
enqueued once even when leaders change or two deployments share Redis.

What the leader decides is counted for `/metrics` in memory (`fnhub.ops_stats`) and added to
`keys.stats` about once a second: `cron|<job>|fired`, `cron|<job>|skipped_<reason>` (overlap,
paused, missed) and the delay of each fired tick (`cd`: send time - tick), so a standalone
`fnhub beat` is counted like the server's (`fnhub.cron.metrics`).

Missed ticks: a tick later than `cron_misfire_grace_seconds` (the beat was down or stalled) is
missed; the job's `misfire` policy skips it (default) or runs the latest missed tick once. Ticks
less late than that — e.g. during a leader change — still fire, late.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis
import redis.asyncio as aredis
from redis.exceptions import NoScriptError

from fnhub import tracing
from fnhub.aio import wait_event
from fnhub.calling.errors import CallError
from fnhub.calling.maker import make_task
from fnhub.config import Settings
from fnhub.cron.clock import Dynamic, JobClock, clock_for, decode_dynamic
from fnhub.cron.fire import (
    ALREADY,
    FIRE_LUA,
    FIRED,
    NOT_LEADER,
    PAUSED,
    SKIPPED,
    fire_head,
    fire_keys,
    job_segment,
    pack,
)
from fnhub.cron.schedule import CronExpressionError
from fnhub.cron.spec import CronJobSpec, read_jobs, spec_of
from fnhub.functions import FunctionInfo
from fnhub.keys import Keys
from fnhub.lease import Lease
from fnhub.ops_stats import Counts
from fnhub.presence import Announcer
from fnhub.queue import add_result
from fnhub.redis_replies import as_hash
from fnhub.scripts.registry import ActiveScripts, read_active_async
from fnhub.store.db import Database
from fnhub.tasks import Origin, Status, Task, new_task_id, result_for

log = logging.getLogger(__name__)

LEAD = 0.25  # seconds before a tick its envelopes are built (more if building takes longer)
MAX_LEAD = 0.9
CHUNK = 500  # jobs per Lua call: short enough not to stall Redis, long enough to amortise
REFRESH_EVERY = 0.5  # seconds between revision checks
FLUSH_EVERY = 1.0  # seconds between additions of the counts to `keys.stats`
ANNOUNCE_EVERY = 2.0  # seconds between the beat's presence heartbeats (`fnhub.presence`)


@dataclass(slots=True)
class BeatJob:
    """A job ready to fire: when (clock), and the task to copy per tick (template)."""

    spec: CronJobSpec
    info: FunctionInfo
    clock: JobClock
    template: Task
    span: float  # template.expires_at - template.trigger_time
    delays: list[float]
    marker: str  # running-marker key; "" when overlap is allowed
    marker_ttl: int
    created_at: float
    script_hash: str

    @property
    def timing(self) -> tuple[Any, ...]:
        """What decides the job's ticks; when it changes the next tick is recomputed."""
        c = self.clock
        return (c.base, c.override, c.until, c.expires_at)


@dataclass
class BeatStats:
    fired: int = 0
    skipped: int = 0
    paused: int = 0
    already: int = 0
    missed: int = 0
    batches: int = 0
    late: list[float] = field(default_factory=list)  # send time - tick, last 10,000 batches


def new_beat_id() -> str:
    """A `fnhub beat`'s id, unique per process (its Redis connections are named after it)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Beat:
    def __init__(
        self,
        settings: Settings,
        client: aredis.Redis,
        db: Database,
        beat_id: str | None = None,
        server_id: str | None = None,
    ) -> None:
        """`server_id`: the server process this beat runs in (none: a `fnhub beat`)."""
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.key_prefix)
        self.db = db
        self.id = beat_id or new_beat_id()
        self.jobs: dict[str, BeatJob] = {}
        self.broken: dict[str, str] = {}  # job id → why it cannot be scheduled
        self.leading = False
        self.stats = BeatStats()
        self._heap: list[tuple[int, str]] = []
        self._next: dict[str, int] = {}  # job id → tick in the heap (others there are stale)
        self._last: dict[str, int] = {}  # job id → last tick decided (as far as we know)
        self._revisions: tuple[Any, ...] | None = None
        self._specs: list[CronJobSpec] = []
        self._created: dict[str, float] = {}
        self._active = ActiveScripts()
        self._dynamic: dict[str, Dynamic] = {}
        self._refresh_at = 0.0
        self._lease_at = 0.0
        self.lease = Lease(client, self.keys.beat_leader, self.id, settings.cron_lease_seconds)
        self._fire_sha: str | None = None
        self._lead = LEAD
        self.counts = Counts()
        self._flush_at = 0.0
        self.server_id = server_id
        self.announcer = Announcer(
            client, self.keys.beats, self.id, ANNOUNCE_EVERY, settings.presence_ttl_seconds
        )
        self._announce_at = 0.0

    # -- loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or the task is cancelled); resign the lease on the way out."""
        stop = stop or asyncio.Event()
        log.info("beat %s started", self.id)
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                    log.warning("beat %s cannot reach Redis: %s", self.id, exc)
                    self._stand_down()
                    await asyncio.sleep(0.5)
                await wait_event(stop, self._sleep_time())
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):  # a shutdown must not wait on a dead Redis
                    await asyncio.shield(self.resign())
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await asyncio.shield(self.flush_counts())
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await asyncio.shield(self.announcer.leave())

    async def step(self) -> None:
        now = time.time()
        if now >= self._refresh_at:
            self._refresh_at = now + REFRESH_EVERY
            await self.refresh()
        if now >= self._lease_at:
            await self._hold_lease()
            self._lease_at = time.time() + (
                self.lease.renew_in() if self.lease.held else self.settings.cron_lease_seconds / 6
            )
        if self.leading:
            await self._fire_due()
        if now >= self._announce_at:
            self._announce_at = now + ANNOUNCE_EVERY
            await self.announce()
        if now >= self._flush_at:
            self._flush_at = now + FLUSH_EVERY
            await self.flush_counts()

    async def flush_counts(self) -> None:
        """Add the counts to `keys.stats`; kept for the next try while Redis is away."""
        try:
            await self.counts.flush(self.redis, self.keys.stats)
        except (redis.RedisError, OSError) as exc:
            log.debug("beat %s: counts not flushed: %s", self.id, exc)

    async def announce(self) -> None:
        """This beat's presence entry: leading or standing by, and for how many jobs."""
        facts = {"leading": self.leading, "jobs": len(self.jobs), "server": self.server_id}
        await self.announcer.beat(facts)

    def _sleep_time(self) -> float:
        wake = min(self._refresh_at, self._lease_at, self._announce_at)
        if self.leading and self._heap:
            wake = min(wake, self._heap[0][0] - self._lead)
        return max(wake - time.time(), 0.0)

    # -- leadership ------------------------------------------------------------------------
    async def _hold_lease(self) -> None:
        """Take or renew the lease; a Redis blip shorter than it keeps us leading (`Lease`)."""
        held = await self.lease.hold()
        if held and not self.leading:
            await self._take_over()
        elif not held and self.leading:
            error = self.lease.error
            why = f"it lapsed: {error}" if error else f"{self.lease.holder} holds it"
            log.warning("beat %s lost the lease (%s)", self.id, why)
            self._stand_down()
        elif held and self.lease.error is not None:
            log.warning(
                "beat %s cannot renew the lease, still leading: %s", self.id, self.lease.error
            )

    async def _take_over(self) -> None:
        """Start leading from each job's watermark: nothing decided is fired again. A Redis
        failover can roll the watermarks back (asynchronous replication): a beat leading
        again also starts after what it fired itself while it led before."""
        ids = list(self.jobs)
        remembered, self._last = self._last, {}
        for start in range(0, len(ids), 5000):
            part = ids[start : start + 5000]
            for job_id, value in zip(
                part, await self.redis.hmget(self.keys.cron_fired, part), strict=True
            ):
                if value is not None:
                    self._last[job_id] = int(value)
        for job_id, fired in remembered.items():
            if job_id in self.jobs and fired > self._last.get(job_id, fired - 1):
                self._last[job_id] = fired
        self._next = {}
        for job_id, job in self.jobs.items():
            after = self._last.get(job_id, int(job.created_at))
            tick = job.clock.next_after(after)
            if tick is not None:
                self._next[job_id] = tick
        self._heap = [(tick, job_id) for job_id, tick in self._next.items()]
        heapq.heapify(self._heap)
        self.leading = True
        self._announce_at = 0.0  # say so now
        log.info("beat %s is the leader (%d jobs)", self.id, len(self.jobs))

    def _stand_down(self) -> None:
        if self.leading:
            self._announce_at = 0.0  # say so now
        self.leading = False
        self._heap, self._next = [], {}

    async def resign(self) -> None:
        """Give the lease up at once, so a standby need not wait for it to expire."""
        if self.leading or self.lease.held:  # held, not leading: standing down after a blip
            self._stand_down()
            await self.lease.release()

    # -- jobs ------------------------------------------------------------------------------
    async def refresh(self, *, force: bool = False) -> bool:
        """Reload what changed (jobs, scripts, dynamic expressions); True if anything did."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.cron_revision)
        pipe.get(self.keys.scripts_revision)
        pipe.get(self.keys.cron_dynamic_revision)
        revisions = tuple(await pipe.execute())
        old = self._revisions
        if revisions == old and not force:
            return False
        if old is None or force or revisions[0] != old[0]:
            rows = await asyncio.to_thread(read_jobs, self.db)
            self._specs = [spec_of(r) for r in rows if r.enabled]
            self._created = {r.id: r.created_at for r in rows}
        if old is None or force or revisions[1] != old[1]:
            self._active = await read_active_async(self.redis, self.keys)
        if old is None or force or revisions[2] != old[2]:
            raw = as_hash(await self.redis.hgetall(self.keys.cron_dynamic))
            self._dynamic = {
                k.decode(): d for k, v in raw.items() if (d := decode_dynamic(v)) is not None
            }
        self._revisions = revisions
        self._rebuild()
        return True

    def _rebuild(self) -> None:
        now = time.time()
        jobs: dict[str, BeatJob] = {}
        broken: dict[str, str] = {}
        for spec in self._specs:
            if spec.expires_at is not None and spec.expires_at <= now:
                continue
            try:
                job = self._prepare(spec, now)
            except (CallError, CronExpressionError, ValueError) as exc:
                if self.broken.get(spec.id) != str(exc):
                    log.warning("cron job %s cannot be scheduled: %s", spec.id, exc)
                broken[spec.id] = str(exc)
                continue
            jobs[spec.id] = job
        old, self.jobs, self.broken = self.jobs, jobs, broken
        if not self.leading:
            return
        for job_id in list(self._next):
            if job_id not in jobs:
                del self._next[job_id]
                self._last.pop(job_id, None)
        for job_id, job in jobs.items():
            before = old.get(job_id)
            if before is not None and before.timing == job.timing and job_id in self._next:
                continue
            after = max(self._last.get(job_id, 0), int(now) - 1, int(job.created_at))
            tick = job.clock.next_after(after)
            if tick is None:
                self._next.pop(job_id, None)
            else:
                self._next[job_id] = tick
        self._heap = [(tick, job_id) for job_id, tick in self._next.items()]
        heapq.heapify(self._heap)

    def _prepare(self, spec: CronJobSpec, now: float) -> BeatJob:
        old = self.jobs.get(spec.id)
        info = self._active.function(spec.function)
        # by the function's script: `spec.function` may be an alias (`set__script.func`)
        script = self._active.scripts.get(info.script) if info is not None else None
        dynamic = self._dynamic.get(spec.id)
        clock = clock_for(spec, info, dynamic, self.settings.cron_timezone, now)
        if (
            old is not None
            and old.spec == spec
            and script is not None
            and old.script_hash == script.hash
        ):
            return dataclasses.replace(old, clock=clock)
        limit = spec.record_limit
        if limit is None and info is not None:
            limit = info.options.record_limit
        template = make_task(
            self.settings,
            self._active,
            spec.function,
            spec.kwargs,
            origin=Origin.CRON,
            origin_id=spec.id,
            queue=spec.queue or None,
            record_limit=limit if limit is not None else self.settings.cron_record_limit,
            traced=False,  # each tick's copies are (`_tasks`)
        )
        assert info is not None and script is not None  # make_task resolved it
        delays = sorted({float(d) for d in info.options.delayed_crontab} or {0.0})
        span = (template.expires_at or template.trigger_time) - template.trigger_time
        runs = 1 + template.retries
        ttl = span + delays[-1] + runs * template.timeout + template.retries * 60 + 60
        return BeatJob(
            spec=spec,
            info=info,
            clock=clock,
            template=template,
            span=span,
            delays=delays,
            marker=self.keys.running_marker(f"cron:{spec.id}") if spec.overlap == "skip" else "",
            marker_ttl=int(ttl),
            created_at=self._created.get(spec.id, now),
            script_hash=script.hash,
        )

    # -- firing ----------------------------------------------------------------------------
    async def _fire_due(self) -> None:
        """Fire the earliest due tick (one per call, so the lease is renewed between ticks)."""
        if self.leading and self._heap and self._heap[0][0] <= time.time() + self._lead:
            tick = self._heap[0][0]
            due: list[str] = []
            while self._heap and self._heap[0][0] == tick:
                _, job_id = heapq.heappop(self._heap)
                if self._next.get(job_id) == tick:
                    due.append(job_id)
            if due:
                await self._fire_tick(tick, due)

    async def _fire_tick(self, tick: int, due: list[str]) -> None:
        now = time.time()
        grace = self.settings.cron_misfire_grace_seconds
        batch: list[tuple[str, int, list[Task], list[Any]]] = []
        for job_id in due:
            job = self.jobs[job_id]
            fire_at: int | None = tick
            resume_after = tick
            if now - tick > grace:  # missed: the beat was down or stalled
                cutoff = int(now - grace)
                fire_at = None
                if job.spec.misfire == "run_once":
                    fire_at = job.clock.last_missed(cutoff, tick - 1) or tick
                self.stats.missed += 1
                self.counts.add(f"cron|{job_id}|skipped_missed")
                resume_after = max(fire_at or tick, cutoff)
            if fire_at is not None:
                tasks = self._tasks(job, fire_at)
                batch.append((job_id, fire_at, tasks, self._segment(job, fire_at, tasks)))
            following = job.clock.next_after(resume_after)
            if following is None:
                del self._next[job_id]
            else:
                self._next[job_id] = following
                heapq.heappush(self._heap, (following, job_id))
        built = time.time()
        self._lead = min(max(LEAD, (built - now) * 1.5 + 0.05), MAX_LEAD)
        if not batch:
            return
        wait = tick - built
        if wait > 0:
            await asyncio.sleep(wait)
        sent_at = time.time()
        results = await self._send([segment for *_, segment in batch])
        self.stats.batches += 1
        self.stats.late.append(sent_at - tick)
        del self.stats.late[:-10_000]
        if results is None:
            log.warning("beat %s is no longer the leader; tick %s left to the next", self.id, tick)
            self._stand_down()
            return
        skipped = []
        for (job_id, fired_tick, tasks, _), code in zip(batch, results, strict=True):
            if code != ALREADY:
                self._last[job_id] = fired_tick
            if code == FIRED:
                self.stats.fired += 1
                self.counts.add(f"cron|{job_id}|fired")
                self.counts.observe("cd", job_id, sent_at - fired_tick)
            elif code == SKIPPED:
                self.stats.skipped += 1
                self.counts.add(f"cron|{job_id}|skipped_overlap")
                skipped.append(tasks[0])
            elif code == PAUSED:
                self.stats.paused += 1
                self.counts.add(f"cron|{job_id}|skipped_paused")
            else:
                self.stats.already += 1
        if skipped:
            await self._record_skipped(skipped)

    def _tasks(self, job: BeatJob, tick: int) -> list[Task]:
        expr = job.clock.expression_at(tick)
        tasks = []
        for delay in job.delays:
            at = tick + delay
            meta: dict[str, Any] = {
                "cron": {"job": job.spec.id, "tick": tick, "expr": expr, "delay": delay}
            }
            tasks.append(
                msgspec.structs.replace(
                    job.template,
                    id=new_task_id(),
                    trigger_time=at,
                    expires_at=at + job.span,
                    meta=meta,
                )
            )
        if job.marker:
            tasks[-1].meta["running_marker"] = job.marker
        if tracing.hooks is not None:
            tracing.hooks.cron_tick(job.spec.id, tick, tasks)
        return tasks

    def _segment(self, job: BeatJob, tick: int, tasks: list[Task]) -> list[Any]:
        return job_segment(
            self.keys,
            job.spec.id,
            tick,
            job.marker,
            job.marker_ttl,
            [(t, t.trigger_time if d else None) for t, d in zip(tasks, job.delays, strict=True)],
        )

    async def _send(self, segments: list[list[Any]]) -> list[int] | None:
        """Run the fire script over the segments in chunks; None if we are not the leader."""
        keys = fire_keys(self.keys)
        head = fire_head(self.keys, self.id)
        for attempt in (1, 2):
            if self._fire_sha is None:
                self._fire_sha = await self.redis.script_load(FIRE_LUA)
            pipe = self.redis.pipeline(transaction=False)
            for start in range(0, len(segments), CHUNK):
                batch = pack(segments[start : start + CHUNK])
                pipe.evalsha(self._fire_sha, len(keys), *keys, *head, batch)
            try:
                replies = await pipe.execute()
            except NoScriptError:  # Redis restarted: load and send again (the script is
                self._fire_sha = None  # idempotent, so a repeat decides nothing twice)
                if attempt == 2:
                    raise
                continue
            codes: list[int] = []
            for reply in replies:
                if reply == NOT_LEADER:
                    return None
                codes += [int(c) for c in reply]
            return codes
        return None

    async def _record_skipped(self, tasks: list[Task]) -> None:
        """Record `skipped` ticks (best effort: a record, not a run, is at stake)."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for task in tasks:
            meta = {k: v for k, v in task.meta.items() if k != "running_marker"}
            plain = msgspec.structs.replace(task, meta=meta)
            result = result_for(
                plain,
                Status.SKIPPED,
                start_time=now,
                end_time=now,
                error_type="OverlapSkipped",
                error_message="the previous run of this cron job was still running",
            )
            add_result(pipe, self.keys, plain, result)
        await pipe.execute()
