"""A worker child consuming a subscription's broker itself (`path: direct`).

No hop through the server, the task queue and a reply: the child reads up to its share of the
window (`DirectJob.share`), runs the function on each message in turn, publishes a rule's
output, writes the batch's records and counters in one call (`queue.FINISH`, with no queue
entry to acknowledge) and only then acknowledges the batch on the broker, once.

The guarantees of the queued path hold here by the same means: the child names the message it
runs in its shared-memory slot, so the supervisor kills it past the deadline (or the memory
limit) and notes the message's fate (`record_fate`: `timeout`, `memory`, or one more death);
its replacement claims the dead consumer's messages at once (`DirectConsumer.inherit`) and
finishes the noted one as its fate says (a timeout record, not another run), runs the others
again, and dead-letters a message whose child died `max_attempts` times. A watchdog thread
names the task of a message running past 0.1 s in the slot too, for the supervisor's heartbeat
(the cluster view's running tasks, task id included, as a queue child's). Retries of raised
exceptions run in place (the message is held meanwhile), a function's concurrency limit is
waited for, and the status goes to `keys.subscription_status` under the child's consumer name
every second, as a server's does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

import msgspec
import orjson
import redis

from fnhub import concurrency, tracing
from fnhub.backoff import Backoff, redis_retry
from fnhub.calling.errors import CallError
from fnhub.calling.maker import TaskMaker
from fnhub.config import Settings
from fnhub.connectors import (
    DirectConsumer,
    DirectPlace,
    Message,
    create_direct_consumer,
    get_publisher,
    get_type,
)
from fnhub.connectors.base import describe_error
from fnhub.heap import freeze_startup_objects
from fnhub.holders import connection_name
from fnhub.keys import Keys
from fnhub.node.executor import NodeDied
from fnhub.outage_log import OutageLog
from fnhub.queue import (
    FINISH,
    ResultBatch,
    add_dead_letter,
    add_result,
    add_retrying,
    add_successes,
    killed_result,
)
from fnhub.redis_client import async_redis
from fnhub.redis_replies import as_optional_list
from fnhub.shares import Shares
from fnhub.subscriptions.direct import DirectJob, consumer_args, session_client_id
from fnhub.subscriptions.messages import (
    error_message,
    kwargs_size_bound,
    message_kwargs,
    new_invoke_ids,
    output_bytes,
)
from fnhub.subscriptions.spec import PublishTarget
from fnhub.subscriptions.stats import SubscriptionStats
from fnhub.tasks import Origin, Status, Task, TaskResult, new_task_ids, result_for
from fnhub.worker.child import Retry, Slot, after_node_died, begin_child
from fnhub.worker.execute import Executor
from fnhub.worker.loader import WorkerScripts
from fnhub.worker.prefetch import CHECK_SECONDS
from fnhub.worker.processes import kill_session

log = logging.getLogger(__name__)

FATE_TTL_SECONDS = 86400
#: a child's partition leases in multiple mode (`fnhub.shares`): as a server's (runner.py)
SHARE_SECONDS = 3.0
STATUS_SECONDS = 1.0
STATUS_TTL_SECONDS = 30
SCRIPTS_REFRESH_SECONDS = 2.0
#: one of the batch's records (or dead letters, slot releases): added to its FINISH call
Write = Callable[[Any, Keys, ResultBatch], object]


def direct_consumer_name(worker_id: str, index: int, pid: int) -> str:
    return f"{worker_id}.d{index}.{pid}"


def _fate_field(kind: str, stream: str, entry_id: str) -> str:
    return f"{kind}|{stream} {entry_id}"


def record_fate(
    client: redis.Redis,
    keys: Keys,
    name: str,
    stream: str,
    entry_id: str,
    outcome: str,
    detail: str,
) -> None:
    """The supervisor's note on the message a killed or dead direct child was running:
    "crash" counts a death (its next run is the next attempt), "timeout" and "memory" are final
    (the next holder writes that outcome instead of running it again)."""
    key = keys.subscription_fates(name)
    pipe = client.pipeline(transaction=False)
    if outcome == "crash":
        pipe.hincrby(key, _fate_field("c", stream, entry_id), 1)
    else:
        pipe.hset(key, _fate_field("f", stream, entry_id), f"{outcome}|{detail}")
    pipe.expire(key, FATE_TTL_SECONDS)
    pipe.execute()


def _retrying(task: Task, failed: TaskResult) -> Write:
    """The record of an attempt that runs again."""
    return lambda pipe, keys, batch: add_retrying(pipe, keys, task, failed, batch)


def direct_main(
    worker_id: str,
    index: int,
    settings_json: str,
    job: DirectJob,
    slot: Slot,
    stop: Event,
    job_stop: Event,
    parent_pid: int,
    inherit: list[str],
) -> None:
    """Entry point of a direct child (forked by the fork server `parent_pid`): `stop` ends the
    worker, `job_stop` this subscription here; `inherit` names dead children's consumers whose
    messages come first."""
    settings, keys, client, executor = begin_child(settings_json, parent_pid)
    own_pid = os.getpid()
    scripts = executor.scripts
    spec = job.spec
    name = direct_consumer_name(worker_id, index, own_pid)
    group, options = consumer_args(spec)

    def shares() -> Shares:  # multiple mode: this child's share of the partitions, if leased
        return Shares(
            async_redis(settings),
            keys.subscription_members(spec.name),
            keys.subscription_share(spec.name),
            f"{name}/{secrets.token_hex(3)}",
            SHARE_SECONDS,
            connection=connection_name("child", name),  # this process (`fnhub.holders`)
        )

    consumer = create_direct_consumer(
        job.connector.type,
        job.connector.settings,
        topics=list(spec.topics),
        group=group,
        consumer=name,
        options=options,
        place=DirectPlace(
            spec.mode,
            index,
            job.children,
            job.share,
            session_client_id(spec, job.connector.name),
        ),
        shares=shares if spec.mode == "multiple" else None,
    )
    handler = DirectChild(settings, keys, client, scripts, executor, slot, job, consumer, name)
    handler.holder = worker_id
    freeze_startup_objects()

    def going() -> bool:
        if os.getpid() != own_pid:  # a copy user code forked: only the child reads
            os._exit(1)
        return not stop.is_set() and not job_stop.is_set() and os.getppid() == parent_pid

    try:
        handler.run(going, inherit)
    finally:
        consumer.close()
        handler.forget_status()
        executor.close()
        tracing.shutdown()
        leftovers = kill_session(own_pid, spare=own_pid)
        if leftovers:
            log.warning("direct child %s killed %d leftover process(es)", own_pid, len(leftovers))


class DirectChild:
    """The read → run → write → acknowledge loop of one direct child."""

    def __init__(
        self,
        settings: Settings,
        keys: Keys,
        client: redis.Redis,
        scripts: WorkerScripts,
        executor: Executor,
        slot: Slot,
        job: DirectJob,
        consumer: DirectConsumer,
        name: str,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.redis = client
        self.scripts = scripts
        self.executor = executor
        self.slot = slot
        self.job = job
        self.spec = job.spec
        self.consumer = consumer
        self.name = name
        self.holder = ""
        self.pid = os.getpid()
        self.stats = SubscriptionStats()
        self.stats.source = consumer.status
        self._finish = client.register_script(FINISH)
        self._writes: list[Write] = []  # records and counters of the batch, not yet sent
        # successes that need only their record and counters (`queue.add_successes`): the
        # batch's common case, gathered without a closure each
        self._successes: list[TaskResult] = []
        self._plain = False  # whether this batch's tasks hold no slot, key or caller
        self._counted: dict[str, int] = {}
        self._leaving = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self.going: Callable[[], bool] = lambda: True
        self._outage = OutageLog(log, f"subscription {self.spec.name}: cannot reach Redis")

    # -- the loop -----------------------------------------------------------------------------
    def run(self, going: Callable[[], bool], inherit: list[str]) -> None:
        self.going = going
        self._status_thread = threading.Thread(
            target=self._status_loop, name="direct-status", daemon=True
        )
        self._status_thread.start()
        self._watch_thread = threading.Thread(
            target=self._watch_loop, name="direct-watch", daemon=True
        )
        self._watch_thread.start()
        backoff = Backoff(initial=0.2, cap=5.0)
        opened = False
        share = self.job.share
        while going():
            try:
                if not opened:
                    self.consumer.open()
                    self.consumer.inherit(inherit)
                    inherit, opened = [], True
                msgs = self.consumer.read(share, 500)
                if msgs:
                    self.handle(msgs)
                backoff.reset()
            except (redis.RedisError, OSError) as exc:  # the broker (fnhub's Redis retries)
                text = describe_error(exc)
                log.warning("subscription %s: %s", self.spec.name, text)
                self.consumer.close()
                self.consumer.status.disconnected("reconnecting", text)
                opened = False
                time.sleep(backoff.next())

    def handle(self, msgs: list[Message]) -> None:
        """Run the function on each message, write the records, then acknowledge the batch
        (what a stop left unstarted stays unacknowledged, for the next holder)."""
        status = self.consumer.status
        status.in_flight = len(msgs)
        status.max_in_flight = max(status.max_in_flight, len(msgs))
        started = time.time()
        try:
            prepared = self._prepared(msgs)
        except CallError as exc:  # unknown function: every message fails, visibly
            for msg in msgs:
                self.stats.outcome(msg, Status.FAILURE, None, str(exc))
            self.stats.done((time.time() - started) * len(msgs), len(msgs))
            self._ack(msgs)
            return
        if prepared is None:
            return  # stopping: the batch stays unacknowledged, for the next holder
        make, fates = prepared
        convention = make.info.convention
        function = self.spec.function
        fn = self._python_function(make)
        template = make.template
        base = result_for(template, Status.SUCCESS)  # what every result here shares
        limit = int(make.concurrency) if make.concurrency else None  # `concurrency.limit_of`
        self._plain = limit is None and template.reply_to is None and template.status_key is None
        outcome = self.stats.outcome
        publishes = self.spec.publish is not None or self.spec.error_publish is not None
        record = self.spec.record
        size_bound = kwargs_size_bound(convention, msgs)
        success = Status.SUCCESS
        seconds = 0.0
        ran = 0  # the messages done: always the batch's first ones
        successes = 0  # counted in the stats once, after the loop
        last_success: tuple[Message, TaskResult] | None = None
        # the batch's common case, run without `_run`'s frames: a Python function (no
        # tracing), no concurrency limit, no retries, no message with a noted fate, kwargs
        # known to fit; what `make`, `_run`, `_attempt` and `_final` would do, inlined
        inline = (
            fn is not None
            and limit is None
            and not fates
            and not template.retries
            and convention == "kwargs"
            and size_bound is not None
            and size_bound <= make.kwargs_max_bytes
            and not make.check_kwargs
        )
        run_python, slot, plain = self.executor.run_python, self.slot, self._plain
        timeout, expires_at = template.timeout, started + make.expires
        replace, now_of = msgspec.structs.replace, time.time
        result: TaskResult | None
        for msg, task_id, invoke_id in zip(
            msgs, self._task_ids(msgs), new_invoke_ids(len(msgs)), strict=True
        ):
            meta: dict[str, Any] = {"topic": msg.topic, "qos": msg.qos, "invoke_id": invoke_id}
            if msg.message_id is not None:
                meta["message_id"] = msg.message_id
            if inline:
                assert fn is not None
                try:
                    text: str | bytes = msg.payload.decode()
                except UnicodeDecodeError:
                    text = msg.payload
                task = replace(
                    template,
                    id=task_id,
                    kwargs={"topic": msg.topic, "message": text},
                    trigger_time=started,  # the batch came in then
                    expires_at=expires_at,
                    meta=meta,
                )
                now = now_of()
                slot.set(msg.topic, msg.message_id or "", 0, now + timeout, now, task)
                try:
                    result = run_python(task, fn, base, now)
                finally:
                    slot.clear()
                if plain and result.status == success:
                    self._successes.append(result)
                else:
                    self._final(task, result)
            else:
                try:
                    task = make(
                        message_kwargs(convention, msg, invoke_id, function),
                        meta,
                        task_id=task_id,
                        size_at_most=size_bound,
                        now=started,  # the batch came in then
                    )
                except CallError as exc:  # too large: no retry can help
                    outcome(msg, Status.FAILURE, None, str(exc))
                    seconds += now_of() - started
                    ran += 1
                    continue
                result = self._run(task, msg, fates, fn, base, limit)
            if result is None or (publishes and not self._publish_outcome(msg, result)):
                break  # stopping: this and the rest stay unacknowledged
            if result.status == success:
                successes += 1
                last_success = msg, result
            else:
                task_id_shown = result.id if record else None
                outcome(msg, result.status, result.result, result.error_message, task_id_shown)
            ended = result.end_time or now_of()
            seconds += ended - started
            ran += 1
        done = msgs[:ran]
        if last_success is not None:
            msg, result = last_success
            outcome(
                msg, Status.SUCCESS, result.result, None, result.id if record else None, successes
            )
        self.stats.done(seconds, len(done))
        if os.getpid() != self.pid:  # a copy user code forked (by C code: `Executor.forks`)
            os._exit(1)
        forget = [f for msg in done if msg.message_id in fates for f in self._fate_fields(msg)]
        if forget:  # their fates are settled with them
            key = self.keys.subscription_fates(self.spec.name)
            self._writes.append(lambda pipe, _keys, _batch: pipe.hdel(key, *forget))
        self._flush()
        self._ack(done)

    def _task_ids(self, msgs: list[Message]) -> list[str]:
        """One task id per message, the same each time the message comes: the time of its
        entry, then a digest of (subscription, stream, entry id). A message handled again
        (its child died, or its batch was not acknowledged) keeps its task and its record:
        its attempts are that record's attempts, and a repeat replaces the row instead of
        adding one. Messages without an id get new ids."""
        if all(msg.message_id is not None and msg.timestamp for msg in msgs):
            fresh: list[str] = []  # not needed (Redis Streams, Kafka): not drawn
        else:
            fresh = new_task_ids(len(msgs))
        name = self.spec.name
        # the digest's common start hashed once per topic, each message's id added to a copy
        started: dict[str, Any] = {}
        ids = []
        stamp_ms, stamp = -1, ""  # the last millisecond's hex: a burst's messages share it
        for i, msg in enumerate(msgs):
            if msg.message_id is None:
                ids.append(fresh[i])
                continue
            ms = int(msg.timestamp * 1000) if msg.timestamp else int(fresh[i][:12], 16)
            head = started.get(msg.topic)
            if head is None:
                head = started[msg.topic] = hashlib.blake2b(
                    f"{name}\0{msg.topic}\0".encode(), digest_size=6
                )
            digest = head.copy()
            digest.update(msg.message_id.encode())
            if ms != stamp_ms:
                stamp_ms, stamp = ms, f"{ms:012x}"
            ids.append(stamp + digest.hexdigest())
        return ids

    def _ack(self, msgs: list[Message]) -> None:
        self.consumer.ack(msgs)
        self.consumer.status.in_flight = 0

    def _prepared(
        self, msgs: list[Message]
    ) -> tuple[TaskMaker, dict[str, tuple[int, str | None]]] | None:
        """The batch's task maker and its messages' noted fates, both read from fnhub's Redis.
        While Redis cannot be reached they are read again in place, within a second of its
        return (`backoff.redis_retry`), the batch held as `_flush` holds it: not by dropping
        the broker's connection for the reconnect loop's growing pauses. None: the worker
        stops meanwhile. CallError (from `_maker`): an unknown function."""
        backoff = redis_retry()
        while True:
            try:
                prepared = self._maker(), self._fates(msgs)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not self.going():
                    return None
                self._outage.failed(exc)
                time.sleep(backoff.next())
                continue
            self._outage.ok()
            return prepared

    def _maker(self) -> TaskMaker:
        scripts = self.scripts
        if time.monotonic() - scripts.refreshed_at > SCRIPTS_REFRESH_SECONDS:
            scripts.refresh()
        spec = self.spec
        assert spec.function is not None
        if scripts.active.function(spec.function) is None:
            scripts.refresh()  # maybe just published
        return TaskMaker(
            self.settings,
            scripts.active,
            spec.function,
            origin=Origin.SUBSCRIPTION,
            origin_id=spec.name,
            queue=spec.queue,
            record=spec.record,
            record_limit=spec.record_limit,
            check_kwargs=False,
        )

    def _python_function(self, make: TaskMaker) -> Callable[..., Any] | None:
        """The batch's function, looked up once, when it is Python and no tracing wraps each
        run; None sends every message through the executor's own lookup."""
        if tracing.hooks is not None:
            return None
        return self.executor.python_function(make.template)

    # -- one message ------------------------------------------------------------------------
    def _fate_fields(self, msg: Message) -> tuple[str, str]:
        assert msg.message_id is not None
        return (
            _fate_field("c", msg.topic, msg.message_id),
            _fate_field("f", msg.topic, msg.message_id),
        )

    def _fates(self, msgs: list[Message]) -> dict[str, tuple[int, str | None]]:
        """Deaths and final outcome noted for the messages that come again (one HMGET)."""
        again = [msg for msg in msgs if msg.redelivered]
        if not again:
            return {}
        fields = [f for msg in again for f in self._fate_fields(msg)]
        values = as_optional_list(
            self.redis.hmget(self.keys.subscription_fates(self.spec.name), fields)
        )
        fates: dict[str, tuple[int, str | None]] = {}
        for i, msg in enumerate(again):
            crashes, final = values[2 * i], values[2 * i + 1]
            if crashes is not None or final is not None:
                assert msg.message_id is not None
                fates[msg.message_id] = (
                    int(crashes or 0),
                    final.decode() if final is not None else None,
                )
        return fates

    def _run(
        self,
        task: Task,
        msg: Message,
        fates: dict[str, tuple[int, str | None]],
        fn: Callable[..., Any] | None = None,
        base: TaskResult | None = None,
        limit: int | None = None,
    ) -> TaskResult | None:
        """The message's final result (its records queued in `_writes`); None when the
        worker stops before it could run (a concurrency slot never came free). `fn`: the
        task's Python function, resolved for the batch (`_python_function`); `base`: the
        result of the batch's task template (`tasks.result_from`); `limit`: the function's
        concurrency limit, read once for the batch."""
        crashes, final = fates.get(msg.message_id or "", (0, None)) if fates else (0, None)
        if final is not None:  # killed on purpose while it ran: final, not run again
            kind, _, detail = final.partition("|")
            return self._final(task, killed_result(task, kind, detail))
        if crashes:
            if crashes >= task.max_attempts:
                dead = msgspec.structs.replace(task, attempt=crashes)
                self._writes.append(
                    lambda pipe, keys, _batch: add_dead_letter(
                        pipe, keys, dead, "worker process died"
                    )
                )
                return result_for(
                    dead,
                    Status.DEAD,
                    end_time=time.time(),
                    error_type="DeadLetter",
                    error_message=f"gave up after {crashes} attempt(s): worker process died",
                )
            before = msgspec.structs.replace(task, attempt=crashes)
            died = result_for(
                before,
                Status.RETRYING,
                end_time=time.time(),
                error_type="WorkerDied",
                error_message=f"the worker process died while attempt {crashes} of "
                f"{task.max_attempts} ran; it runs again",
            )
            self._writes.append(_retrying(before, died))
            self._flush()  # kept even if this attempt takes its child down too (rare)
            task = msgspec.structs.replace(task, attempt=crashes + 1)
        if limit:
            self._flush()  # finished messages of this batch may hold the slots this one needs
            while not concurrency.acquire(self.redis, self.keys, task, limit):
                if not self.going():
                    return None
                time.sleep(concurrency.RETRY_SECONDS)
        while True:
            outcome = self._attempt(task, msg, fn, base)
            if isinstance(outcome, TaskResult):
                return self._final(task, outcome)
            failed, retry = outcome.failed, outcome.task
            if failed is not None:
                self._writes.append(_retrying(task, failed))
            time.sleep(max(outcome.eta - time.time(), 0))
            task = retry

    def _attempt(
        self,
        task: Task,
        msg: Message,
        fn: Callable[..., Any] | None = None,
        base: TaskResult | None = None,
    ) -> TaskResult | Retry:
        """Run one attempt: its result, or the Retry its failure asks for."""
        executor = self.executor
        if fn is not None:  # Python: no slack past the deadline (that is for Node's own)
            now = time.time()
            self.slot.set(msg.topic, msg.message_id or "", 0, now + task.timeout, now, task)
        else:
            deadline = time.time() + task.timeout + executor.deadline_slack(task)
            self.slot.set(msg.topic, msg.message_id or "", 0, deadline, task=task)
        try:
            hooks = tracing.hooks
            if fn is not None:
                result = executor.run_python(task, fn, base, now)
            elif hooks is None:
                result = executor.run(task)
            else:
                result = hooks.run(task, executor.run)
        except NodeDied as exc:
            outcome = after_node_died(task, str(exc))
            assert outcome is not None
            return outcome
        finally:
            self.slot.clear()
        if result.status == Status.FAILURE and task.attempt <= task.retries:
            eta = time.time() + task.retry_delay * (2 ** (task.attempt - 1))
            return Retry(msgspec.structs.replace(task, attempt=task.attempt + 1), eta, result)
        return result

    def _final(self, task: Task, result: TaskResult) -> TaskResult:
        if self._plain and result.status == Status.SUCCESS:
            self._successes.append(result)
        else:
            self._writes.append(
                lambda pipe, keys, batch: add_result(pipe, keys, task, result, batch)
            )
        return result

    # -- a rule's output ----------------------------------------------------------------------
    def _publish_outcome(self, msg: Message, result: TaskResult) -> bool:
        """Publish what the rule says for this result; False if the worker stopped first."""
        spec = self.spec
        if result.status == Status.SUCCESS:
            if spec.publish is None:
                return True
            payload = output_bytes(result.result)
            return payload is None or self._publish(spec.publish, payload)
        target = spec.error_publish or spec.publish
        if target is None:
            return True
        return self._publish(target, error_message(spec, msg, result))

    def _publish(self, target: PublishTarget, payload: bytes) -> bool:
        """Publish with retries until the broker took it (the input is acknowledged after)."""
        connector_name, topic = self.spec.output_target(target)
        backoff = Backoff(initial=0.2, cap=5.0)
        while self.going():
            config = self.job.outputs.get(connector_name)
            if config is None:  # removed: the supervisor restarts this job when it is back
                self.stats.last_error = f"publish: no connector named '{connector_name}'"
                time.sleep(backoff.next())
                continue
            try:
                options = get_type(config.type).publish_options(msgspec.structs.asdict(target))
                get_publisher(config.name, config.type, config.settings).publish(
                    topic, payload, **options
                )
                self.stats.published += 1
                return True
            except Exception as exc:
                self.stats.last_error = f"publish to {connector_name}:{topic} failed: {exc}"
                log.warning("subscription %s: %s", self.spec.name, self.stats.last_error)
                time.sleep(backoff.next())
        return False

    # -- records and status -----------------------------------------------------------------
    def _flush(self) -> None:
        """Send the batch's records, counters, dead letters and slot releases (one FINISH,
        in a MULTI with the rarer commands); retried until fnhub's Redis takes them, since
        the messages are acknowledged only after."""
        if not self._writes and not self._successes:
            return
        backoff = redis_retry(0.05)
        while True:
            try:
                pipe = self.redis.pipeline(transaction=True)
                batch = ResultBatch()
                add_successes(batch, self._successes)
                for write in self._writes:
                    write(pipe, self.keys, batch)
                plan = batch.finish_plan(pipe, self.keys, {})
                if len(pipe):
                    pipe.eval(FINISH, 0, plan)
                    pipe.execute()
                else:
                    self._finish(args=[plan])
                self._writes, self._successes = [], []
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                n = len(self._writes) + len(self._successes)
                log.warning("cannot reach Redis to record %d result(s): %s", n, exc)
                time.sleep(backoff.next())

    def _status_loop(self) -> None:
        """Every second, from a thread of its own: a function that runs long, a publish or a
        concurrency slot waited for must not make the child look gone."""
        while True:
            try:
                self.write_status()
            except RuntimeError:  # the main thread changed a dict the snapshot read: next time
                pass
            except Exception:
                log.exception("subscription %s: status", self.spec.name)
            if self._leaving.wait(STATUS_SECONDS):
                return

    def _watch_loop(self) -> None:
        """The child's watchdog: names the running message's task in the slot once it ran
        `CHECK_SECONDS` (`Slot.describe`: the task the loop handed `Slot.set`), for the
        supervisor's heartbeat, as a queue child's does (`prefetch.SlowTaskWatch`)."""
        slot = self.slot
        while not self._leaving.wait(CHECK_SECONDS):
            since = slot.running_since()
            if since is not None and time.time() - since >= CHECK_SECONDS:
                slot.describe()

    def write_status(self) -> None:
        """This child's view in the subscription's status hash, and what it counted since
        the last write in the cluster-wide counters (`/metrics`)."""
        try:
            self.consumer.update_lag()
        except (redis.RedisError, OSError, ConnectionError):
            pass
        spec = self.spec
        snapshot = self.stats.snapshot()
        snapshot.update(
            server=self.name,
            node=socket.gethostname(),
            mode=spec.mode,
            holder=self.holder,
            subscribed=True,
            path="direct",
            at=time.time(),
        )
        counters = self.stats.counters()
        pipe = self.redis.pipeline(transaction=False)
        for counter, n in counters.items():
            delta = n - self._counted.get(counter, 0)
            if delta > 0:
                pipe.hincrby(self.keys.stats, f"sub|{spec.name}|{counter}", delta)
        key = self.keys.subscription_status(spec.name)
        pipe.hset(key, self.name, orjson.dumps(snapshot, default=str))
        pipe.expire(key, STATUS_TTL_SECONDS)
        try:
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("subscription %s: cannot write status: %s", spec.name, exc)
            return
        self._counted = counters

    def forget_status(self) -> None:
        """Leaving: the last counts, and no view of a child that is gone."""
        self._leaving.set()
        for thread in (self._status_thread, self._watch_thread):
            if thread is not None:
                thread.join(5)
        try:
            self.write_status()
            self.redis.hdel(self.keys.subscription_status(self.spec.name), self.name)
        except redis.RedisError:
            pass
