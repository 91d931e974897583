"""The worker supervisor: keeps N children alive, enforces deadlines, and does the queue's chores.

- A child past its task's deadline is killed (SIGKILL holds even for code stuck in C) with
  every process its tasks started (each child leads a session: `worker.processes`) and
  replaced; its task ends as `timeout`.
- A child holding more than `child_memory_limit_mb` (resident, with the processes it started)
  is killed the same way; its running task fails with `MemoryLimitExceeded`.
- A child that dies (os._exit, segfault, OOM kill) is replaced; the task it was running is
  retried with attempt + 1, the ones it had prefetched go back as they were.
- Heartbeats announce the worker and its queues (a description once a beat, its key renewed
  four times a beat); delayed tasks are moved when due; the pending entries of consumers whose
  worker is dead are released: its heartbeat key lapsed (a whole machine died, or was cut off),
  or it missed two renewals and Redis lists no connection of it any more (its process died:
  `holders.Unconnected`).
- Task records are written to the database in batches by a recorder thread, started (with the
  direct subscriptions' reader) once the children read their queues: a restarted worker's
  CPU goes to its children first.
- An unexpected error restarts the supervising loop or the recorder after a backoff (counted in
  `keys.loop_restarts`, see `fnhub.supervised`) instead of ending the worker.
- SIGTERM: children stop taking tasks, running ones get `shutdown_grace_seconds` to finish, the
  rest are released to other workers.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import redis

from fnhub import lease, spawning, tracing
from fnhub.config import Settings
from fnhub.heap import freeze_startup_objects
from fnhub.holders import QUIET_SECONDS, Unconnected
from fnhub.keys import WORKER_GROUP, Keys
from fnhub.outage_log import OutageLog
from fnhub.presence import process_facts, prune
from fnhub.queue import ensure_groups, move_due, release_consumer
from fnhub.redis_client import sync_redis
from fnhub.supervised import run_restarting, start_thread, thread_counter
from fnhub.waiting import wait_for_redis
from fnhub.worker.child import Slot, child_main, consumer_name
from fnhub.worker.direct_subs import DirectSubscriptions
from fnhub.worker.presence import (
    CONNECTION_KIND,
    connection_name,
    heartbeat_ttl_ms,
    renew_seconds,
    split_consumer,
    stale_after_ms,
    supervisor_consumer,
)
from fnhub.worker.processes import kill_session, kill_tree, resident_bytes

if TYPE_CHECKING:
    from fnhub.records import Recorder

log = logging.getLogger(__name__)

_ctx = spawning.FORK
#: what the fork server imports once for every child (`fnhub.spawning`)
TEMPLATE = "fnhub.worker.template"
#: the supervising loop enforces deadlines: after an error it is back within seconds
SUPERVISOR_MAX_DELAY_SECONDS = 2.0
#: the most running tasks a heartbeat names (the longest-running; `busy` counts them all)
RUNNING_LISTED = 10
#: a worker whose key has not lapsed is dead once it missed two renewals of its key
#: (`presence.stale_after_ms`) and Redis listed no connection of it on two checks one of our
#: renewals apart, provided our own connections are QUIET_BEATS old, and at least
#: `holders.QUIET_SECONDS` (`holders.Unconnected`): the workers reconnecting to a restarted or
#: new primary take no less time when beats are short. A live worker's supervisor talks to
#: Redis every 0.1 s (due delayed tasks), so one whose connections were cut has a new one long
#: before the second check; what the two checks rule out is a reconnection in flight, not
#: slowness, which keeps them open. The workers holding pending entries (from XINFO CONSUMERS
#: each half beat) are looked at (PTTL) at each of our renewals
QUIET_BEATS = 3.0
#: the recorder and the direct subscriptions' reader (SQLAlchemy and the database: ~0.3 s of
#: CPU) start once every child reads its queues, or at the latest this long after they were
#: spawned: on a busy machine, a restarted worker's CPU goes to the children it waits for first
SET_UP_AFTER_CHILDREN_SECONDS = 2.0


@dataclass
class Child:
    worker_id: str
    index: int
    slot: Slot
    process: BaseProcess
    spawned_at: float = 0.0  # epoch seconds, like the slot's task start

    def ran_a_task(self) -> bool:
        return self.slot.started > self.spawned_at

    def consumer_for(self, pid: int) -> str:
        return consumer_name(self.worker_id, self.index, pid)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        queues: list[str] | None = None,
        processes: int | None = None,
        *,
        record: bool = True,
    ) -> None:
        self.settings = settings
        self.queues = queues or list(settings.queues)
        self.processes = processes or settings.processes
        self.keys = Keys(settings.key_prefix)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.redis = sync_redis(settings)
        self.restarts = thread_counter(settings)
        self.stop_event = _ctx.Event()
        self.children: list[Child] = []
        self.stopping = False
        self.record = record
        self._recorder_thread: threading.Thread | None = None
        self._made_recorder: Recorder | None = None
        self._recorder_stop = threading.Event()
        self._chores_at: dict[str, float] = {}
        self._chores_outage = OutageLog(log, "worker chores cannot reach Redis")
        every = settings.heartbeat_seconds  # stale workers without connections: dead
        self._renew = renew_seconds(every)
        quiet = max(QUIET_BEATS * every, QUIET_SECONDS)
        self._unconnected = Unconnected(CONNECTION_KIND, self.worker_id, self._renew, quiet=quiet)
        # of other workers, from the last XINFO CONSUMERS pass: their consumers (queue, name,
        # worker id), and for those holding pending entries, how stale their key may get (ms)
        self._held: list[tuple[str, str, str]] = []
        self._holders: dict[str, tuple[int, float | None]] = {}  # id → (ttl_ms, stale ms)
        self._named = False  # our connections carry our name
        self.replaced = 0
        self.memory_limit = settings.child_memory_limit_mb << 20  # bytes; 0: no limit
        self.direct = DirectSubscriptions(self)
        self._fork_server = 0  # the fork server's pid once it forked a child
        self._set_up = False  # the recorder and direct subscriptions started
        self._set_up_by = 0.0  # (monotonic) when they start even if a child is still starting
        tracing.check(settings)  # the children configure it

    # -- children -------------------------------------------------------------------------
    def _spawn(self, index: int, slot: Slot | None = None) -> Child:
        slot = slot or Slot.create()
        slot.for_new_child()
        process = self.start_child(
            lambda parent: _ctx.Process(
                target=child_main,
                args=(
                    self.worker_id,
                    index,
                    self.settings.model_dump_json(),
                    self.queues,
                    slot,
                    self.stop_event,
                    parent,  # the child stops if it is ever orphaned, even while starting
                ),
                name=f"fnhub-worker-{index}",
                daemon=False,
            )
        )
        return Child(self.worker_id, index, slot, process, spawned_at=time.time())

    def start_child(self, make: Callable[[int], BaseProcess]) -> BaseProcess:
        """Start the process `make(parent)` makes, forked by the fork server `parent`. A fork
        server that just started forks once it imported the children's runtime, seconds on a
        loaded machine (longer than our heartbeat key lives): we beat from a thread meanwhile."""
        parent = spawning.fork_server(TEMPLATE)
        process = make(parent)
        if parent == self._fork_server:
            spawning.start(process)
            return process
        done = threading.Event()
        beating = threading.Thread(target=self._beat_until, args=(done,), name="beat-at-fork")
        beating.start()
        try:
            spawning.start(process)
        finally:
            done.set()
            beating.join()
        self._fork_server = parent
        return process

    def _beat_until(self, done: threading.Event) -> None:
        while not done.wait(self._renew):
            try:
                self._beat()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._chores_outage.failed(exc)

    def _release(self, child: Child, pid: int, outcome: str, detail: str = "") -> None:
        """Give back what a dead child held; `outcome` (and `detail`, what went wrong) decides
        the running task's fate."""
        running = child.slot.running()
        child.slot.clear()
        consumer = child.consumer_for(pid)
        for queue in self.queues:
            stream = self.keys.queue(queue)
            here = running if running is not None and running.stream == stream else None
            for final in release_consumer(
                self.redis,
                self.keys,
                stream,
                consumer,
                running_entry=here.entry_id if here else "",
                running_index=here.task_index if here else 0,
                running_outcome=outcome,
                running_detail=detail,
                claimer=supervisor_consumer(self.worker_id),
            ):
                log.warning("task %s of %s ended as %s", final.id, final.function, final.status)

    def _check_children(self) -> None:
        for i, child in enumerate(self.children):
            verdict = self._verdict(child)
            if verdict is not None:
                self._replace(i, *verdict)
        self.direct.check(self._verdict)

    def _verdict(self, child: Child) -> tuple[str, str] | None:
        """None while the child may go on; else how it ended (killed here if it had to be):
        "crash" (it died), "timeout", "memory" (its running task is to blame) or "release"
        (over the memory limit between tasks), and what went wrong."""
        process = child.process
        pid = process.pid
        assert pid is not None
        deadline = child.slot.deadline
        if not process.is_alive():
            process.join()
            kill_session(pid)  # what its tasks started dies with it
            if process.exitcode != 0 or not self.stopping:
                log.warning("worker child %s exited with code %s", pid, process.exitcode)
            return "crash", ""
        if deadline and time.time() > deadline:
            log.warning("worker child %s passed its task deadline: killing it", pid)
            self._kill(process)
            return "timeout", ""
        # (between tasks only once it ran one: a child that starts over the limit would
        # be replaced over and over)
        if (deadline or child.ran_a_task()) and (used := self._used_over_limit(pid)):
            return self._over_memory(child, used)
        return None

    def _used_over_limit(self, pid: int) -> int:
        """Resident bytes of a child and its descendants when over the limit, else 0."""
        if not self.memory_limit:
            return 0
        used = resident_bytes(pid)
        return used if used > self.memory_limit else 0

    def _over_memory(self, child: Child, used: int) -> tuple[str, str]:
        """Kill a child (and what its task started) holding more than the memory limit; the
        running task fails, and between tasks (what a task left behind) the child is replaced,
        so the next task is not blamed for it."""
        process = child.process
        running = child.slot.deadline > 0
        limit_mb = self.settings.child_memory_limit_mb
        log.warning(
            "worker child %s holds %d MB, over the memory limit of %d MB: killing it%s",
            process.pid,
            used >> 20,
            limit_mb,
            "" if running else " (between tasks)",
        )
        self._kill(process)
        detail = (
            f"used {used >> 20} MB, over the memory limit of {limit_mb} MB "
            "(child_memory_limit_mb); its worker process was killed"
        )
        return ("memory" if running else "release"), detail

    @staticmethod
    def _kill(process: BaseProcess) -> None:
        """SIGKILL a child with every process its tasks started (it leads their session)."""
        assert process.pid is not None
        kill_tree(process.pid)
        process.join()

    def _replace(self, i: int, outcome: str, detail: str = "") -> None:
        child = self.children[i]
        assert child.process.pid is not None
        self._release(child, child.process.pid, outcome, detail)
        self.replaced += 1
        if not self.stopping:
            self.children[i] = self._spawn(child.index, child.slot)

    # -- chores ---------------------------------------------------------------------------
    def _due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._chores_at.get(name, 0.0) >= every:
            self._chores_at[name] = now
            return True
        return False

    def _beat(self) -> None:
        """Renew the heartbeat key (a renewal is due); once a beat with the description."""
        if self._due("heartbeat", self.settings.heartbeat_seconds):
            self._heartbeat()
        else:
            ttl_ms = heartbeat_ttl_ms(self.settings.heartbeat_seconds)
            self.redis.set(self.keys.worker_alive(self.worker_id), "1", px=ttl_ms)

    def _heartbeat(self) -> None:
        ttl_ms = heartbeat_ttl_ms(self.settings.heartbeat_seconds)
        info = {
            **process_facts(self._started),  # host, pid, version (`fnhub.presence`)
            "queues": self.queues,
            "processes": self.processes,
            "beat": time.time(),
            "every": self.settings.heartbeat_seconds,
            "renew": self._renew,  # how often its key is renewed (`presence.stale_after_ms`)
            "ttl_ms": ttl_ms,  # how old its last renewal is: this less its key's PTTL
            "named": self._named,  # its connections carry its name (`_name_connections`)
            "replaced": self.replaced,
            **self._running(),
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.worker_alive(self.worker_id), "1", px=ttl_ms)
        pipe.hset(self.keys.workers, self.worker_id, json.dumps(info))
        pipe.execute()
        if self._due("prune", self.settings.presence_ttl_seconds):
            prune(self.redis, self.keys.workers, self.settings.presence_ttl_seconds)

    def _running(self) -> dict[str, Any]:
        """What the children run, read from their slots (no Redis command per task): `busy`,
        the children running a task (queue children and direct children alike), `direct`, how
        many direct children it has (besides its `processes`), and `running`, the tasks
        running past the watchdog's first look (`prefetch.CHECK_SECONDS`: a child names its
        task then), the longest-running first, at most `RUNNING_LISTED`."""
        busy = 0
        running: list[dict[str, Any]] = []
        queues = {self.keys.queue(q): q for q in self.queues}
        for child in self.children:
            slot = child.slot
            if slot.running_since() is None:
                continue
            busy += 1
            described = slot.described()
            where = slot.running()
            if described is None or where is None:
                continue
            started, task_id, function = described
            running.append(
                {"child": child.index, "pid": child.process.pid, "task": task_id,
                 "function": function, "queue": queues.get(where.stream), "since": started}
            )  # fmt: skip
        direct = self.direct.named_children()
        for subscription, function, child in direct:
            if child.slot.running_since() is None:
                continue
            busy += 1
            described = child.slot.described()
            if described is None:
                continue
            started, task_id, _ = described
            running.append(
                {"child": child.index, "pid": child.process.pid, "task": task_id,
                 "function": function, "subscription": subscription, "since": started}
            )  # fmt: skip
        running.sort(key=lambda r: r["since"])
        return {"busy": busy, "direct": len(direct), "running": running[:RUNNING_LISTED]}

    def _name_connections(self) -> None:
        """Name this supervisor's Redis connections after the worker (CLIENT SETNAME now, and
        at every connection the pool makes), so that others see at once when they are gone
        (`holders.Unconnected`). An ACL without CLIENT SETNAME leaves them unnamed: the worker is
        then found dead by its heartbeat key alone."""
        name = connection_name(self.worker_id)
        try:
            self.redis.client_setname(name)
        except redis.ResponseError as exc:
            log.info(
                "cannot name this worker's Redis connections (%s): dead workers are "
                "found by their heartbeat alone",
                exc,
            )
            return
        self.redis.connection_pool.connection_kwargs["client_name"] = name
        self._named = True

    def _reclaim_dead_workers(self) -> None:
        """Release pending entries of consumers whose worker is dead: its heartbeat key lapsed,
        or it is stale (two renewals missed: `presence.stale_after_ms`) and Redis lists no
        connection of it on two checks a renewal apart (`holders.Unconnected`: a CLIENT LIST
        only then, never while our own connections are younger than its quiet time, a
        restarted or new primary that every live worker is still reconnecting to). A slow
        worker keeps its connections open: only its key finds it dead. This pass (each half
        beat) reads every queue's consumers and the descriptions of the workers holding
        pending entries; `_check_holders` looks at those workers' keys again in between."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in self.queues:
            pipe.xinfo_consumers(self.keys.queue(queue), WORKER_GROUP)
        held: list[tuple[str, str, str]] = []  # (queue, consumer, worker id)
        holding: set[str] = set()  # workers with pending entries: worth a CLIENT LIST
        for queue, consumers in zip(self.queues, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(consumers, Exception):  # no such stream or group (yet)
                continue
            for consumer in consumers:
                name = consumer["name"]
                name = name.decode() if isinstance(name, bytes) else name
                worker_id = split_consumer(name)[0]
                if worker_id != self.worker_id:
                    held.append((queue, name, worker_id))
                    if consumer.get("pending"):
                        holding.add(worker_id)
        others = sorted({w for _q, _c, w in held})
        self._held = held
        if not others:
            self._holders = {}
            self._unconnected.judge_sync(self.redis, set())  # forget earlier sightings
            return
        holders = sorted(holding)
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in others:
            pipe.pttl(self.keys.worker_alive(worker_id))
        if holders:
            pipe.hmget(self.keys.workers, holders)
        replies = pipe.execute()
        infos = replies[len(others)] if holders else []
        self._holders = {w: self._staleness(raw) for w, raw in zip(holders, infos, strict=True)}
        self._judge(dict(zip(others, replies[: len(others)], strict=True)))

    def _check_holders(self) -> None:
        """Between two `_reclaim_dead_workers` passes, at each of our renewals: the keys' PTTLs
        of the workers that held pending entries at the last pass (no command if none did)."""
        holders = list(self._holders)
        if not holders:
            return
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in holders:
            pipe.pttl(self.keys.worker_alive(worker_id))
        self._judge(dict(zip(holders, pipe.execute(), strict=True)))

    def _judge(self, ttls: dict[str, int]) -> None:
        """Release the consumers of the workers these PTTLs of their keys (and for the stale
        ones, `holders.Unconnected`) find dead."""
        lapsed = {w for w, ttl in ttls.items() if ttl == -2}
        stale = self._stale_workers({w: t for w, t in ttls.items() if w not in lapsed})
        dead = lapsed | self._unconnected.judge_sync(self.redis, stale)
        if not dead:
            return
        for queue, name, worker_id in self._held:
            if worker_id not in dead:
                continue
            if not lease.take(self.redis, self.keys.reclaim_lock(queue, name), self.worker_id, 60):
                continue
            why = "its heartbeat lapsed" if worker_id in lapsed else "its connections closed"
            log.warning("releasing tasks of dead consumer %s (%s)", name, why)
            release_consumer(
                self.redis,
                self.keys,
                self.keys.queue(queue),
                name,
                running_entry=None,
                running_outcome="crash",
                claimer=supervisor_consumer(self.worker_id),
            )
        self._held = [h for h in self._held if h[2] not in dead]
        self._holders = {w: s for w, s in self._holders.items() if w not in dead}

    def _staleness(self, raw: bytes | None) -> tuple[int, float | None]:
        """A holder's key TTL and the age past which it is stale (ms), from its description:
        None for a worker that does not say it names its connections (an older version, or
        one whose ACL refused the name: it has none to find, its key decides)."""
        if not raw:
            return 0, None
        info = json.loads(raw)
        every = self.settings.heartbeat_seconds
        ttl_ms = int(info.get("ttl_ms") or heartbeat_ttl_ms(float(info.get("every") or every)))
        return ttl_ms, stale_after_ms(info, every) if info.get("named") else None

    def _stale_workers(self, ttls: dict[str, int]) -> set[str]:
        """Of these workers (id → their heartbeat key's PTTL), the holders whose key is older
        than their staleness allows (`_staleness`) though it has not lapsed yet."""
        stale = set()
        for worker_id, pttl in ttls.items():
            ttl_ms, stale_ms = self._holders.get(worker_id, (0, None))
            if stale_ms is not None and pttl >= 0 and ttl_ms - pttl >= stale_ms:
                stale.add(worker_id)
        return stale

    def _chores(self) -> None:
        """The chores that are due. An outage's end is logged only once one that talks to Redis
        succeeded: a round with none due (most rounds, 50 ms apart) proves nothing (taken for a
        success, it logged "recovered" between each two failures, ten times a second)."""
        talked = False
        try:
            if self._due("alive", self._renew):
                self._beat()
                talked = True
            if self._due("delayed", 0.1):
                move_due(self.redis, self.keys)
                talked = True
            if self._due("reclaim", self.settings.heartbeat_seconds / 2):
                self._reclaim_dead_workers()
                self._chores_at["holders"] = time.monotonic()
                talked = True
            elif self._due("holders", self._renew):
                self._check_holders()  # (no command when no other worker holds entries)
            if self._due("direct", 0.5):
                self.direct.tick()  # (its lease renewals handle their own errors)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._chores_outage.failed(exc)
            return
        if talked:
            self._chores_outage.ok()

    # -- lifecycle ------------------------------------------------------------------------
    def _start_recorder(self) -> None:
        if not self.record:
            return
        stop = self._recorder_stop
        self._recorder_thread = start_thread(
            "recorder",
            lambda: self._recorder().run(stop),
            stopped=stop.is_set,
            counter=self.restarts,
        )

    def _recorder(self) -> Recorder:
        """The recorder, made on its own thread the first time: importing SQLAlchemy there (a
        second of a busy machine's time, or more) keeps the supervising loop's heartbeats going."""
        if self._made_recorder is None:
            from fnhub.records import Recorder
            from fnhub.store.db import Database

            db = Database(self.settings.resolved_db_url())
            client = sync_redis(self.settings)
            self._made_recorder = Recorder(db, client, self.keys, self.settings, self.worker_id)
        return self._made_recorder

    def start(self) -> None:
        self._started = time.time()
        self._name_connections()
        ensure_groups(self.redis, self.keys, self.queues)
        self._heartbeat()
        self.children = [self._spawn(i) for i in range(self.processes)]
        self._set_up_by = time.monotonic() + SET_UP_AFTER_CHILDREN_SECONDS

    def _set_up_after_children(self) -> None:
        """Start the recorder and the direct subscriptions once the children read their queues
        (`SET_UP_AFTER_CHILDREN_SECONDS`): the supervising loop's, until it did."""
        if self._set_up or self.stopping:
            return
        reading = all(child.slot.reading for child in self.children)
        if not reading and time.monotonic() < self._set_up_by:
            return
        self._start_recorder()
        self.direct.start()
        self._set_up = True

    def request_stop(self, *_: object) -> None:
        self.stopping = True
        self.stop_event.set()

    def run(self) -> None:
        """Supervise until SIGTERM/SIGINT (or `request_stop`)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        # Redis may come up after us; the database is the recorder's, which waits for it alone
        if not wait_for_redis(self.settings, lambda: self.stopping):
            return
        self.start()
        threading.Thread(target=self._prepare_javascript, name="node-packages", daemon=True).start()
        freeze_startup_objects()
        log.info(
            "worker %s: %d processes on queues %s",
            self.worker_id,
            self.processes,
            ",".join(self.queues),
        )
        try:
            run_restarting(
                "worker-supervisor",
                self._supervise,
                stopped=lambda: self.stopping,
                counter=self.restarts,
                max_delay=SUPERVISOR_MAX_DELAY_SECONDS,
            )
        finally:
            self.shutdown()

    def _prepare_javascript(self) -> None:
        """Install the project's npm packages on this machine ahead of the first JavaScript
        task (which would otherwise wait for `npm ci`), and say at once when published
        JavaScript cannot run here; both are logged, never fatal."""
        from fnhub.node.locate import NodeNotFound, find_node
        from fnhub.node.packages import PackagesError, installed_modules
        from fnhub.scripts.languages import JAVASCRIPT
        from fnhub.scripts.registry import read_active

        try:
            active = read_active(self.redis, self.keys)
            scripts = sorted(n for n, s in active.scripts.items() if s.language == JAVASCRIPT)
            if not scripts:
                return
            find_node(self.settings.node_path)
            installed_modules(self.settings, self.redis, self.keys)
        except NodeNotFound as exc:
            log.warning(
                "JavaScript scripts are published (%s) but this worker cannot run them: %s",
                ", ".join(scripts),
                exc,
            )
        except (PackagesError, redis.RedisError) as exc:
            log.warning("cannot install the project's npm packages on this worker: %s", exc)

    def _supervise(self) -> None:
        while not self.stopping:
            self._check_children()
            self._chores()
            self._set_up_after_children()
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Let running tasks finish within the grace period, then release what is left."""
        self.stopping = True
        self.stop_event.set()
        self.direct.stop()
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        for child in [*self.children, *self.direct.children()]:
            child.process.join(max(deadline - time.monotonic(), 0))
        for child in self.direct.children():  # their messages: claimed by the next holder
            if child.process.is_alive():
                self._kill(child.process)
            if child.process.pid is not None:
                kill_session(child.process.pid)
        for child in self.children:
            process = child.process
            if process.is_alive():
                log.warning(
                    "worker child %s still busy after the grace period: killing", process.pid
                )
                self._kill(process)
            if process.pid is not None:
                kill_session(process.pid)  # a child that exited left these behind
                try:
                    self._release(child, process.pid, "release")
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    log.error("cannot release tasks of child %s: %s", process.pid, exc)
        self._recorder_stop.set()
        if self._recorder_thread is not None:
            self._recorder_thread.join(10)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self.keys.worker_alive(self.worker_id))
            pipe.hdel(self.keys.workers, self.worker_id)
            pipe.execute()
        except redis.RedisError:
            pass
