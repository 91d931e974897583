"""One subscription's deliverer: reads the topic from its cursor and POSTs the notifications,
up to `websub_delivery_window` at once, each retried with exponential backoff until delivered,
dead-lettered or told to stop.

Exactly one hub server runs the deliverer of a subscription (see `hub.Ownership`), so nothing is
sent twice unless a server dies with notifications in flight (they are resent: the cursor only
moves over a finished prefix, see `window`). Each subscription is its own task, so a slow or dead
callback only delays itself. Order per subscriber holds with a window of 1.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import orjson

from fnhub.aio import cancel_and_wait, wait_event
from fnhub.backoff import Backoff
from fnhub.redis_replies import as_popped
from fnhub.supervised import current_counter
from fnhub.websub.models import WebSubDeadLetter
from fnhub.websub.signing import link_header, signature
from fnhub.websub.store import Notification
from fnhub.websub.window import Window

if TYPE_CHECKING:
    from fnhub.websub.hub import Hub

log = logging.getLogger("fnhub.websub")

READ_BATCH = 100
IDLE_POLL_SECONDS = 5.0  # re-read even without a wake-up event (covers lost pub/sub messages)


@dataclass(slots=True)
class Sub:
    """What a deliverer needs of a subscription (secret decrypted)."""

    id: str
    topic: str
    topic_hash: str
    callback: str
    secret: str | None
    lease_expires: float
    verified_at: float  # when its last verification began (where a lost cursor resumes)


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    DEAD = "dead"  # retries exhausted: dead-lettered, the cursor moves on
    GONE = "gone"  # 410: the subscriber ended the subscription
    STOPPED = "stopped"  # ownership lost, lease ended or shutdown: leave the cursor


class Deliverer:
    def __init__(self, hub: Hub, sub: Sub) -> None:
        self.hub = hub
        self.sub = sub
        self.wake = asyncio.Event()  # new notifications, a finished one, or stop
        self.valid_until = time.monotonic() + hub.settings.websub_owner_ttl
        self.releasing = False  # finish the notifications in flight, then hand the claim back
        self.halted = False  # lost the claim, 410, or an error: start nothing more
        self.gone = False
        self.error: Exception | None = None
        self.stopping = asyncio.Event()  # cuts backoff sleeps short when releasing or lost
        self.task: asyncio.Task[None] | None = None
        self.check_redeliver = True  # dead letters queued again by an operator
        self.http = hub.client_for(sub.id)
        self.link = link_header(hub.hub_url, sub.topic)
        self.window = Window(hub.settings.websub_delivery_window, "")
        self._commit = asyncio.Lock()  # cursor writes in order, so the cursor never moves back

    def owned(self) -> bool:
        return time.monotonic() < self.valid_until and not self.releasing and not self.halted

    def release(self) -> None:
        self.releasing = True
        self.stopping.set()
        self.wake.set()

    def halt(self) -> None:
        self.halted = True
        self.stopping.set()
        self.wake.set()

    async def run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deliverer of %s failed; another pass will restart it", self.sub.id)
            await current_counter().add_async("websub-delivery")
        finally:
            await self.hub.deliverer_exited(self)

    async def _loop(self) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        try:
            await self._dispatch(in_flight)
        except BaseException:
            await cancel_and_wait(in_flight)
            raise
        self.stopping.set()  # what is in flight finishes its current attempt, sleeps no more
        if in_flight:
            await asyncio.gather(*in_flight)
        if self.error is not None:
            raise self.error
        if self.gone:
            await self.hub.gone(self.sub)

    async def _dispatch(self, in_flight: set[asyncio.Task[None]]) -> None:
        """Start notifications in cursor order while the window has room."""
        hub = self.hub
        cursor = await hub.cursor(self.sub)
        self.window = window = Window(hub.settings.websub_delivery_window, cursor)
        read: collections.deque[Notification] = collections.deque()
        while self.owned():
            self.wake.clear()
            if self.check_redeliver:  # only when told (`r:<id>`), at start and on idle polls
                self.check_redeliver = False
                if await self._redeliver_one():
                    self.check_redeliver = True  # there may be more
                continue
            if window.free() <= 0:
                await wait_event(self.wake, IDLE_POLL_SECONDS)
                continue
            if not read:
                read.extend(await hub.read(self.sub.topic_hash, cursor, READ_BATCH))
                if not read:
                    if not await wait_event(self.wake, IDLE_POLL_SECONDS):
                        self.check_redeliver = True
                    continue
            while read and window.free() > 0:
                note = read.popleft()
                window.start(note.id)
                cursor = note.id  # read position (the stored cursor is the window's)
                task = asyncio.create_task(self._one(note), name=f"websub-note-{self.sub.id}")
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

    async def _redeliver_one(self) -> bool:
        """Send one dead letter an operator queued again; False when there was none."""
        hub = self.hub
        key = hub.keys.websub_redeliver(self.sub.id)
        again = as_popped(await hub.redis.lpop(key))
        if again is None:
            return False
        outcome, status = await self.deliver(_from_redeliver(again))
        if outcome is Outcome.DELIVERED:
            await hub.record_success(self.sub, status)
        elif outcome is Outcome.GONE:
            self.gone = True
            self.halt()
        elif outcome is Outcome.STOPPED:  # keep it queued for the next owner
            await hub.redis.lpush(key, again)
        return True

    async def _one(self, note: Notification) -> None:
        """Deliver one notification, then count it and move the cursor over the finished prefix
        (one round trip that also checks this server still owns the subscription)."""
        try:
            outcome, status = await self.deliver(note)
            if outcome is Outcome.STOPPED:
                return  # the cursor stays before it: the next owner sends it
            async with self._commit:
                cursor = self.window.finish(note.id)
                delivered = status if outcome is Outcome.DELIVERED else None
                if not await self.hub.advance(self, cursor, delivered):
                    self.halt()  # another server owns it now
                    return
            if outcome is Outcome.GONE:
                self.gone = True
                self.halt()
        except Exception as exc:
            self.error = self.error or exc
            self.halt()
        finally:
            self.wake.set()  # room in the window

    async def deliver(self, note: Notification) -> tuple[Outcome, int]:
        """Attempt with backoff until 2xx, 410, or the limits (attempts, deadline, lease);
        returns the outcome and the status of the successful attempt (0 otherwise)."""
        s = self.hub.settings
        first = time.monotonic()
        backoff = Backoff(
            s.websub_retry_initial, s.websub_retry_max_interval, s.websub_retry_factor
        )
        attempt = 0
        while True:
            if not self.owned() or time.time() >= self.sub.lease_expires:
                return Outcome.STOPPED, 0
            attempt += 1
            async with self.window.attempt():
                if not self.owned():  # released while waiting for its turn
                    return Outcome.STOPPED, 0
                status, error = await self.attempt(note)
                if status is not None and (200 <= status < 300 or status == 410):
                    await self.window.succeeded()
                else:
                    self.window.failed()
            if status is not None and 200 <= status < 300:
                self.hub.metrics.delivered(note.published_at)
                return Outcome.DELIVERED, status
            if status == 410:
                return Outcome.GONE, 0
            await self.hub.record_failure(self.sub, status, error)
            elapsed = time.monotonic() - first
            delay = backoff.next()
            if (
                attempt >= s.websub_retry_max_attempts
                or elapsed + delay > s.websub_retry_deadline
                or time.time() + delay >= self.sub.lease_expires
            ):
                await self.dead_letter(note, attempt, error)
                return Outcome.DEAD, 0
            await wait_event(self.stopping, delay)  # a lost claim or a release wakes us early

    async def attempt(self, note: Notification) -> tuple[int | None, str]:
        hub = self.hub
        headers = {
            "Content-Type": note.content_type,
            "Link": self.link,
        }
        if self.sub.secret:
            headers["X-Hub-Signature"] = signature(
                self.sub.secret, note.body, hub.settings.websub_signature_algorithm
            )
        async with hub.limit:
            try:
                response = await self.http.post(
                    self.sub.callback,
                    content=note.body,
                    headers=headers,
                    timeout=hub.settings.websub_delivery_timeout,
                )
            except (httpx.HTTPError, ValueError) as exc:  # ValueError: unsendable URL/header
                return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        return response.status_code, f"HTTP {response.status_code}"

    async def dead_letter(self, note: Notification, attempts: int, error: str) -> None:
        row = WebSubDeadLetter(
            subscription_id=self.sub.id,
            topic=self.sub.topic,
            callback=self.sub.callback,
            entry_id=note.id,
            content_type=note.content_type,
            body=note.body,
            published_at=note.published_at,
            attempts=attempts,
            last_error=error,
            created_at=time.time(),
        )
        await asyncio.to_thread(self.hub.registry.add_dead_letter, row)
        await self.hub.record_dead(self.sub)
        log.warning(
            "notification %s for %s dead-lettered after %d attempts: %s",
            note.id,
            self.sub.callback,
            attempts,
            error,
        )


def to_redeliver(row: WebSubDeadLetter) -> bytes:
    return orjson.dumps(
        {
            "id": row.entry_id,
            "ct": row.content_type,
            "body": row.body.decode("latin-1"),
            "ts": row.published_at,
        }
    )


def _from_redeliver(raw: bytes) -> Notification:
    data = orjson.loads(raw)
    return Notification(data["id"], data["ct"], data["body"].encode("latin-1"), data["ts"])
