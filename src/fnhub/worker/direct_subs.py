"""The direct-path subscriptions a worker runs, and their children (`path: direct`).

A thread reads the subscriptions from the database when `<prefix>:subs:rev` moves (polled
twice a second) and every 10 s: this worker runs each enabled direct subscription whose
function's queue it serves, with `processes` children sharing its window. `multiple` mode:
every such worker does. `single` mode: only the holder of the subscription's lease, the
key a server's runner would hold (`keys.subscription_lease`, 3 s, renewed every 0.5 s by the
supervising loop; lost by our own clock after 2.7 s without a renewal). A changed definition
or connector starts new children and stops the old ones after their batch.

The supervisor treats direct children as it treats queue children (deadline, memory, death:
`Supervisor._verdict`); what differs is what it gives back. The running message's fate is
noted (`worker.direct.record_fate`) and the replacement child is told the dead consumer's
name, claiming its messages at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING, Any

import msgspec
import redis

from fnhub import lease, spawning
from fnhub.holders import Watch
from fnhub.keys import Keys
from fnhub.redis_replies import as_optional_bytes
from fnhub.scripts.registry import read_active
from fnhub.worker.child import Slot

if TYPE_CHECKING:
    from fnhub.subscriptions.direct import DirectJob
    from fnhub.worker.supervisor import Child, Supervisor

log = logging.getLogger(__name__)

_ctx = spawning.FORK
POLL_SECONDS = 0.5
FULL_RELOAD_SECONDS = 10.0
LEASE_SECONDS = 3.0  # as a server's runner holds it
LEASE_MARGIN_SECONDS = 0.3

#: a child's end as the supervisor judged it: (outcome, detail), see `Supervisor._verdict`
Verdict = Callable[["Child"], tuple[str, str] | None]


@dataclass
class _Group:
    """One subscription's children on this worker."""

    name: str
    job: DirectJob
    fingerprint: str
    stop: Event
    children: list[Child] = field(default_factory=list)
    function: str = ""  # what its tasks run: the function, or the rule's kind ("(sql)")


