"""The hub's runtime in one server process: shares subscriptions between servers, runs their
deliverers, listens for wake-up events and keeps counters.

Ownership: a server delivers a subscription only while it holds `owner:<id>` (a claim, short
TTL, renewed every TTL/6: `lease.Claims`). Servers heartbeat into a sorted set and each claims at
most its fair share (ceil(active / live servers)), releasing extras after the notifications in
flight, so load spreads when servers join. A dead server's subscriptions are taken over after one
TTL, or as soon as its claims (two renewals missed) or its heartbeat (two passes missed) are
stale if its process has no Redis connection left (killed outright, `fnhub.holders`): the other
servers schedule their next pass for the moment a claim they want goes stale or lapses, or a
silent server's heartbeat does, rather than finding out up to a pass later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import ssl
import time
from typing import Any

import httpx
import redis.asyncio as aredis

from fnhub.aio import wait_event
from fnhub.config import Settings
from fnhub.holders import connection_name, name_connections
from fnhub.keys import Keys
from fnhub.lease import RENEWALS_PER_TTL, Claims
from fnhub.ops_stats import Counts
from fnhub.redis_client import async_redis, sync_redis
from fnhub.redis_replies import as_optional_bytes, as_str
from fnhub.redis_wait import run_confirmed
from fnhub.secret_box import SecretBox, resolve_secret_key
from fnhub.store.db import Database
from fnhub.websub.addresses import AddressPolicy, Resolver, system_resolver
from fnhub.websub.delivery import Deliverer, Sub
from fnhub.websub.feed import TopicFeed
from fnhub.websub.metrics import Metrics
from fnhub.websub.policy import url_hash
from fnhub.websub.publish_cache import PublishCache
from fnhub.websub.publishers import check_publisher_tokens
from fnhub.websub.reclaim import Reclaimer
from fnhub.websub.registry import Registry
from fnhub.websub.signing import check_algorithm
from fnhub.websub.store import Notification, NotificationStore, RedisStore
from fnhub.websub.transport import guarded_client
from fnhub.websub.views import Views

log = logging.getLogger("fnhub.websub")

SCHEDULE_SECONDS = 1.0
STALE_PASSES = 2  # a server whose heartbeat is this many passes old counts as gone (or the TTL)
PASS_LATE = 0.01  # a pass due when a claim lapses comes this much after it
PASS_GAP = 0.02  # the shortest pause between passes
ACTIVE_REFRESH_SECONDS = 5.0  # re-read active subscriptions at least this often (else on events)
REDIS_CONNECTIONS = 32
EXPIRE_EVERY_SECONDS = 1.0
HTTP_SHARD_CONNECTIONS = 8  # httpx scans its whole pool per request: keep each pool small

# counters (when delivered), then the cursor if this server still owns the subscription
_ADVANCE = """
if ARGV[4] ~= '' then
  redis.call('HINCRBY', KEYS[3], 'delivered', 1)
  redis.call('HSET', KEYS[3], 'failures', 0, 'last_delivery_at', ARGV[5], 'last_status', ARGV[4])
  redis.call('HINCRBY', KEYS[4], 'delivered', 1)
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]); return 1
end
return 0
"""


def make_store(settings: Settings, client: aredis.Redis, keys: Keys) -> NotificationStore:
    if settings.websub_store == "kafka":
        from fnhub.websub.kafka_store import KafkaStore

        return KafkaStore(settings, client, keys)
    if settings.websub_store != "redis":
        raise ValueError("websub_store must be 'redis' or 'kafka'")
    return RedisStore(client, keys, settings)


def hub_url(settings: Settings) -> str:
    return settings.websub_hub_url or f"http://{settings.host}:{settings.port}/websub/hub"


class Hub:
    def __init__(
        self,
        settings: Settings,
        client: aredis.Redis,
        db: Database,
        keys: Keys,
        server_id: str,
        resolver: Resolver = system_resolver,
        counts: Counts | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the context verifying subscribers' certificates (made here if not given)."""
        check_algorithm(settings.websub_signature_algorithm)
        check_publisher_tokens(settings)
        self.settings = settings
        #: every connection the hub makes goes to an address this allows (`transport`)
        self.addresses = AddressPolicy(settings.websub_allow_networks)
        self.resolver = resolver
        # own pool that waits instead of failing: hundreds of deliverers share few connections
        self.redis = async_redis(settings, max_connections=REDIS_CONNECTIONS, pool_timeout=30)
        client = self.redis
        self.db = db
        self.keys = keys
        self.server_id = server_id
        self.registry = Registry(db)
        #: what publishes need not ask SQL again (`publish_cache`)
        self.publish_cache = PublishCache(settings.websub_subscribed_cache_seconds)
        self.box = SecretBox(resolve_secret_key(settings))  # hub.secret is stored encrypted
        self.views = Views(settings, self.registry, sync_redis(settings))
        self.store = make_store(settings, client, keys)
        self.hub_url = hub_url(settings)
        self.metrics = Metrics(counts)
        self.limit = asyncio.Semaphore(settings.websub_concurrency)
        # deliveries spread over small pools (httpcore's per-request cost grows with pool size);
        # `limit` bounds the requests in flight across all of them
        shards = max(1, math.ceil(settings.websub_concurrency / HTTP_SHARD_CONNECTIONS))
        per_shard = math.ceil(settings.websub_concurrency / shards)
        tls = tls or httpx.create_ssl_context()  # one for all pools: CA loading costs each ~30 ms
        self.clients = [
            guarded_client(
                self.addresses,
                verify=tls,
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                resolver=resolver,
                headers={"User-Agent": "fnhub-websub"},
            )
            for _ in range(shards)
        ]
        self.http = self.clients[0]  # verifications and topic fetches
        quiet_httpx()
        self.deliverers: dict[str, Deliverer] = {}
        self.feeds: dict[str, TopicFeed] = {}
        self._active: dict[str, Any] = {}
        self._active_at = 0.0
        self.by_topic: dict[str, set[str]] = {}
        self.reschedule = asyncio.Event()
        self._secrets: dict[str, str] = {}
        self._last_expire = 0.0
        self.claims = Claims(client, server_id, settings.websub_owner_ttl)
        self._servers: set[str] = set()  # the hub servers heartbeating (`schedule_once`)
        self._advance = client.register_script(_ADVANCE)

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Runs until cancelled (server shutdown), then hands its claims back at once."""
        from fnhub.websub.verify import Verifier

        # this pool's connections too carry the server's name: its claims are judged by them
        await name_connections(self.redis, connection_name("server", self.server_id))
        try:
            await self.store.start()
        except Exception as exc:
            log.error("websub hub not started: %s", exc)
            await self._shutdown()
            raise
        tasks = [
            asyncio.create_task(self._events(), name="websub-events"),
            asyncio.create_task(self._schedule_loop(), name="websub-schedule"),
            asyncio.create_task(self._renew_loop(), name="websub-renew"),
            asyncio.create_task(Verifier(self).run(), name="websub-verify"),
        ]
        forward = getattr(self.store, "forward_ingest", None)
        if forward is not None:
            tasks.append(asyncio.create_task(forward(self), name="websub-ingest"))
        if isinstance(self.store, RedisStore):
            reclaim = Reclaimer(self, self.store).run()
            tasks.append(asyncio.create_task(reclaim, name="websub-reclaim"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await self._shutdown()

    async def _shutdown(self) -> None:
        running = [d.task for d in self.deliverers.values() if d.task]
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for feed in list(self.feeds.values()):
            await feed.stop()
        with contextlib.suppress(Exception):
            await self.redis.zrem(self.keys.websub_servers, self.server_id)
        for c in self.clients:
            await c.aclose()
        await self.store.close()
        self.views.redis.close()
        await self.redis.aclose()

    # --- scheduling and ownership --------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            pause = SCHEDULE_SECONDS
            try:
                pause = await self.schedule_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("websub scheduling pass failed")
            await wait_event(self.reschedule, pause)
            if self.reschedule.is_set():
                self._active_at = 0.0  # subscriptions changed: read them again
            self.reschedule.clear()

    async def schedule_once(self) -> float:
        """Heartbeat, then release or claim subscriptions towards this server's fair share.
        Returns the seconds until the next pass is due: SCHEDULE_SECONDS, or less when a claim
        this server wants lapses sooner, or a silent server's heartbeat goes stale (its share
        is then free to take): a dead server's subscriptions move at once, not a pass later."""
        now = time.time()
        stale = heartbeat_stale(self.settings.websub_owner_ttl)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.websub_servers, {self.server_id: now})
            pipe.zremrangebyscore(self.keys.websub_servers, 0, now - stale)
            pipe.zrange(self.keys.websub_servers, 0, -1, withscores=True)
            _, _, beats = await pipe.execute()
        beaten = {as_str(m): float(at) for m, at in beats}
        self._servers = set(beaten)
        gone = await self._servers_gone(beaten, now)
        servers = len(beaten) - len(gone)
        due = min([SCHEDULE_SECONDS, *(self._beat_due(at, now) for at in beaten.values())])
        expired = 0
        if now - self._last_expire >= EXPIRE_EVERY_SECONDS:
            self._last_expire = now
            expired = await asyncio.to_thread(self.registry.expire_due, now)
            if expired:
                self.metrics.counters["expired"] += expired
                self.publish_cache.forget_subscribed()
        if expired or now - self._active_at >= ACTIVE_REFRESH_SECONDS:
            self._active_at = now
            rows = await asyncio.to_thread(self.registry.active, now)
            self._active = {r.id: self._sub(r) for r in rows}
        active = {sid: sub for sid, sub in self._active.items() if sub.lease_expires > now}
        for sid, d in list(self.deliverers.items()):
            if sid not in active:
                d.release()
            else:
                d.sub = active[sid]
        share = math.ceil(len(active) / max(int(servers), 1))
        mine = [d for d in self.deliverers.values() if not d.releasing]
        if len(mine) > share:
            for d in mine[share:]:
                d.release()
            return pass_due(due)
        need = share - len(mine)
        candidates = [sid for sid in active if sid not in self.deliverers]
        random.shuffle(candidates)
        while need > 0 and candidates:
            batch, candidates = candidates[:need], candidates[need:]
            keys = [self.keys.websub_owner(sid) for sid in batch]
            answers = await self.claims.take(keys, self._servers)
            for sid, wait in zip(batch, answers, strict=True):
                if wait is None:
                    self._start(active[sid])
                    need -= 1
                else:  # held: look again when its holder goes stale, or it lapses
                    due = min(due, wait)
        return pass_due(due)

    async def _servers_gone(self, beaten: dict[str, float], now: float) -> set[str]:
        """The servers whose heartbeat missed two passes and whose process is gone (no Redis
        connection under its name, `fnhub.holders`), removed from the servers at once: their
        share is free now, not when their heartbeat is `heartbeat_stale`."""
        late = {s for s, at in beaten.items() if now - at > STALE_PASSES * SCHEDULE_SECONDS}
        watch = self.claims.watch
        if watch.wants_list(self._servers, late):
            await watch.judge(self.redis, self._servers, late)
        gone = late & set(watch.gone())
        if gone:
            await self.redis.zrem(self.keys.websub_servers, *gone)
            log.info("websub servers %s gone: their subscriptions are shared now", sorted(gone))
        return gone

    def _beat_due(self, at: float, now: float) -> float:
        """Seconds until a server's heartbeat misses two passes, or (missed already) until it
        is `heartbeat_stale`."""
        late = at + STALE_PASSES * SCHEDULE_SECONDS - now
        return late if late > 0 else at + heartbeat_stale(self.settings.websub_owner_ttl) - now

    def _sub(self, row: Any) -> Sub:
        secret = None
        if row.secret:
            secret = self._secrets.get(row.secret)
            if secret is None:
                secret = self._secrets[row.secret] = self.box.decrypt(row.secret)
        return Sub(
            row.id,
            row.topic,
            row.topic_hash,
            row.callback,
            secret,
            row.lease_expires,
            row.verified_at,
        )

    def client_for(self, subscription_id: str) -> httpx.AsyncClient:
        return self.clients[hash(subscription_id) % len(self.clients)]

    def _start(self, sub: Sub) -> None:
        d = Deliverer(self, sub)
        self.deliverers[sub.id] = d
        self.by_topic.setdefault(sub.topic_hash, set()).add(sub.id)
        if sub.topic_hash not in self.feeds:
            feed = self.feeds[sub.topic_hash] = TopicFeed(
                self.store, sub.topic_hash, functools.partial(self._wake_topic, sub.topic_hash)
            )
            feed.start()
        d.task = asyncio.create_task(d.run(), name=f"websub-deliver-{sub.id}")

    def _wake_topic(self, topic_hash: str) -> None:
        for sid in self.by_topic.get(topic_hash, ()):
            self.deliverers[sid].wake.set()

    async def read(self, topic_hash: str, cursor: str, count: int) -> list[Notification]:
        """From the topic's in-memory window when the cursor is in it, else from the store."""
        feed = self.feeds.get(topic_hash)
        notes = feed.window(cursor, count) if feed is not None else None
        if notes is None:
            notes = await self.store.read(topic_hash, cursor, count)
        return notes

    async def deliverer_exited(self, d: Deliverer) -> None:
        # the claim first: while it is still ours a pass would take it again (HOLD renews ours)
        with contextlib.suppress(Exception):
            await self.claims.release(self.keys.websub_owner(d.sub.id))
        if self.deliverers.get(d.sub.id) is d:
            del self.deliverers[d.sub.id]
            ids = self.by_topic.get(d.sub.topic_hash)
            if ids is not None:
                ids.discard(d.sub.id)
                if not ids:
                    del self.by_topic[d.sub.topic_hash]
                    feed = self.feeds.pop(d.sub.topic_hash, None)
                    if feed is not None:
                        await feed.stop()

    async def _renew_loop(self) -> None:
        ttl = self.settings.websub_owner_ttl
        while True:
            await asyncio.sleep(ttl / RENEWALS_PER_TTL)  # two missed: stale (`fnhub.holders`)
            owned = list(self.deliverers.values())
            if not owned:
                continue
            started = time.monotonic()
            try:
                results = await self.claims.renew([self.keys.websub_owner(d.sub.id) for d in owned])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not renew websub claims; deliveries pause until Redis is back")
                continue
            for d, ok in zip(owned, results, strict=True):
                if ok:
                    d.valid_until = started + ttl
                else:
                    d.release()

    # --- events --------------------------------------------------------------------------

    async def _events(self) -> None:
        """Wake-ups: `n:<topic>` new notification, `s` subscriptions changed, `u:<id>` ended."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.websub_events)
                for feed in list(self.feeds.values()):  # we may have missed events
                    feed.wake.set()
                for d in list(self.deliverers.values()):
                    d.check_redeliver = True
                    d.wake.set()
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is not None:
                        self._event(msg["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("websub event listener reconnecting: %s", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _event(self, data: str) -> None:
        kind, _, arg = data.partition(":")
        if kind == "n":
            feed = self.feeds.get(arg)
            if feed is not None:
                feed.wake.set()
        elif kind == "r":  # a dead letter was queued again for this subscription
            d = self.deliverers.get(arg)
            if d is not None:
                d.check_redeliver = True
                d.wake.set()
        elif kind == "u":
            self.publish_cache.forget_subscribed()
            d = self.deliverers.get(arg)
            if d is not None:
                d.release()
            self.reschedule.set()
        elif kind == "s":
            self.reschedule.set()
        elif kind == "i":
            self.ingest_wake.set()

    @property
    def ingest_wake(self) -> asyncio.Event:
        event = getattr(self, "_ingest_wake", None)
        if event is None:
            event = self._ingest_wake = asyncio.Event()
        return event

    async def announce(self, event: str) -> None:
        await self.redis.publish(self.keys.websub_events, event)

    # --- publishing ----------------------------------------------------------------------

    async def has_subscribers(self, topic_hash: str) -> bool:
        """Whether a publish to the topic can reach anyone: an active subscription, or one being
        verified right now (see `reclaim`). Nothing is fetched or stored for a topic without.

        A yes is kept for a moment (`publish_cache`: a stale one is harmless), a no never, so a
        subscription verified (or being verified) is seen by the next publish, as it always was;
        the SQL query also says whether the topic's row exists (`publish` then needs none)."""
        cache = self.publish_cache
        if cache.subscribed(topic_hash):
            return True
        if await self.redis.exists(self.keys.websub_starting(topic_hash)):
            return True
        generation = cache.generation
        subscribed, known = await asyncio.to_thread(
            self.registry.publish_state, topic_hash, time.time()
        )
        if known:
            cache.note_known(topic_hash)
        if subscribed:
            cache.note_subscribed(topic_hash, generation)
        return subscribed

    async def publish(self, topic: str, content_type: str, body: bytes) -> str:
        """Store one notification for the topic's subscribers (`StorageFull` when the hub's
        storage cannot take it); returns its position. The topic's row is made first unless
        it is known to exist (rows are never deleted)."""
        topic_hash = url_hash(topic)
        if not self.publish_cache.known(topic_hash):
            await asyncio.to_thread(self.registry.ensure_topic, topic)
            self.publish_cache.note_known(topic_hash)
        position = await self.store.append(topic_hash, content_type, body)
        self.metrics.counters["published"] += 1
        return position

    async def count_unsubscribed(self, n: int) -> None:
        """Publishes to topics nobody subscribes to (accepted, nothing stored)."""
        self.metrics.counters["published_without_subscribers"] += n
        await self.redis.hincrby(self.keys.websub_metrics, "published_without_subscribers", n)

    # --- cursors and counters ------------------------------------------------------------

    async def cursor(self, sub: Sub) -> str:
        """Where the subscription's deliveries resume; one without a cursor gets it repaired
        (`repair_cursor`) if its row is still active."""
        raw = as_optional_bytes(await self.redis.hget(self.keys.websub_cursors, sub.id))
        if raw is not None:
            return raw.decode()
        row = await asyncio.to_thread(self.registry.subscription, sub.id)
        if row is None or row.state != "active":  # ended meanwhile: its deliverer is released
            return await self.store.end(sub.topic_hash)
        return await self.repair_cursor(sub.id, sub.topic_hash, row.verified_at)

    async def repair_cursor(self, subscription_id: str, topic_hash: str, since: float) -> str:
        """Give an active subscription that has no cursor one, and return it.

        A verifier writes the cursor (confirmed) before the row makes a subscription active,
        so this is one made before it did (a failover lost its cursor), or one whose cursor
        went with Redis's data. Its cursor goes at `since`, the start of its last verification
        (`store.since`), not at the topic's end: from the moment its row was active, publishes
        to the topic were stored for it (`has_subscribers`), and the reclaimer removes nothing
        of a topic with an active subscription without a cursor, so what it missed is still
        stored (but what the topic's caps dropped), and it gets it now; the end would skip all
        of it. Something published a little before its verification may come too: a notification
        too many rather than lost ones. Logged as a warning, with the position; HSETNX, so a
        cursor written meanwhile (another server's repair) stands; confirmed behind Sentinel,
        so a failover cannot lose it again."""
        start = await self.store.since(topic_hash, since)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(self.keys.websub_cursors, subscription_id, start)
        await run_confirmed(self.settings, self.redis, pipe, "the subscription's repaired cursor")
        raw = as_optional_bytes(await self.redis.hget(self.keys.websub_cursors, subscription_id))
        cursor = raw.decode() if raw is not None else start
        log.warning(
            "active subscription %s had no delivery cursor: it resumes at %s, the position at "
            "its last verification (%s)",
            subscription_id,
            cursor,
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(since)),
        )
        return cursor

    async def advance(self, d: Deliverer, cursor: str, status: int | None) -> bool:
        """Set the cursor (the end of the subscription's finished prefix) and count one delivery
        when `status` says delivered, in one round trip; False when this server no longer owns
        the subscription."""
        sid = d.sub.id
        ok = await self._advance(
            keys=[
                self.keys.websub_owner(sid),
                self.keys.websub_cursors,
                self.keys.websub_stats(sid),
                self.keys.websub_metrics,
            ],
            args=[
                self.server_id,
                sid,
                cursor,
                "" if status is None else status,
                repr(time.time()),
            ],
        )
        return bool(ok)

    async def record_success(self, sub: Sub, status: int) -> None:
        """Counters of a delivered dead letter (no cursor to move)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            key = self.keys.websub_stats(sub.id)
            pipe.hincrby(key, "delivered", 1)
            pipe.hset(
                key,
                mapping={
                    "failures": 0,
                    "last_delivery_at": repr(time.time()),
                    "last_status": status,
                },
            )
            pipe.hincrby(self.keys.websub_metrics, "delivered", 1)
            await pipe.execute()

    async def record_failure(self, sub: Sub, status: int | None, error: str) -> None:
        self.metrics.counters["failed_attempts"] += 1
        async with self.redis.pipeline(transaction=False) as pipe:
            key = self.keys.websub_stats(sub.id)
            pipe.hincrby(key, "failures", 1)
            pipe.hincrby(key, "failed_attempts", 1)
            pipe.hset(
                key,
                mapping={
                    "last_error": error,
                    "last_error_at": repr(time.time()),
                    "last_status": status if status is not None else "",
                },
            )
            pipe.hincrby(self.keys.websub_metrics, "failed_attempts", 1)
            await pipe.execute()

    async def record_dead(self, sub: Sub) -> None:
        self.metrics.counters["dead_lettered"] += 1
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(self.keys.websub_stats(sub.id), "dead", 1)
            pipe.hincrby(self.keys.websub_metrics, "dead_lettered", 1)
            await pipe.execute()

    async def gone(self, sub: Sub) -> None:
        """The callback answered 410: the subscription ends (§7)."""
        await asyncio.to_thread(self.registry.end, sub.id, "gone")
        self.publish_cache.forget_subscribed()  # at once: its `u:` event comes back later
        self.metrics.counters["gone"] += 1
        await self.redis.hdel(self.keys.websub_cursors, sub.id)
        await self.announce(f"u:{sub.id}")
        log.info("subscription %s ended by its callback (410)", sub.id)


def heartbeat_stale(ttl: float) -> float:
    """Seconds after which a server that has not heartbeaten counts as gone: a few passes (a
    busy server's pass can be late), and never less than a claim's TTL (its claims lapse
    then too)."""
    return max(STALE_PASSES * SCHEDULE_SECONDS, ttl)


def pass_due(seconds: float) -> float:
    """The pause before the next scheduling pass: `seconds` past the moment it is due (a claim
    lapsing, a heartbeat going stale), so Redis has expired it by then; at least PASS_GAP."""
    return max(seconds + PASS_LATE, PASS_GAP)


def quiet_httpx() -> None:
    """httpx logs every request at INFO, which under `fnhub server` (INFO) would be one log line
    per delivery; keep it to warnings unless someone configured the logger explicitly."""
    logger = logging.getLogger("httpx")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
