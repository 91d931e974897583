"""Intent verification (§5.3) and denial (§5.2), run after the 202 from a durable queue.

The hub endpoint only validates syntax and appends the request to the `intents` stream; any hub
server verifies it (consumer group, so a request survives a server restart, and entries idle on a
dead server are claimed by another). State changes only after the subscriber echoed the challenge,
so a failed re-subscription leaves the existing subscription untouched (§5.1).

An intent is acknowledged only on a definitive outcome: applied, refused (by the subscriber, the
address policy, the topic's registration), nothing to do, or given up after `VERIFY_ATTEMPTS`
verifications that failed unexpectedly (`failed_intents`: backoff between them, then recorded
with the reason, listed by the API and the CLI, counted). A passing failure (Redis or the
database away, a write no replica confirmed: `PASSING`) is retried in place, step by step, so
the subscriber answers one challenge however the stores fail around it; after `APPLY_ATTEMPTS`
the intent stays unacknowledged and is verified again once claimed as stale. Before, any error
after the subscriber's answer (the database down) acknowledged it, and the subscription was lost.

An intent is claimed as stale only once no verifier touched it for `CLAIM_IDLE_MS`: the server
verifying it resets its idle time every third of that (`KEEP`, only while it still holds it),
however long the verification takes (`websub_verify_timeout`, the retries, the backoff). With a
fixed idle time, a verification longer than it (a timeout above ~20 s with the retries) was
claimed by another server meanwhile and the subscriber asked twice at once.

Behind Redis Sentinel (`fnhub.redis_wait`) a failover drops what the old primary took after the
replica's promotion. The subscription's row is in SQL, which no failover touches, but where it
starts reading (its cursor) is in Redis: so before the subscriber is asked, the topic is marked
as having a subscription starting (confirmed by a replica), which makes publishes to it stored
and kept, and the start is read; once the subscriber agreed, a new (or re-activated)
subscription's cursor is written at that start, confirmed, before its row makes it active. A
failover at any point leaves the new primary storing the topic's publishes for it and, once the
subscription is applied there, an active row only with its cursor. The rest is not confirmed, as
losing it is harmless: the intent's acknowledgement (lost, the intent is verified again: the
subscriber echoes a second challenge, or refuses it, and the subscription stands either way,
§5.3), an unsubscription's cursor and counters (of an id never used again), the `s`/`u`
announcements (the schedulers re-read SQL every 5 s), the marker's removal (it lapses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from redis.exceptions import ResponseError
from sqlalchemy.exc import IntegrityError

from fnhub.calling.errors import CallError
from fnhub.outage_log import short_reason
from fnhub.redis_replies import as_streams
from fnhub.redis_wait import RETRY_AFTER_SECONDS, run_confirmed
from fnhub.server.errors import DATABASE_UNAVAILABLE, REDIS_UNAVAILABLE
from fnhub.websub import failed_intents
from fnhub.websub.policy import PolicyError, check_address, url_hash
from fnhub.websub.reclaim import STARTING_SECONDS

if TYPE_CHECKING:
    from fnhub.websub.hub import Hub

log = logging.getLogger("fnhub.websub")

GROUP = "verifiers"
CONCURRENCY = 32
CLAIM_IDLE_MS = 60_000
CHALLENGE_MAX_BYTES = 1024
#: a step of a verification that failed for a passing reason (`PASSING`) is tried this often,
#: RETRY_AFTER_SECONDS apart, before the intent is left unacknowledged for another verification
#: (a failover's switch takes ~1.5 s; a database restart a few seconds)
APPLY_ATTEMPTS = 10
#: failures that pass: Redis or the database away or refusing, a write no replica confirmed
#: (CallError `not_replicated`), two servers creating one subscription's row at once
PASSING = (*REDIS_UNAVAILABLE, *DATABASE_UNAVAILABLE, IntegrityError, CallError, OSError)

T = TypeVar("T")

#: resets the idle time of the entries this consumer still holds (XCLAIM to itself, JUSTID:
#: not counted as a delivery); one taken over by another verifier meanwhile is left to it
KEEP = """
local kept = 0
for i = 3, #ARGV do
  local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #held > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""


