"""The small interface every broker connector implements, and the pieces they share.

A *source* reads messages with a bounded in-flight window and acknowledges each one only after the
caller's handler returned; a *publisher* sends messages. Each broker folder describes itself with
a `ConnectorType`, listed in `fnhub.connectors.types`; callers use the functions in
`fnhub.connectors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import msgspec
from pydantic import BaseModel, ValidationError

from fnhub.aio import wait_event
from fnhub.supervised import spawn

log = logging.getLogger("fnhub.connectors")

M = TypeVar("M", bound=BaseModel)


class ConnectorError(Exception):
    """A broker could not be reached or refused an operation; the message says which and why."""


class ConnectorConfigError(ConnectorError, ValueError):
    """Connector settings or source options are invalid; the message names the field."""


class Message(msgspec.Struct):
    """One message from a broker. A msgspec struct, not a dataclass: a direct child builds
    one per message read, and a struct is built in half the time."""

    topic: str
    payload: bytes
    qos: int = 0
    timestamp: float = 0.0  # epoch seconds (broker timestamp if any, else receipt)
    key: bytes | None = None  # kafka
    headers: dict[str, bytes] = {}  # a new dict for each message (msgspec copies it)
    partition: int | None = None  # kafka
    offset: int | None = None  # kafka offset
    #: a stable id the broker gives the message (redis stream entry id, "topic:partition:offset"
    #: for kafka); none for MQTT, whose packet ids are reused and change on redelivery
    message_id: str | None = None
    client_id: str = ""  # the subscribing client's id (for SQL clientid())
    redelivered: bool = False  # the broker says it may have been delivered before (MQTT DUP)


@dataclass
class SourceStatus:
    """Live state of one source, mutated by the source and read by status endpoints."""

    state: str = "idle"  # connecting | connected | reconnecting | disconnected | stopped
    last_error: str | None = None
    last_error_at: float | None = None
    received: int = 0
    acked: int = 0
    in_flight: int = 0
    dropped: int = 0  # only buffers that cannot push back drop (redis pub/sub, MQTT QoS 0)
    lag: int | None = None  # where the broker reports it (redis streams XINFO GROUPS lag)
    #: `lag` counts this member's share only (Kafka: its assigned partitions), so the group's
    #: lag is the sum over members; else it is the whole group's, the same from every member
    lag_per_member: bool = False
    pending: int | None = None  # redis streams: entries delivered to the group but not acked
    failed: int = 0  # handlers that raised (message left unacked)
    connected_since: float | None = None
    max_in_flight: int = 0  # highest in-flight count seen, to prove the window holds

    def error(self, text: str) -> None:
        self.last_error = text
        self.last_error_at = time.time()

    def connected(self) -> None:
        self.state = "connected"
        self.connected_since = time.time()

    def disconnected(self, state: str, text: str | None = None) -> None:
        self.state = state
        self.connected_since = None
        if text:
            self.error(text)


Handler = Callable[[Message], Awaitable[None]]  # one message: wrap it with `each()`
Settle = Callable[[int, bool], None]  # settle(i, ok): message i of the batch is done
BatchHandler = Callable[[list[Message], Settle], Coroutine[Any, Any, None]]
Done = Callable[[Message, bool], None]  # the source's own per-message completion (ack)


@runtime_checkable
class Source(Protocol):
    status: SourceStatus

    async def run(self, handler: BatchHandler) -> None:
        """Read until stop(); reconnect with capped jittered backoff; never return on outages."""
        ...

    async def stop(self) -> None:
        """Stop reading, wait for in-flight handlers (bounded), ack what finished, close."""
        ...


@runtime_checkable
class CommitsPositions(Protocol):
    """A source that keeps its read position in the broker for whoever reads next (Kafka's
    committed offsets). In `single` mode the runner sets `lease_held` (the subscription's lease
    is still ours by our clock): once it is not, the next holder may already have read the
    position, so the source commits nothing more."""

    lease_held: Callable[[], bool] | None


@dataclass(frozen=True, slots=True)
class DirectPlace:
    """Where a direct consumer stands among the children of one worker consuming the same
    subscription: a broker that hands out work itself (a Redis Streams or Kafka group) needs
    none of it; one whose reader picks its own share (Kafka without a group join, in `single`
    mode) splits by `index` of `children`; one whose session a client holds (MQTT) resumes it
    under `client_id`."""

    mode: str = "multiple"  # the subscription's: single | multiple
    index: int = 0
    children: int = 1
    #: the messages this child holds at most (its share of the window; 0: not told)
    window: int = 0
    #: the subscription's stable client id (`stable_client_id` of connector and subscription,
    #: as the queued path's `single` mode names it), for brokers whose sessions a client id
    #: names (MQTT: a replaced child resumes the session and gets its messages again)
    client_id: str = ""


@runtime_checkable
class DirectConsumer(Protocol):
    """A broker consumer for a worker child (a subscription's direct path): synchronous, read
    and acknowledged a batch at a time, never acknowledging what was not handed back to `ack`."""

    status: SourceStatus

    def open(self) -> None:
        """Connect (and create the group or consumer where the broker needs one)."""
        ...

    def inherit(self, consumers: Sequence[str]) -> None:
        """Take over what these consumers (known dead) held unacknowledged."""
        ...

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to `count` messages, waiting up to `block_ms` for the first."""
        ...

    def ack(self, msgs: Sequence[Message]) -> None:
        """Acknowledge these messages (handled), in as few round trips as the broker allows."""
        ...

    def update_lag(self) -> None:
        """Refresh `status.lag` and `status.pending` where the broker tells them."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Publisher(Protocol):
    def publish(self, topic: str, message: Any, **options: Any) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncPublisher(Protocol):
    async def publish(self, topic: str, message: Any, **options: Any) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class SourceArgs:
    """What a subscription asks of a source, before its broker's quirks apply: the connector
    type's `source_args` hook turns it into what `create_source` gets (an MQTT shared
    subscription in `multiple` mode, a Redis stream consumer named in the options, ...)."""

    subscription: str
    mode: str  # single (one holder at a time) | multiple (every server, sharing the messages)
    topics: list[str]
    group: str
    client_id: str
    options: dict[str, Any]


#: the message header (Kafka, NATS, RabbitMQ), MQTT 5 user property or Redis stream field that
#: carries a message's W3C trace context in and out (docs/tracing.md)
TRACEPARENT = "traceparent"


def no_trace(
    options: dict[str, Any], _traceparent: str, _settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Brokers whose messages have no headers (Redis pub/sub): the trace stops at the publish."""
    return options


