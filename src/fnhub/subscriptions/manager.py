"""Keeps this server's subscriptions in line with the database, without restarts.

Every change (API, CLI, `fnhub apply`) bumps `subscriptions_revision`; the manager polls it twice
a second, so a new subscription flows within a second or so, and re-reads everything every
`FULL_RELOAD_SECONDS` anyway. A subscription whose definition or connector changed is restarted;
one removed or disabled is stopped (its in-flight messages finish first). A runner that fails
unexpectedly is restarted (`fnhub.supervised`). Status snapshots are written to Redis every
second so any server can answer for all of them, and with them (same round trip) what each
runner counted since the last write is added to the cluster-wide `keys.stats`
(`sub|<name>|<counter>`, `fnhub.subscriptions.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from typing import Any

import orjson
import redis

from fnhub.calling.caller import Caller
from fnhub.connections import ConnectorConfig
from fnhub.redis_replies import as_optional_bytes
from fnhub.server.context import ServerContext
from fnhub.subscriptions.runner import Runner
from fnhub.subscriptions.spec import SubscriptionSpec
from fnhub.subscriptions.stats import SubscriptionStats
from fnhub.subscriptions.stored import load_stored
from fnhub.supervised import spawn

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
FULL_RELOAD_SECONDS = 10.0
STATUS_SECONDS = 1.0
STATUS_TTL_SECONDS = 30
STATUS_STALE_SECONDS = 5  # a view not refreshed for this long belongs to a dead server


def load_specs(ctx: ServerContext) -> tuple[list[SubscriptionSpec], dict[str, ConnectorConfig]]:
    return load_stored(ctx.db, ctx.settings)


class _Running:
    def __init__(self, runner: Runner, fingerprint: str) -> None:
        self.runner = runner
        self.fingerprint = fingerprint
        self.task = spawn("subscription", runner.run, label=runner.spec.name)


class SubscriptionManager:
    def __init__(self, ctx: ServerContext, caller: Caller) -> None:
        self.ctx = ctx
        self.caller = caller
        self.node = ctx.settings.node_name or socket.gethostname()
        self.running: dict[str, _Running] = {}
        self.revision: bytes | None = None
        self._loaded_at = 0.0
        # runner stats → their counters when last added to `keys.stats` (by identity: a
        # restarted runner counts from zero)
        self._counted: dict[str, tuple[SubscriptionStats, dict[str, int]]] = {}
        self._uncounted: dict[str, int] = {}  # `keys.stats` field → not yet added

    async def run(self) -> None:
        status_at = 0.0
        try:
            while True:
                try:
                    await self._maybe_reload()
                    if time.monotonic() - status_at >= STATUS_SECONDS:
                        status_at = time.monotonic()
                        await self._write_status()
                except (redis.RedisError, OSError) as exc:
                    log.warning("subscriptions cannot reach Redis: %s", exc)
                except Exception:
                    log.exception("subscription manager error")
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await self.stop_all()
            with contextlib.suppress(Exception):  # the stopped runners' last counts
                async with asyncio.timeout(1):
                    await self._write_status()

    def subscribed(self) -> list[str]:
        """The subscriptions this server reads now (a `single` one only while it holds the
        lease), for its presence entry."""
        return sorted(name for name, r in self.running.items() if r.runner.source is not None)

    async def _maybe_reload(self) -> None:
        revision = as_optional_bytes(await self.ctx.redis.get(self.ctx.keys.subscriptions_revision))
        stale = time.monotonic() - self._loaded_at > FULL_RELOAD_SECONDS
        if revision == self.revision and not stale:
            return
        specs, connectors = await asyncio.to_thread(load_specs, self.ctx)
        self.revision = revision
        self._loaded_at = time.monotonic()
        await self.apply(specs, connectors)

    async def apply(
        self, specs: list[SubscriptionSpec], connectors: dict[str, ConnectorConfig]
    ) -> None:
        wanted: dict[str, tuple[SubscriptionSpec, str]] = {}
        for spec in specs:
            if not spec.enabled or spec.path == "direct":  # direct: the workers consume it
                continue
            connector = connectors.get(spec.connector)
            if connector is None:
                log.error("subscription %s: no connector named %r", spec.name, spec.connector)
                continue
            outputs = [
                connectors.get(spec.output_target(t)[0])
                for t in (spec.publish, spec.error_publish)
                if t is not None
            ]
            used = [connector, *[o for o in outputs if o is not None]]
            fingerprint = (
                spec.fingerprint()
                + orjson.dumps(
                    [dataclasses.asdict(c) for c in used], option=orjson.OPT_SORT_KEYS
                ).hex()
            )
            wanted[spec.name] = (spec, fingerprint)
        for name in list(self.running):
            if name not in wanted or wanted[name][1] != self.running[name].fingerprint:
                await self._stop(name)
        for name, (spec, fingerprint) in wanted.items():
            if name not in self.running:
                runner = Runner(
                    spec, connectors[spec.connector], connectors, self.ctx, self.caller, self.node
                )
                self.running[name] = _Running(runner, fingerprint)
                log.info("subscription %s started (%s mode)", name, spec.mode)

    async def _stop(self, name: str) -> None:
        running = self.running.pop(name)
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running.task
        self._count(name, running.runner.stats)
        self._counted.pop(name, None)
        with contextlib.suppress(redis.RedisError, OSError):
            await self.ctx.redis.hdel(self.ctx.keys.subscription_status(name), self.ctx.server_id)
        log.info("subscription %s stopped", name)

    async def stop_all(self) -> None:
        for name in list(self.running):
            await self._stop(name)

    def _count(self, name: str, stats: SubscriptionStats) -> None:
        """Move what `stats` counted since the last call into `_uncounted`."""
        now = stats.counters()
        before = self._counted.get(name)
        base = before[1] if before is not None and before[0] is stats else {}
        for counter, n in now.items():
            delta = n - base.get(counter, 0)
            if delta > 0:
                field = f"sub|{name}|{counter}"
                self._uncounted[field] = self._uncounted.get(field, 0) + delta
        self._counted[name] = (stats, now)

    async def _write_status(self) -> None:
        for name, running in self.running.items():
            self._count(name, running.runner.stats)
        if not self.running and not self._uncounted:
            return
        pipe = self.ctx.redis.pipeline(transaction=False)
        uncounted, self._uncounted = self._uncounted, {}
        for field, n in uncounted.items():
            pipe.hincrby(self.ctx.keys.stats, field, n)
        now = time.time()
        for name, running in self.running.items():
            runner = running.runner
            snapshot = runner.stats.snapshot()
            snapshot.update(
                server=self.ctx.server_id,
                node=self.node,
                mode=runner.spec.mode,
                holder=runner.holder,
                subscribed=runner.source is not None,
                at=now,
            )
            try:
                data = orjson.dumps(snapshot, default=str, option=orjson.OPT_NON_STR_KEYS)
            except TypeError:  # one bad snapshot must not hold back the others' every second
                log.exception("subscription %s: status cannot be encoded", name)
                continue
            key = self.ctx.keys.subscription_status(name)
            pipe.hset(key, self.ctx.server_id, data)
            pipe.expire(key, STATUS_TTL_SECONDS)
        try:
            await pipe.execute()
        except BaseException:  # counted again with the next write
            for field, n in uncounted.items():
                self._uncounted[field] = self._uncounted.get(field, 0) + n
            raise


async def read_status(ctx_redis: Any, keys: Any, name: str) -> list[dict[str, Any]]:
    """Every live server's view of one subscription (the holder's first)."""
    raw = await ctx_redis.hgetall(keys.subscription_status(name))
    now = time.time()
    views = [orjson.loads(v) for v in raw.values()]
    views = [v for v in views if now - v.get("at", 0) < STATUS_STALE_SECONDS]
    return sorted(views, key=lambda v: not v.get("subscribed"))