class Unapplied(Exception):
    """An intent not carried out for a passing reason (Redis or the database away, a write no
    replica confirmed): left unacknowledged, so it is verified again once claimed as stale
    rather than acknowledged and lost."""


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
        self.held: set[bytes] = set()  # intents being verified here (their idle time kept)
        self._keep = hub.redis.register_script(KEEP)

    async def run(self) -> None:
        hub = self.hub
        stream = hub.keys.websub_intents
        await self._create_group(stream)
        keeping = asyncio.create_task(self._keep_held(stream))
        try:
            await self._read(stream)
        finally:
            keeping.cancel()

    async def _create_group(self, stream: str) -> None:
        """The intents' consumer group (and stream), unless it exists."""
        try:
            await self.hub.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _keep_held(self, stream: str) -> None:
        """Every third of `CLAIM_IDLE_MS`, reset the idle time of the intents held here, so no
        other verifier claims one of them however long its verification takes."""
        while True:
            await asyncio.sleep(CLAIM_IDLE_MS / 3000)
            if not self.held:
                continue
            try:
                await self._keep(keys=[stream], args=[GROUP, self.consumer, *self.held])
            except PASSING as exc:  # nobody claims while Redis is away either
                log.warning("websub intents held here not kept: %s", exc)

    async def _read(self, stream: str) -> None:
        hub = self.hub
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
            except REDIS_UNAVAILABLE as exc:  # each reader of Redis logs its outage
                log.warning("websub verification queue paused: %s", short_reason(exc))
                await asyncio.sleep(1.0)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    log.exception("websub verification queue failed; retrying")
                    await asyncio.sleep(1.0)
                    continue
                # Redis came back empty (restarted without persistence, flushed): what the
                # group held is gone with it, and requests from now on need the group again
                log.warning("websub intents' consumer group gone (Redis lost its data): made")
                with contextlib.suppress(*PASSING):
                    await self._create_group(stream)
            except Exception:
                log.exception("websub verification queue failed; retrying")
                await asyncio.sleep(1.0)

    async def _claim_stale(self, stream: str) -> None:
        _, entries, *_ = await self.hub.redis.xautoclaim(
            stream, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=100
        )
        for entry_id, fields in entries:
            if fields and entry_id not in self.held:
                self._spawn(stream, entry_id, fields)

    def _spawn(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        task = asyncio.create_task(self._handle(stream, entry_id, fields))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        intent = {k.decode(): v.decode() for k, v in fields.items()}
        pair = (intent.get("topic", ""), intent.get("callback", ""))
        lock = self.pairs.setdefault(pair, asyncio.Lock())
        self.held.add(entry_id)
        try:
            async with self.slots, lock:  # requests for one pair are applied in order
                done = await self._verify(entry_id, intent)
            if done:
                async with self.hub.redis.pipeline(transaction=True) as pipe:
                    pipe.xack(stream, GROUP, entry_id)
                    pipe.xdel(stream, entry_id)
                    pipe.hdel(self.hub.keys.websub_verify_attempts, entry_id)  # if any failed
                    await pipe.execute()
        finally:
            self.held.discard(entry_id)
            if not lock.locked():
                self.pairs.pop(pair, None)

    async def _verify(self, entry_id: bytes, intent: dict[str, str]) -> bool:
        """`process` the intent; whether it is done with (to acknowledge). An unexpected error
        is retried with backoff (`failed_intents`), and after `VERIFY_ATTEMPTS` the intent is
        given up: recorded with its reason, counted, acknowledged."""
        hub = self.hub
        what = f"verification of {intent.get('mode')} for {intent.get('callback')}"
        while True:
            try:
                await self.process(intent)
                return True
            except Unapplied as exc:
                log.warning("%s; verified again once claimed as stale", exc)
                return False
            except Exception as exc:  # not a passing failure: a bug, or a corrupt intent
                error = exc
            try:
                attempt = await failed_intents.count_failure(hub.redis, hub.keys, entry_id)
                if attempt >= failed_intents.VERIFY_ATTEMPTS:
                    log.error("%s given up after %d attempts", what, attempt, exc_info=error)
                    reason = failed_intents.reason_of(error)
                    await failed_intents.give_up(
                        hub.redis, hub.keys, entry_id, intent, reason, attempt, hub.server_id
                    )
                    hub.metrics.counters["verification_errors"] += 1
                    return True
            except PASSING as exc:
                log.warning("%s failed (%s), and was not counted: %s", what, error, exc)
                return False  # verified again once claimed as stale
            wait = failed_intents.backoff(attempt)
            log.warning(
                "%s failed (attempt %d); again in %.1f s", what, attempt, wait, exc_info=error
            )
            await asyncio.sleep(wait)

    async def process(self, intent: dict[str, str]) -> None:
        """Carry the intent out, or raise `Unapplied` (leave it for another verification).

        Only a definitive outcome returns, so that the intent is acknowledged: the subscription
        applied, or refused (by the subscriber, the address policy, the topic's registration),
        or nothing to do. A passing failure (`PASSING`) is retried here, each step on its own
        (`_until_done`), so the subscriber is asked once however often the database or Redis
        fails around its answer; only after `APPLY_ATTEMPTS` is the intent left, and the next
        verification asks again (the pair's state may have moved meanwhile: the subscriber's
        answer then is the one that counts)."""
        hub = self.hub
        mode, topic, callback = intent["mode"], intent["topic"], intent["callback"]
        topic_hash = url_hash(topic)
        if mode == "unsubscribe":
            existing = await self._until_done(
                "reading the subscription",
                lambda: asyncio.to_thread(hub.registry.find, topic, callback),
            )
            if existing is None or existing.state != "active":
                return  # nothing to verify (w3c/websub#120)
        else:
            try:
                await check_address(callback, "hub.callback", hub.addresses, hub.resolver)
            except PolicyError as exc:
                await self.deny(callback, topic, str(exc), contact=False)
                return
            reason = await self._until_done("reading the topic", lambda: self.denial(topic))
            if reason is not None:
                await self.deny(callback, topic, reason)
                return
        lease = int(intent["lease"])
        started = time.time()
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": secrets.token_urlsafe(24)}
        if mode == "unsubscribe":
            if not await self.confirm(callback, params):
                hub.metrics.counters["verification_failed"] += 1
                return
            await self._until_done(
                f"unsubscription of {callback} from {topic}",
                lambda: self.unsubscribed(topic, callback),
            )
            return
        params["hub.lease_seconds"] = str(lease)
        # before the subscriber is asked: a failover while it answers keeps the marker
        token, start = await self._until_done(
            "marking the topic as starting", lambda: self._starting(topic_hash)
        )
        try:
            if not await self.confirm(callback, params):
                hub.metrics.counters["verification_failed"] += 1
                return
            await self._until_done(
                f"subscription of {callback} to {topic} (verified)",
                lambda: self._apply_subscription(intent, started, start),
            )
        finally:
            with contextlib.suppress(*PASSING):  # else it lapses (STARTING_SECONDS)
                await hub.redis.srem(hub.keys.websub_starting(topic_hash), token)
        hub.metrics.counters["subscribed"] += 1
        with contextlib.suppress(*PASSING):  # the schedulers re-read SQL every 5 s anyway
            await hub.announce("s")

    async def _until_done(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """`step()`, tried again after a passing failure, `APPLY_ATTEMPTS` times in all; then
        `Unapplied`. Any other error is raised at once."""
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                return await step()
            except PASSING as exc:
                if isinstance(exc, CallError) and exc.kind != "not_replicated":
                    raise
                if attempt == APPLY_ATTEMPTS:
                    raise Unapplied(f"{what} not done after {attempt} attempts: {exc}") from exc
                log.warning("%s not done yet (attempt %d), retrying: %s", what, attempt, exc)
                await asyncio.sleep(RETRY_AFTER_SECONDS)
        raise AssertionError("unreachable")

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

    async def _starting(self, topic_hash: str) -> tuple[str, str]:
        """Before the subscriber is asked: mark the topic as having a subscription starting,
        confirmed behind Sentinel, then read where it starts (the topic's end now). Returns the
        marker's token and that position.

        While the marker stands, publishes to the topic are stored (`Hub.has_subscribers`) and
        the reclaimer keeps them (`reclaim`), so nothing after the start is lost until the
        cursor is written. Confirmed, it survives a failover during the verification: the new
        primary stores what is published while the subscription is still being applied there
        (before, the marker was written after the subscriber's answer, to the old primary, and
        the new one answered publishes with "without subscribers" until a retry applied it)."""
        hub = self.hub
        marker = hub.keys.websub_starting(topic_hash)
        token = secrets.token_hex(8)
        pipe = hub.redis.pipeline(transaction=False)
        pipe.sadd(marker, token)
        # outlives a verifier that dies meanwhile, and one verification with its retries
        pipe.expire(marker, STARTING_SECONDS + int(hub.settings.websub_verify_timeout))
        await run_confirmed(hub.settings, hub.redis, pipe, "the subscription's start")
        return token, await hub.store.end(topic_hash)

    async def _apply_subscription(
        self, intent: dict[str, str], verified_at: float, start: str
    ) -> None:
        """A fresh (new or re-activated) subscription's cursor first, at `start`, confirmed,
        then its row: an active row always has its cursor (see the module). A renewal keeps
        its cursor, or gets one if it has none (`Hub.repair_cursor`, before its row's
        `verified_at` moves on)."""
        topic, callback, lease = intent["topic"], intent["callback"], int(intent["lease"])
        secret = intent.get("secret") or None
        hub = self.hub
        existing = await asyncio.to_thread(hub.registry.find, topic, callback)
        fresh = (
            existing is None or existing.state != "active" or existing.lease_expires <= verified_at
        )
        sid = existing.id if existing is not None else uuid.uuid4().hex
        if fresh:
            await self._start_at(sid, start)
        elif existing is not None and not await hub.redis.hexists(hub.keys.websub_cursors, sid):
            await hub.repair_cursor(sid, existing.topic_hash, existing.verified_at)
        result = await asyncio.to_thread(
            hub.registry.verified_subscribe, topic, callback, secret, lease, verified_at, sid
        )
        sub = result.subscription
        if result.fresh and not (fresh and sub.id == sid):  # changed by another server meanwhile
            await self._start_at(sub.id, start)

    async def _start_at(self, subscription_id: str, start: str) -> None:
        """The subscription's cursor at `start` and its counters cleared, confirmed behind
        Sentinel (CallError `not_replicated` if no replica has them)."""
        hub = self.hub
        pipe = hub.redis.pipeline(transaction=False)
        pipe.hset(hub.keys.websub_cursors, subscription_id, start)
        keys = hub.keys
        pipe.delete(keys.websub_stats(subscription_id), keys.websub_redeliver(subscription_id))
        await run_confirmed(hub.settings, hub.redis, pipe, "the subscription's cursor")

    async def unsubscribed(self, topic: str, callback: str) -> None:
        hub = self.hub
        existing = await asyncio.to_thread(hub.registry.find, topic, callback)
        if existing is None:
            return
        await asyncio.to_thread(hub.registry.remove, existing.id)
        hub.publish_cache.forget_subscribed()  # here at once; other servers on its `u:` event
        hub.metrics.counters["unsubscribed"] += 1
        # the row is gone, which is what counts: the rest is tidying (a cursor and counters of
        # an id never used again; the schedulers re-read SQL every 5 s)
        with contextlib.suppress(*PASSING):
            async with hub.redis.pipeline(transaction=False) as pipe:
                pipe.hdel(hub.keys.websub_cursors, existing.id)
                pipe.delete(
                    hub.keys.websub_stats(existing.id), hub.keys.websub_redeliver(existing.id)
                )
                await pipe.execute()
            await hub.announce(f"u:{existing.id}")