def trace_in_headers(
    options: dict[str, Any], traceparent: str, _settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Publish options whose `headers` carry `traceparent` (Kafka, NATS, RabbitMQ)."""
    return {**options, "headers": {**(options.get("headers") or {}), TRACEPARENT: traceparent}}


def exact_match(topic_filter: str, topic: str) -> bool:
    """Brokers without wildcards: a filter matches the topic of the same name only."""
    return topic_filter == topic


def same_args(args: SourceArgs) -> SourceArgs:
    return args


def target_options(target: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's output target's own `options` (e.g. `{exchange: audit}`), passed as they are."""
    return dict(target.get("options") or {})


@dataclass(frozen=True)
class ConnectorType:
    """Everything fnhub knows about one broker, given by its folder (`connectors/<broker>/`)
    and named once in `fnhub.connectors.types.CONNECTOR_TYPES`.

    The hooks hold the broker's quirks so nothing outside its folder tests for its name:
    `topic_matches(filter, topic)` says whether a subscription's filter matches a topic (the
    cycle check of routes and rules); `source_args` adapts a subscription's request (shared
    subscriptions, consumer names); `publish_options(target)` turns a rule's output target
    (`qos`, `retain`, `kind`, `options`, as written in fnhub.yaml) into keyword arguments for
    the broker's publisher; `carry_trace(options, traceparent, settings)` adds a W3C
    `traceparent` to such options, where the broker's messages have headers (while tracing is
    on: a rule's output continues the trace of the message it came from);
    `create_direct_consumer` makes a worker child's own consumer.
    """

    name: str
    settings_model: type[BaseModel]
    source_options: type[BaseModel]
    create_source: Callable[..., Source]
    test_connection: Callable[[Any, float], Awaitable[None]]
    create_publisher: Callable[[Any], Publisher]
    create_async_publisher: Callable[[Any], Awaitable[AsyncPublisher]]
    topic_matches: Callable[[str, str], bool] = exact_match
    source_args: Callable[[SourceArgs], SourceArgs] = same_args
    publish_options: Callable[[Mapping[str, Any]], dict[str, Any]] = target_options
    carry_trace: Callable[[dict[str, Any], str, Mapping[str, Any]], dict[str, Any]] = no_trace
    #: offered in the console's connector forms (the in-memory test broker is not)
    in_console: bool = True
    #: a worker child's own consumer (`path: direct`), called with the parsed settings and
    #: `topics`, `group`, `consumer`, `options` (the source options) and `place` (a
    #: `DirectPlace`); None: the broker has no direct path yet
    create_direct_consumer: Callable[..., DirectConsumer] | None = None
    #: the direct path's `single` mode runs one child on the holder, not `processes` of them:
    #: the broker splits nothing among them (an MQTT subscription is one client's session)
    direct_one_child: bool = False
    #: `multiple` mode's servers (and direct children) may share the source's partitions
    #: through fnhub's Redis (`fnhub.shares`; Kafka's `assignment: lease`): `create_source`
    #: also gets `shares`, `create_direct_consumer` a function making one
    takes_shares: bool = False


def parse_model(model: type[M], data: dict[str, Any] | None, what: str) -> M:
    """Validate `data` into `model`, turning pydantic errors into one message naming each field."""
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(root)"
            problems.append(f"{where}: {err['msg']}")
        raise ConnectorConfigError(f"invalid {what}: " + "; ".join(problems)) from None


def encode_payload(message: Any) -> bytes:
    """bytes pass through, str is UTF-8, anything else (dict, list, numbers) becomes JSON."""
    if isinstance(message, bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    if isinstance(message, str):
        return message.encode()
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def stable_client_id(connector: str, subscription: str, node: str | None = None) -> str:
    """A client id that stays the same across restarts so persistent broker sessions resume.

    Readable prefix plus a hash of the full identity, so long or odd names stay unique and
    valid for brokers that restrict client ids. `node` distinguishes servers in `multiple` mode.
    """
    ident = f"{connector}/{subscription}/{node or ''}"
    digest = hashlib.sha1(ident.encode()).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{connector}-{subscription}")[:40]
    return f"fnhub-{readable}-{digest}"


def settings_hash(connector_type: str, settings: dict[str, Any]) -> str:
    raw = json.dumps([connector_type, settings], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class RateLimitedLog:
    """Log a recurring warning at most once per `interval` seconds, with the count since."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._suppressed = 0

    def warning(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            extra = f" ({self._suppressed} similar suppressed)" if self._suppressed else ""
            log.warning(msg + extra, *args)
            self._last = now
            self._suppressed = 0
        else:
            self._suppressed += 1


class _Batch:
    """Messages handed to the handler together, each settled once: by the handler, or when its
    task ends (returned: handled; raised: failed; cancelled at stop: left unacked)."""

    __slots__ = ("items", "left", "settled", "window")

    def __init__(self, window: Window, items: list[tuple[Message, Done]]) -> None:
        self.window = window
        self.items = items
        self.settled = [False] * len(items)
        self.left = len(items)

    def settle(self, i: int, ok: bool) -> None:
        if self.settled[i]:
            return
        self.settled[i] = True
        self.left -= 1
        msg, done = self.items[i]
        if not ok:
            self.window.status.failed += 1
        try:
            done(msg, ok)
        finally:  # a source's bug must not shrink the window for good
            self.window.release(1)

    def finished(self, task: asyncio.Task[None]) -> None:
        self.window.tasks.discard(task)
        if task.cancelled():
            left = [i for i, s in enumerate(self.settled) if not s]
            if left:
                log.warning("handler cancelled at stop; %d message(s) left unacked", len(left))
            try:
                for i in left:
                    self.settled[i] = True
                    self.left -= 1
                    msg, done = self.items[i]
                    done(msg, False)
            finally:
                self.window.release(len(left))
            return
        ok = task.exception() is None
        if ok and not self.left:  # the handler settled every message, as batch handlers do
            return
        if not ok:
            log.error(
                "handler failed for %d message(s) on %s; left unacked",
                self.settled.count(False),
                self.items[0][0].topic,
                exc_info=task.exception(),
            )
        for i in range(len(self.items)):
            self.settle(i, ok)


class Window:
    """The bounded set of in-flight messages of one source.

    Sources reserve room before reading from the broker and `spawn` each message they read.
    Messages spawned in the same event-loop iteration reach the handler as one batch, in one
    asyncio task: per-message tasks cost more than the rest of the server's path together.
    The handler settles each message as it finishes (`settle(i, ok)`), where the source acks
    it (ok) or leaves it unacked (failed, or cancelled at stop); messages the handler did not
    settle are settled when it returns (ok) or raises (failed).
    """

    def __init__(self, size: int, status: SourceStatus) -> None:
        if size < 1:
            raise ConnectorConfigError("window: must be at least 1")
        self.size = size
        #: how much room a busy source waits for before it reads again: batches of a quarter
        #: window rather than of whatever a few results freed, so what a batch costs (a read,
        #: an enqueue, an asyncio task) is paid per hundred messages, not per handful
        self.refill = max(1, size // 4)
        self.status = status
        self.handler: BatchHandler | None = None  # set by the source's run()
        self.count = 0  # spawned and not yet settled
        self.tasks: set[asyncio.Task[None]] = set()
        self._gathering: list[tuple[Message, Done]] = []
        self._room = asyncio.Event()  # set while `free` >= `_wanted`
        self._room.set()
        self._wanted = 1
        self._empty = asyncio.Event()
        self._empty.set()
        self.on_release: Callable[[], None] | None = None  # e.g. hand out buffered messages

    @property
    def free(self) -> int:
        return self.size - self.count

    async def wait_room(self, timeout: float | None = None, n: int = 1) -> bool:
        """Wait until at least `n` slots are free; False if `timeout` passed first. One waiter
        at a time (the source's reader): it tells `release()` how much room to wait for."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._wanted = n  # release() wakes us once, when there is enough, not per message
        try:
            while self.free < n:
                self._room.clear()
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return False
                if not await wait_event(self._room, remaining):
                    return False
            return True
        finally:
            self._wanted = 1

    def spawn(self, msg: Message, done: Done) -> None:
        """Take `msg` into the window; it goes to the handler with the others of this turn."""
        self.spawn_many([(msg, done)])

    def spawn_many(self, items: list[tuple[Message, Done]]) -> None:
        """`spawn` for what one broker read gave: the window's bookkeeping once for all, which
        per message cost about as much as making the message."""
        if not items:
            return
        if not self._gathering:
            asyncio.get_running_loop().call_soon(self._start)
        self._gathering += items
        self.count = n = self.count + len(items)
        status = self.status
        status.in_flight = n
        status.received += len(items)
        if n > status.max_in_flight:
            status.max_in_flight = n
        if n >= self.size:
            self._room.clear()
        self._empty.clear()

    def _start(self) -> None:
        items, self._gathering = self._gathering, []
        if not items:
            return
        assert self.handler is not None, "the source's run() sets the handler"
        batch = _Batch(self, items)
        try:
            work = self.handler([msg for msg, _ in items], batch.settle)
        except Exception:  # not even a coroutine (a one-message handler not wrapped in each())
            log.exception("handler could not start; %d message(s) left unacked", len(items))
            for i in range(len(items)):
                batch.settle(i, False)
            return
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(batch.finished)

    def release(self, n: int) -> None:
        if not n:
            return
        self.count -= n
        self.status.in_flight = self.count
        if self.size - self.count >= self._wanted:
            self._room.set()
        if not self.count:
            self._empty.set()
        if self.on_release is not None:
            self.on_release()

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` for running handlers, then cancel the rest (they stay unacked)."""
        if not self.count:
            return
        if await wait_event(self._empty, timeout):
            return
        log.warning("%d messages still in flight after %.1fs; cancelling", self.count, timeout)
        items, self._gathering = self._gathering, []
        for msg, done in items:  # spawned but never handed to the handler
            done(msg, False)
        self.release(len(items))
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def each(handler: Handler) -> BatchHandler:
    """A batch handler that runs a one-message `handler` on every message of a batch at once
    and settles each message when its own call ends (raised: left unacked, and logged)."""

    async def run_batch(msgs: list[Message], settle: Settle) -> None:
        async def one(i: int, msg: Message) -> None:
            try:
                await handler(msg)
            except Exception:
                log.exception("handler failed for message on %s; message left unacked", msg.topic)
                settle(i, False)
            else:
                settle(i, True)

        await asyncio.gather(*(one(i, msg) for i, msg in enumerate(msgs)))

    return run_batch


class ReadingSource:
    """The life cycle sources with a reader task share: read until stop(), then drain the
    window (acking what finished) and close. Subclasses implement `_read_forever` and may
    override `_before_drain` and `_close`."""

    client_id = ""  # names the source in logs

    def __init__(self, window: int, drain_timeout: float) -> None:
        self.status = SourceStatus()
        self._window = Window(window, self.status)
        self._drain_timeout = drain_timeout
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()

    async def run(self, handler: BatchHandler) -> None:
        if self._stopping:
            return
        self._window.handler = handler
        # the reader handles broker errors itself; anything else restarts it (counted)
        self._reader = spawn("source-reader", self._read_forever, label=self.client_id)
        try:
            await self._stopped.wait()
        finally:
            if not self._stopped.is_set():
                await self._shutdown(0)

    async def stop(self) -> None:
        await self._shutdown(self._drain_timeout)

    async def _shutdown(self, drain_timeout: float) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._before_drain()
        await self._window.drain(drain_timeout)
        await self._close()
        self.status.disconnected("stopped")
        self._stopped.set()

    async def _read_forever(self) -> None:
        raise NotImplementedError

    def _before_drain(self) -> None:
        """Forget what was read but never handed to a handler (it stays unacked)."""

    async def _close(self) -> None:
        """Close broker connections after the window drained."""


def describe_error(exc: BaseException) -> str:
    """`Class: text`, plus the OS reason (e.g. "Connection refused") found in the cause chain,
    since client libraries often wrap it as a bare "Error 111"."""
    text = str(exc) or exc.__class__.__name__
    out = f"{exc.__class__.__name__}: {text}" if text != exc.__class__.__name__ else text
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        errno = getattr(cur, "errno", None)
        if isinstance(cur, OSError) and isinstance(errno, int) and errno > 0:
            reason = os.strerror(errno)
            if reason.lower() not in out.lower():
                out += f" ({reason})"
            break
        cur = cur.__cause__ or cur.__context__
    return out