class DirectSubscriptions:
    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor
        self.keys: Keys = supervisor.keys
        self.running: dict[str, _Group] = {}
        self.retiring: list[_Group] = []  # stopped: their children finish their batch
        self._wanted: dict[str, tuple[DirectJob, str]] | None = None  # None: not read yet
        self._lease_until: dict[str, float] = {}
        self._watches: dict[str, Watch] = {}  # subscription → its holder's process, judged
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- what to run ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._load_forever, name="fnhub-direct", daemon=True)
        self._thread.start()

    def _load_forever(self) -> None:
        """Re-read the definitions when their revision moved, and every 10 s anyway."""
        from fnhub.store.db import Database

        db = Database(self.sup.settings.resolved_db_url())
        revision: bytes | None = None
        loaded_at = -FULL_RELOAD_SECONDS
        try:
            while not self._stopped.wait(0 if self._wanted is None else POLL_SECONDS):
                try:
                    now_revision = as_optional_bytes(
                        self.sup.redis.get(self.keys.subscriptions_revision)
                    )
                    stale = time.monotonic() - loaded_at > FULL_RELOAD_SECONDS
                    if now_revision == revision and not stale and self._wanted is not None:
                        continue
                    self._wanted = self._load(db)
                    revision, loaded_at = now_revision, time.monotonic()
                except Exception:  # the database or Redis away: try again shortly
                    log.exception("cannot read the direct-path subscriptions")
                    self._stopped.wait(2.0)
        finally:
            db.dispose()

    def _load(self, db: object) -> dict[str, tuple[DirectJob, str]]:
        from fnhub.store.db import Database
        from fnhub.subscriptions.stored import load_specs

        assert isinstance(db, Database)
        specs = load_specs(db)
        direct = [s for s in specs if s.enabled and s.path == "direct"]
        if not direct:
            return {}
        # the connectors, their modules and the secrets' cipher: only where one is read directly
        from fnhub.connections import load_connectors
        from fnhub.connectors import get_type
        from fnhub.subscriptions.direct import DirectJob

        connectors = load_connectors(db, self.sup.settings)
        active = read_active(self.sup.redis, self.keys)
        wanted: dict[str, tuple[DirectJob, str]] = {}
        for spec in direct:
            if spec.function is None:
                continue
            connector = connectors.get(spec.connector)
            if connector is None:
                log.error("subscription %s: no connector named %r", spec.name, spec.connector)
                continue
            info = active.function(spec.function)
            queue = spec.queue or (info.options.queue if info is not None else None) or "sub"
            if queue not in self.sup.queues:
                continue
            outputs = {
                name: connectors[name]
                for name in (
                    spec.output_target(t)[0]
                    for t in (spec.publish, spec.error_publish)
                    if t is not None
                )
                if name in connectors
            }
            children = self.sup.processes
            if spec.mode == "single" and get_type(connector.type).direct_one_child:
                children = 1
            job = DirectJob(msgspec.json.encode(spec), connector, outputs, children)
            digest = hashlib.sha256(
                msgspec.json.encode([job.spec_json, connector, sorted(outputs.items())])
            ).hexdigest()
            wanted[spec.name] = (job, digest)
        return wanted

    # -- the supervising loop's part ------------------------------------------------------
    def tick(self) -> None:
        """Start and stop subscriptions' children as definitions and leases say."""
        wanted = self._wanted
        if wanted is None or self.sup.stopping:
            return
        for name, group in list(self.running.items()):
            if name not in wanted or wanted[name][1] != group.fingerprint:
                self._retire(name, "its definition changed or it was removed")
        for name, (job, digest) in wanted.items():
            if job.spec.mode == "single" and not self._hold(name):
                if name in self.running:
                    self._retire(name, "the lease is held elsewhere or lapsed")
                continue
            if name not in self.running:
                self._start(name, job, digest)

    def _hold(self, name: str) -> bool:
        """Take or renew the subscription's lease; held until it lapses by our clock."""
        key = self.keys.subscription_lease(name)
        watch = self._watches.setdefault(name, Watch(self.sup.worker_id))
        sent = time.monotonic()
        try:
            answer = self._eval_hold(key, watch)
            if isinstance(answer, list):  # another holder: judged gone (`fnhub.holders`)?
                holder, stale = lease.other_holder(answer, LEASE_SECONDS)
                if watch.wants_list({holder}, stale) and watch.judge_sync(
                    self.sup.redis, {holder}, stale
                ):
                    sent = time.monotonic()
                    answer = self._eval_hold(key, watch)
        except (redis.RedisError, OSError) as exc:
            log.warning("subscription %s: lease renewal failed: %s", name, exc)
            return self._lease_until.get(name, 0.0) > time.monotonic()
        if answer in (1, 2, lease.TAKEN_FROM_GONE):
            self._lease_until[name] = sent + LEASE_SECONDS - LEASE_MARGIN_SECONDS
            return True
        self._lease_until.pop(name, None)
        return False

    def _eval_hold(self, key: str, watch: Watch) -> Any:
        args = lease.hold_args(self.sup.worker_id, LEASE_SECONDS, watch)
        return self.sup.redis.eval(lease.HOLD, 1, key, *args)

    def _start(self, name: str, job: DirectJob, digest: str) -> None:
        spec = job.spec
        group = _Group(name, job, digest, _ctx.Event(), function=spec.function or f"({spec.kind})")
        group.children = [self._spawn(group, k, []) for k in range(job.children)]
        self.running[name] = group
        log.info("subscription %s: %d direct children (%s mode)", name, job.children, job.spec.mode)

    def _spawn(
        self, group: _Group, index: int, inherit: list[str], slot: Slot | None = None
    ) -> Child:
        from fnhub.worker.direct import direct_main  # the connectors: only where one runs
        from fnhub.worker.supervisor import Child

        slot = slot or Slot.create()
        slot.clear()
        process = self.sup.start_child(
            lambda parent: _ctx.Process(
                target=direct_main,
                args=(
                    self.sup.worker_id,
                    index,
                    self.sup.settings.model_dump_json(),
                    group.job,
                    slot,
                    self.sup.stop_event,
                    group.stop,
                    parent,  # the child stops if it is ever orphaned
                    inherit,
                ),
                name=f"fnhub-direct-{group.name}-{index}",
                daemon=False,
            )
        )
        return Child(self.sup.worker_id, index, slot, process, spawned_at=time.time())

    def _retire(self, name: str, why: str) -> None:
        group = self.running.pop(name)
        group.stop.set()
        self.retiring.append(group)
        log.info("subscription %s: stopping its direct children (%s)", name, why)
        if self._lease_until.pop(name, None) is not None:
            try:
                self.sup.redis.eval(
                    lease.RELEASE, 1, self.keys.subscription_lease(name), self.sup.worker_id
                )
            except (redis.RedisError, OSError):
                pass  # it lapses

    def check(self, verdict: Verdict) -> None:
        """Judge every direct child; give back what a dead one held and replace it (unless
        its subscription is stopping here)."""
        for group in [*self.running.values(), *self.retiring]:
            staying = self.running.get(group.name) is group and not self.sup.stopping
            for i, child in enumerate(group.children):
                judged = verdict(child)
                if judged is None:
                    continue
                dead = self._release(group, child, *judged)
                if staying:
                    group.children[i] = self._spawn(group, child.index, [dead], child.slot)
            if not staying:
                group.children = [c for c in group.children if c.process.is_alive()]
        self.retiring = [g for g in self.retiring if g.children]

    def _release(self, group: _Group, child: Child, outcome: str, detail: str) -> str:
        """Note the fate of the message the child ran; returns its consumer name."""
        from fnhub.worker.direct import direct_consumer_name, record_fate

        pid = child.process.pid
        assert pid is not None
        running = child.slot.running()
        child.slot.clear()
        if running is not None and outcome in ("crash", "timeout", "memory"):
            try:
                record_fate(
                    self.sup.redis,
                    self.keys,
                    group.name,
                    running.stream,
                    running.entry_id,
                    outcome,
                    detail,
                )
            except (redis.RedisError, OSError) as exc:
                log.error("subscription %s: cannot note a message's fate: %s", group.name, exc)
            log.warning(
                "subscription %s: message %s of %s ended its child (%s)",
                group.name,
                running.entry_id,
                running.stream,
                outcome,
            )
        self.sup.replaced += 1
        return direct_consumer_name(child.worker_id, child.index, pid)

    def children(self) -> list[Child]:
        return [c for g in [*self.running.values(), *self.retiring] for c in g.children]

    def named_children(self) -> list[tuple[str, str, Child]]:
        """(subscription, what it runs, child) of every direct child."""
        groups = [*self.running.values(), *self.retiring]
        return [(g.name, g.function, c) for g in groups for c in g.children]

    def stop(self) -> None:
        """The worker stops: no more loading; children stop through the supervisor's event."""
        self._stopped.set()
        for name in list(self.running):
            self._retire(name, "the worker stops")
