"""One subscription on one server: hold the lease (single mode), read, hand on, acknowledge.

The source (from `fnhub.connectors`) keeps the in-flight window, hands messages over in batches
and acknowledges each only after `handle_batch()` settled it. A message is settled when it is
done: its task finished (and, for a rule, the output was published), its SQL filter ran inline,
or it was refused for a reason that retrying cannot fix (counted and shown). While no worker
listens, or a publish fails, it keeps retrying with backoff, so the window fills and the source
stops reading from the broker. A batch of function calls is enqueued and awaited as one
(`Caller.call_many`), and each message is settled as its own result arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
import redis

from fnhub import tracing
from fnhub.backoff import Backoff, redis_retry
from fnhub.calling.caller import Caller
from fnhub.calling.errors import CallError
from fnhub.calling.maker import TaskMaker
from fnhub.connections import ConnectorConfig
from fnhub.connectors import (
    Message,
    Settle,
    Source,
    SourceArgs,
    create_source,
    get_async_publisher,
    get_type,
    stable_client_id,
)
from fnhub.connectors.base import CommitsPositions
from fnhub.lease import Lease
from fnhub.server.context import ServerContext
from fnhub.shares import Shares
from fnhub.subscriptions.messages import (
    error_message,
    kwargs_size_bound,
    message_kwargs,
    new_invoke_ids,
    output_bytes,
)
from fnhub.subscriptions.spec import PublishTarget, SubscriptionSpec
from fnhub.subscriptions.stats import SubscriptionStats
from fnhub.tasks import Origin, Status, Task, TaskResult, new_task_ids, result_for

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

LEASE_SECONDS = 3.0
POLL_SECONDS = 0.5


@dataclass(slots=True)
class _Batch:
    """Messages on their way through the function together, and what settling them needs."""

    msgs: list[Message]
    settle: Settle
    started: float
    publishing: list[asyncio.Task[None]] = field(default_factory=list)  # rules' output sends
    spans: list[Span] | None = None  # each message's span, while tracing is on

    def span(self, i: int) -> Span | None:
        return self.spans[i] if self.spans is not None else None


class Runner:
    def __init__(
        self,
        spec: SubscriptionSpec,
        connector: ConnectorConfig,
        connectors: dict[str, ConnectorConfig],
        ctx: ServerContext,
        caller: Caller,
        node: str,
    ) -> None:
        self.spec = spec
        self.connector = connector
        self.connectors = connectors
        self.ctx = ctx
        self.caller = caller
        self.node = node
        self.stats = SubscriptionStats()
        self.source: Source | None = None
        self.holder: str | None = None
        self._lease: Lease | None = None  # `single` mode's
        self.query: Any = None
        if spec.sql:
            from fnhub.sql import compile_sql

            self.query = compile_sql(spec.sql)

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            if self.spec.mode == "single":
                await self._run_single()
            else:
                self.holder = self.ctx.server_id
                await self._run_source()
        finally:
            await self._stop_source()

    async def _run_single(self) -> None:
        """Hold the Redis lease while subscribed; anyone may take it within LEASE_SECONDS of
        our death. A Redis blip shorter than the lease keeps the subscription (`fnhub.lease`)."""
        name = self.spec.name
        lease = Lease(
            self.ctx.redis,
            self.ctx.keys.subscription_lease(name),
            self.ctx.server_id,
            LEASE_SECONDS,
        )
        self._lease = lease  # the source commits only while it holds (`CommitsPositions`)
        while True:
            if not await lease.hold():
                self.holder = lease.holder
                if lease.error is not None:
                    self.stats.last_error = f"lease: {lease.error}"
                await asyncio.sleep(POLL_SECONDS)
                continue
            self.holder = lease.owner
            source_task = asyncio.create_task(self._run_source())
            try:
                while not source_task.done():
                    await asyncio.sleep(lease.renew_in())
                    if await lease.hold():
                        if lease.error is not None:
                            self.stats.last_error = (
                                f"lease renewal failed (still held for {lease.left():.1f}s, "
                                f"retrying): {lease.error}"
                            )
                        continue
                    if lease.error is not None:
                        why = f"it lapsed while Redis was unreachable: {lease.error}"
                    else:
                        why = f"{lease.holder} holds it"
                    log.warning("subscription %s: lease lost (%s); unsubscribing", name, why)
                    break
            finally:
                await self._stop_source()
                source_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await source_task
                await lease.release()
                self.holder = None
            failure = None if source_task.cancelled() else source_task.exception()
            if failure is not None:  # lease given back; the run is restarted (supervised)
                raise failure

    async def _run_source(self) -> None:
        spec = self.spec
        options = dict(spec.options)
        group = options.pop("group", None) or f"fnhub-{spec.name}"
        node = self.node if spec.mode == "multiple" else None
        client_id = options.pop("client_id", None) or stable_client_id(
            self.connector.name, spec.name, node
        )
        ct = get_type(self.connector.type)
        args = ct.source_args(
            SourceArgs(spec.name, spec.mode, list(spec.topics), group, client_id, options)
        )
        shares = None
        if spec.mode == "multiple" and ct.takes_shares:  # used if the options ask for it
            keys = self.ctx.keys
            shares = Shares(
                self.ctx.redis,
                keys.subscription_members(spec.name),
                keys.subscription_share(spec.name),
                f"{self.ctx.server_id}/{secrets.token_hex(3)}",  # this run of the source
                LEASE_SECONDS,
            )
        self.source = create_source(
            self.connector.type,
            self.connector.settings,
            topics=args.topics,
            window=spec.window,
            group=args.group,
            client_id=args.client_id,
            options=args.options,
            shares=shares,
        )
        lease = self._lease
        if lease is not None and isinstance(self.source, CommitsPositions):
            self.source.lease_held = lambda: lease.held
        self.stats.source = self.source.status
        await self.source.run(self.handle_batch)

    async def _stop_source(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            with contextlib.suppress(Exception):
                await source.stop()

    # -- messages ---------------------------------------------------------------------------
    async def handle_batch(self, msgs: list[Message], settle: Settle) -> None:
        """The source's batch handler: settle each message once it is done."""
        if self.spec.kind == "function":
            await self._run_functions(msgs, settle)
        else:
            await asyncio.gather(*(self._pass_on(i, msg, settle) for i, msg in enumerate(msgs)))

    async def _pass_on(self, i: int, msg: Message, settle: Settle) -> None:
        """A rule without a function: filter with SQL (inline) or forward as it is."""
        started = time.time()
        hooks = tracing.hooks
        span = None
        if hooks is not None:
            span = hooks.receive(self.spec.name, self.connector.type, msg.topic, msg.headers)
        status, error = "failure", "failed (see the server's log)"
        try:
            if self.spec.kind == "sql":
                from fnhub.sql import SqlContext

                out = self.query.evaluate(
                    msg.payload,
                    SqlContext(qos=msg.qos, topic=msg.topic, client_id=msg.client_id),
                )
                if out is not None:
                    await self._publish_output(
                        self.spec.publish, orjson.dumps(out, option=orjson.OPT_SORT_KEYS), span
                    )
                status = "success" if out is not None else "filtered"
                self.stats.outcome(msg, status, out, None)
            else:
                await self._publish_output(self.spec.publish, msg.payload, span)
                status = "success"
                self.stats.outcome(msg, "success", None, None)
        except Exception:
            log.exception("subscription %s: message on %s failed", self.spec.name, msg.topic)
            settle(i, False)
        else:
            settle(i, True)
        finally:
            self.stats.done(time.time() - started)
            if hooks is not None and span is not None:
                hooks.settle(span, status, None if status != "failure" else error)

    async def _run_functions(self, msgs: list[Message], settle: Settle) -> None:
        """Run the function once per message, the whole batch enqueued and awaited together;
        enqueues that fail are retried: within a second while Redis cannot be reached (it is
        back from a restart or failover in seconds: `backoff.redis_retry`), with pauses up to
        5 s when refused (no worker listens, the queue is full: each try re-reads the workers,
        and what ends it, a worker starting, may take minutes)."""
        batch = _Batch(msgs, settle, time.time())
        hooks = tracing.hooks
        if hooks is not None:
            kind, name = self.connector.type, self.spec.name
            batch.spans = [hooks.receive(name, kind, msg.topic, msg.headers) for msg in msgs]
        todo = list(range(len(msgs)))
        unreachable, refused = redis_retry(0.2), Backoff(initial=0.2, cap=5.0)
        try:
            while todo:
                todo, away = await self._call_function(batch, todo)
                if todo:
                    await asyncio.sleep((unreachable if away else refused).next())
            if batch.publishing:
                await asyncio.gather(*batch.publishing)
        finally:
            for task in batch.publishing:
                task.cancel()
            for span in batch.spans or ():
                if span.is_recording():  # not settled: the server is stopping
                    span.end()

    async def _call_function(self, batch: _Batch, todo: list[int]) -> tuple[list[int], bool]:
        """One attempt for the messages `todo` of the batch; returns those to try again, and
        whether that is because Redis could not be reached (else it refused them)."""
        spec = self.spec
        assert spec.function is not None
        caller = self.caller
        # maybe just published: look again (and never call it unknown while Redis is away)
        if caller.active.function(spec.function) is None and not await self._refresh():
            return todo, True
        try:
            make = TaskMaker(
                self.ctx.settings,
                caller.active,
                spec.function,
                origin=Origin.SUBSCRIPTION,
                origin_id=spec.name,
                queue=spec.queue,
                reply_to=caller.reply_stream,
                record=spec.record,
                record_limit=spec.record_limit,
                check_kwargs=False,
            )
        except CallError as exc:  # unknown function: every message fails, visibly
            for i in todo:
                self._finish(batch, i, self._refused(exc), enqueued=False)
            return [], False
        tasks: list[Task] = []
        index: list[int] = []
        convention = make.info.convention
        for i, task_id, invoke_id in zip(
            todo, new_task_ids(len(todo)), new_invoke_ids(len(todo)), strict=True
        ):
            msg = batch.msgs[i]
            meta = {"topic": msg.topic, "qos": msg.qos, "invoke_id": invoke_id}
            if msg.message_id is not None:  # an idempotency key for the function
                meta["message_id"] = msg.message_id
            try:
                task = make(
                    message_kwargs(convention, msg, invoke_id, spec.function),
                    meta,
                    task_id=task_id,
                    size_at_most=kwargs_size_bound(convention, msg),
                    parent=batch.span(i),
                )
            except CallError as exc:  # too large: retrying cannot help either
                self._finish(batch, i, self._refused(exc), enqueued=False)
                continue
            tasks.append(task)
            index.append(i)
        if not tasks:
            return [], False
        first = tasks[0]
        if not caller.queue_workers.get(first.queue):
            self.stats.last_error = f"no worker is listening on queue '{first.queue}'"
            return index, not await self._refresh()
        # a result can come as late as expiry + timeout; after that the task cannot run any more
        wait = max((first.expires_at or time.time()) - time.time(), 0) + first.timeout + 10
        try:
            calls = await caller.call_many(
                tasks, lambda j, result: self._finish(batch, index[j], result), wait
            )
        except CallError as exc:  # queue full, no worker
            self.stats.last_error = str(exc)
            return index, False
        if calls.unsent:  # Redis outage while enqueueing
            self.stats.last_error = f"enqueue failed: {calls.error}"
        return [index[j] for j in calls.unsent], bool(calls.unsent)

    async def _refresh(self) -> bool:
        """Re-read functions and workers; False (and shown) while Redis cannot be reached."""
        try:
            await self.caller.refresh()
        except (redis.RedisError, OSError) as exc:
            self.stats.last_error = f"cannot refresh functions and workers: {exc}"
            return False
        return True

    def _refused(self, exc: CallError) -> TaskResult:
        """The outcome of a message that no retry can help: a failure everyone can see."""
        assert self.spec.function is not None
        task = Task(
            function=self.spec.function, origin=Origin.SUBSCRIPTION, origin_id=self.spec.name
        )
        return result_for(task, Status.FAILURE, error_type=exc.kind, error_message=str(exc))

    def _finish(self, batch: _Batch, i: int, result: TaskResult, *, enqueued: bool = True) -> None:
        """Message i's task ended: publish what the rule says, then count and settle it. The
        outcome names the task when it has a record to open (it ran, and records are kept)."""
        spec = self.spec
        task_id = result.id if enqueued and spec.record else None
        publish: Coroutine[Any, Any, None] | None = None
        if result.status == Status.SUCCESS:
            if spec.publish is not None:
                payload = output_bytes(result.result)
                if payload is not None:
                    publish = self._publish(spec.publish, payload, batch.span(i))
        elif spec.error_publish or spec.publish:
            publish = self._publish_error(batch.msgs[i], result, batch.span(i))
        if publish is None:
            self._settle(batch, i, result, task_id)
        else:
            batch.publishing.append(
                asyncio.ensure_future(self._settle_after(publish, batch, i, result, task_id))
            )

    async def _settle_after(
        self,
        publish: Coroutine[Any, Any, None],
        batch: _Batch,
        i: int,
        result: TaskResult,
        task_id: str | None,
    ) -> None:
        await publish
        self._settle(batch, i, result, task_id)

    def _settle(self, batch: _Batch, i: int, result: TaskResult, task_id: str | None) -> None:
        self.stats.outcome(
            batch.msgs[i], result.status, result.result, result.error_message, task_id
        )
        self.stats.done(time.time() - batch.started)
        batch.settle(i, True)
        span = batch.span(i)
        if span is not None and tracing.hooks is not None:
            tracing.hooks.settle(span, result.status, result.error_message)

    async def _publish(
        self, target: PublishTarget, payload: bytes, span: Span | None = None
    ) -> None:
        """Publish with retries: the input is acknowledged only after this returns. With
        tracing on, in a `publish` span under the message's `span`, whose context the output
        carries where its broker has headers (`ConnectorType.carry_trace`)."""
        hooks = tracing.hooks
        if span is None or hooks is None:
            await self._send_output(target, payload)
            return
        connector_name, topic = self.spec.output_target(target)
        config = self.connectors.get(connector_name)
        system = config.type if config is not None else connector_name
        await hooks.publish(
            span, system, topic, lambda parent: self._send_output(target, payload, parent)
        )

    async def _send_output(
        self, target: PublishTarget, payload: bytes, traceparent: str | None = None
    ) -> None:
        connector_name, topic = self.spec.output_target(target)
        backoff = Backoff(initial=0.2, cap=5.0)
        while True:
            config = self.connectors.get(connector_name)
            if config is None:  # removed while in flight; the manager restarts this runner
                self.stats.last_error = f"publish: no connector named '{connector_name}'"
                await asyncio.sleep(backoff.next())
                continue
            try:
                kind = get_type(config.type)
                options = kind.publish_options(msgspec.structs.asdict(target))
                if traceparent is not None:
                    options = kind.carry_trace(options, traceparent, config.settings)
                publisher = await get_async_publisher(config.name, config.type, config.settings)
                await publisher.publish(topic, payload, **options)
                self.stats.published += 1
                return
            except Exception as exc:
                self.stats.last_error = f"publish to {connector_name}:{topic} failed: {exc}"
                log.warning("subscription %s: %s", self.spec.name, self.stats.last_error)
                await asyncio.sleep(backoff.next())

    async def _publish_output(
        self, target: PublishTarget | None, payload: bytes | None, span: Span | None
    ) -> None:
        if target is not None and payload is not None:
            await self._publish(target, payload, span)

    async def _publish_error(self, msg: Message, result: TaskResult, span: Span | None) -> None:
        target = self.spec.error_publish or self.spec.publish
        if target is None:
            return
        error = error_message(self.spec, msg, result)
        await self._publish(target, error, span)
