"""Intent verification (§5.3) and denial (§5.2), run after the 202 from a durable queue.

The hub endpoint only validates syntax and appends the request to the `intents` stream; any hub
server verifies it (consumer group, so a request survives a server restart, and entries idle on a
dead server are claimed by another). State changes only after the subscriber echoed the challenge,
so a failed re-subscription leaves the existing subscription untouched (§5.1).

Behind Redis Sentinel (`fnhub.redis_wait`) a failover drops what the old primary took after the
replica's promotion. The subscription's row is in SQL, which no failover touches, but where it
starts reading (its cursor) is in Redis: so a new (or re-activated) subscription's cursor is
written, and confirmed by a replica, before its row makes it active. A cursor no replica
confirmed is written again (`APPLY_ATTEMPTS`, once the clients moved to the new primary); if it
never is, the intent stays unacknowledged and is verified again once claimed as stale. Never an
active subscription without its cursor, which a deliverer would start at the topic's end of its
own start, skipping what was published in between. The rest is not confirmed, as losing it is
harmless: the intent's acknowledgement (lost, the intent is verified again: the subscriber echoes
a second challenge, or refuses it, and the subscription stands either way, §5.3), an
unsubscription's cursor and counters (of an id never used again), the `s`/`u` announcements
(the schedulers re-read SQL every 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from redis.exceptions import RedisError, ResponseError

from fnhub.calling.errors import CallError
from fnhub.redis_replies import as_streams
from fnhub.redis_wait import RETRY_AFTER_SECONDS, run_confirmed
from fnhub.websub.policy import PolicyError, check_address, url_hash
from fnhub.websub.reclaim import STARTING_SECONDS

if TYPE_CHECKING:
    from fnhub.websub.hub import Hub

log = logging.getLogger("fnhub.websub")

GROUP = "verifiers"
CONCURRENCY = 32
CLAIM_IDLE_MS = 60_000
CHALLENGE_MAX_BYTES = 1024
#: writes of a verified subscription tried this often, RETRY_AFTER_SECONDS apart, before the
#: intent is left unacknowledged for another verification (a failover's switch takes ~1.5 s)
APPLY_ATTEMPTS = 10


class Unapplied(Exception):
    """A verified intent whose Redis writes no replica confirmed: left unacknowledged, so it is
    verified again rather than acknowledged and lost with the primary that took it."""


def with_query(callback: str, params: dict[str, str]) -> str:
    """Append hub parameters to the callback, keeping its own query string (§5.1.1)."""
    parts = urlsplit(callback)
    extra = urlencode(params, quote_via=quote)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class Verifier:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.consumer = hub.server_id
        self.slots = asyncio.Semaphore(CONCURRENCY)
        self.pairs: dict[tuple[str, str], asyncio.Lock] = {}
        self.running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        hub = self.hub
        stream = hub.keys.websub_intents
        try:
            await hub.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        last_claim = 0.0
        while True:
            try:
                if time.monotonic() - last_claim > CLAIM_IDLE_MS / 2000:
                    last_claim = time.monotonic()
                    await self._claim_stale(stream)
                await self.slots.acquire()
                self.slots.release()
                rows = await hub.redis.xreadgroup(
                    GROUP, self.consumer, {stream: ">"}, count=CONCURRENCY, block=1000
                )
                for _, entries in as_streams(rows):
                    for entry_id, fields in entries:
                        self._spawn(stream, entry_id, fields)
            except asyncio.CancelledError:
                for t in self.running:
                    t.cancel()
                raise
            except Exception:
                log.exception("websub verification queue failed; retrying")
                await asyncio.sleep(1.0)

    async def _claim_stale(self, stream: str) -> None:
        _, entries, *_ = await self.hub.redis.xautoclaim(
            stream, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=100
        )
        for entry_id, fields in entries:
            if fields:
                self._spawn(stream, entry_id, fields)

    def _spawn(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        task = asyncio.create_task(self._handle(stream, entry_id, fields))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        intent = {k.decode(): v.decode() for k, v in fields.items()}
        pair = (intent["topic"], intent["callback"])
        lock = self.pairs.setdefault(pair, asyncio.Lock())
        try:
            async with self.slots, lock:  # requests for one pair are applied in order
                await self.process(intent)
        except Unapplied as exc:
            log.warning("%s; verified again once claimed as stale", exc)
            return  # unacknowledged
        except Exception:
            log.exception("verification of %s for %s failed", intent["mode"], intent["callback"])
        finally:
            if not lock.locked():
                self.pairs.pop(pair, None)
        async with self.hub.redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def process(self, intent: dict[str, str]) -> None:
        hub = self.hub
        mode, topic, callback = intent["mode"], intent["topic"], intent["callback"]
        if mode == "unsubscribe":
            existing = await asyncio.to_thread(hub.registry.find, topic, callback)
            if existing is None or existing.state != "active":
                return  # nothing to verify (w3c/websub#120)
        else:
            try:
                await check_address(callback, "hub.callback", hub.addresses, hub.resolver)
            except PolicyError as exc:
                await self.deny(callback, topic, str(exc), contact=False)
                return
            reason = await self.denial(topic)
            if reason is not None:
                await self.deny(callback, topic, reason)
                return
        lease = int(intent["lease"])
        started = time.time()
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": secrets.token_urlsafe(24)}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(lease)
        if not await self.confirm(callback, params):
            hub.metrics.counters["verification_failed"] += 1
            return
        if mode == "subscribe":
            secret = intent.get("secret") or None
            for attempt in range(1, APPLY_ATTEMPTS + 1):
                try:
                    await self.subscribed(topic, callback, secret, lease, started)
                    return
                except (CallError, RedisError) as exc:
                    if isinstance(exc, CallError) and exc.kind != "not_replicated":
                        raise
                    if attempt == APPLY_ATTEMPTS:
                        raise Unapplied(
                            f"subscription of {callback} to {topic} verified but not applied "
                            f"after {attempt} attempts: {exc}"
                        ) from exc
                    log.warning("verified subscription of %s not applied yet: %s", callback, exc)
                    await asyncio.sleep(RETRY_AFTER_SECONDS)
        else:
            await self.unsubscribed(topic, callback)

    async def denial(self, topic: str) -> str | None:
        """Why the hub refuses this subscription, or None (§5.2 validation)."""
        hub = self.hub
        if not hub.settings.websub_open:
            row = await asyncio.to_thread(hub.registry.topic, topic)
            if row is None or not row.registered:
                return "topic is not registered on this hub"
        return None

    async def deny(self, callback: str, topic: str, reason: str, *, contact: bool = True) -> None:
        self.hub.metrics.counters["denied"] += 1
        if not contact:
            return  # never contact a callback the SSRF policy refused
        params = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": reason}
        with contextlib.suppress(httpx.HTTPError):
            await self.hub.http.get(
                with_query(callback, params), timeout=self.hub.settings.websub_verify_timeout
            )

    async def confirm(self, callback: str, params: dict[str, str]) -> bool:
        """GET with the challenge; only a 2xx whose body is the challenge, byte for byte (no
        whitespace around it either), is agreement (§5.3.1)."""
        hub = self.hub
        try:
            async with (
                hub.limit,
                hub.http.stream(
                    "GET", with_query(callback, params), timeout=hub.settings.websub_verify_timeout
                ) as response,
            ):
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > CHALLENGE_MAX_BYTES:
                        return False
        except httpx.HTTPError as exc:
            log.info("verification GET to %s failed: %s", callback, exc)
            return False
        ok = 200 <= response.status_code < 300 and body == params["hub.challenge"].encode()
        if not ok:
            log.info("subscriber %s did not confirm (%s)", callback, response.status_code)
        return ok

    async def subscribed(
        self, topic: str, callback: str, secret: str | None, lease: int, verified_at: float
    ) -> None:
        hub = self.hub
        marker = hub.keys.websub_starting(url_hash(topic))
        token = secrets.token_hex(8)
        # before reading where it starts, until its cursor is set: publishes to the topic store
        # and the reclaimer keeps what comes (`reclaim`), so nothing after that start is lost
        async with hub.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(marker, token)
            pipe.expire(marker, STARTING_SECONDS)  # outlives a verifier that dies meanwhile
            await pipe.execute()
        try:
            await self._apply_subscription(topic, callback, secret, lease, verified_at)
        finally:
            await hub.redis.srem(marker, token)
        hub.metrics.counters["subscribed"] += 1
        await hub.announce("s")

    async def _apply_subscription(
        self, topic: str, callback: str, secret: str | None, lease: int, verified_at: float
    ) -> None:
        """A fresh (new or re-activated) subscription's cursor first, confirmed, then its row:
        an active row always has its cursor (see the module). A renewal keeps its cursor, or
        gets one if it has none (`Hub.repair_cursor`, before its row's `verified_at` moves on)."""
        hub = self.hub
        existing = await asyncio.to_thread(hub.registry.find, topic, callback)
        fresh = (
            existing is None or existing.state != "active" or existing.lease_expires <= verified_at
        )
        sid = existing.id if existing is not None else uuid.uuid4().hex
        if fresh:
            await self._start_at_end(sid, url_hash(topic))
        elif existing is not None and not await hub.redis.hexists(hub.keys.websub_cursors, sid):
            await hub.repair_cursor(sid, existing.topic_hash, existing.verified_at)
        result = await asyncio.to_thread(
            hub.registry.verified_subscribe, topic, callback, secret, lease, verified_at, sid
        )
        sub = result.subscription
        if result.fresh and not (fresh and sub.id == sid):  # changed by another server meanwhile
            await self._start_at_end(sub.id, sub.topic_hash)

    async def _start_at_end(self, subscription_id: str, topic_hash: str) -> None:
        """The subscription's cursor at the topic's end and its counters cleared, confirmed
        behind Sentinel (CallError `not_replicated` if no replica has them)."""
        hub = self.hub
        end = await hub.store.end(topic_hash)
        pipe = hub.redis.pipeline(transaction=False)
        pipe.hset(hub.keys.websub_cursors, subscription_id, end)
        keys = hub.keys
        pipe.delete(keys.websub_stats(subscription_id), keys.websub_redeliver(subscription_id))
        await run_confirmed(hub.settings, hub.redis, pipe, "the subscription's cursor")

    async def unsubscribed(self, topic: str, callback: str) -> None:
        hub = self.hub
        existing = await asyncio.to_thread(hub.registry.find, topic, callback)
        if existing is None:
            return
        await asyncio.to_thread(hub.registry.remove, existing.id)
        async with hub.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(hub.keys.websub_cursors, existing.id)
            pipe.delete(hub.keys.websub_stats(existing.id), hub.keys.websub_redeliver(existing.id))
            await pipe.execute()
        hub.metrics.counters["unsubscribed"] += 1
        await hub.announce(f"u:{existing.id}")
