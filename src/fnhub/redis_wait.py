"""Writes acknowledged only once a Redis replica has them (`WAIT`), for Sentinel deployments.

Redis replicates asynchronously. `SENTINEL FAILOVER` promotes the replica first and demotes
the old primary about 10 s later; clients move when the Sentinels name the new primary (about
1 s after the promotion, plus up to `redis_client.WATCH_SECONDS`). Whatever the old primary took
in between is dropped when it resyncs as a replica: an async call answered 202 in that second
never ran (docs/operations.md, "Redis Sentinel", has the trace and the figures).

`WAIT n timeout` on the connection that wrote answers how many replicas have everything that
connection wrote. A write a replica has survives that replica's promotion (Sentinel promotes
the replica that has the most); once promoted, the replica stops replicating from the old
primary, so a write taken there afterwards is confirmed by nobody, WAIT times out, and the
caller is told the task was not accepted (`CallError("not_replicated")`, HTTP 503) instead of
being answered 202 for a task about to vanish.

After the failover the new primary has no replica until the old one has resynced (16 s after
the promotion, with one replica, in the trace). Refusing every submission meanwhile would turn
each failover into that long an outage, so a primary without enough streaming replicas is
trusted alone when it is the successor of one seen with them: its `master_replid2` (the history
it was promoted from) is that primary's replication id (learnt by the caller's refresh once a
second, and on a confirming connection). The old primary, whose id did not change, never
qualifies. The price: until a replica has synced, what it takes is on that one server (a second
failure, or a second failover before the resync, then loses it, as asynchronous replication
would); logged.

WAIT must follow the writes on the same connection, and redis-py's transaction pipeline cannot
send a command after its EXEC: so MULTI, the pipeline's commands, EXEC and WAIT go in one write
on one connection of the client's pool, and `INFO replication` after them when WAIT fell short.
That exchange is written once (`ReplicaConfirm._steps`, a generator of requests) and driven by
an asyncio and a synchronous sender.

What is confirmed: every write whose caller is told it was accepted before it takes effect:
async calls and endpoints (`Caller.submit`), WebSub publishes (hub and `fnhub.websub.publish`),
subscription intents and a verified subscription's cursor (`websub.verify`), a script's
`DFF.FUNC`, a cron job's run-now (API and CLI), and `QueueClient`'s enqueue (the CLI's calls).
A synchronous process learns the primary only from its own confirmed writes (no refresh loop),
so right after a failover one that confirmed nothing before is refused until the new primary's
replica has synced.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator
from typing import Any

import redis
import redis.asyncio as aredis

from fnhub.calling.errors import CallError
from fnhub.config import Settings
from fnhub.redis_client import is_sentinel_url, redis_url

#: seconds a refused write's caller is asked to wait (the clients move within about 1.5 s)
RETRY_AFTER_SECONDS = 2.0
#: how often a confirmed write's connection is also asked which primary it is on
LEARN_SECONDS = 1.0

log = logging.getLogger(__name__)

Command = tuple[Any, ...]
#: what `ReplicaConfirm._steps` asks to send: a transaction's commands (None: no transaction)
#: and the commands after it
Request = tuple[list[Command] | None, list[Command]]
#: what it is sent back: EXEC's replies ([] without a transaction) and the tail's replies
Answers = tuple[list[Any], list[Any]]


_confirmers: dict[tuple[int, str, int, float], ReplicaConfirm] = {}


def confirmer(settings: Settings) -> ReplicaConfirm | None:
    """This process's `ReplicaConfirm` for the settings' Redis (one, so that what the caller
    and the hub learn about the primaries is shared), or None when no replica is waited for."""
    replicas = replicas_to_confirm(settings)
    if not replicas:
        return None
    key = (os.getpid(), redis_url(settings), replicas, settings.enqueue_replicas_timeout)
    if key not in _confirmers:
        _confirmers[key] = ReplicaConfirm(replicas, settings.enqueue_replicas_timeout)
    return _confirmers[key]


def replicas_to_confirm(settings: Settings) -> int:
    """`enqueue_replicas`, or by default 1 behind Sentinel (what a failover promotes) and 0
    on a single Redis (the embedded one included): no replica to wait for."""
    if settings.enqueue_replicas is not None:
        return settings.enqueue_replicas
    return 1 if is_sentinel_url(redis_url(settings)) else 0


async def run_confirmed(
    settings: Settings, client: aredis.Redis, pipe: aredis.client.Pipeline, what: str
) -> list[Any]:
    """Run `pipe`, an acknowledged write: confirmed by the replicas the settings wait for
    (`ReplicaConfirm.execute`, as one transaction), else plainly. Its replies."""
    confirm = confirmer(settings)
    if confirm is None:
        return await pipe.execute()
    return await confirm.execute(client, pipe, what)


def run_confirmed_sync(
    settings: Settings, client: redis.Redis, pipe: redis.client.Pipeline, what: str
) -> list[Any]:
    """`run_confirmed` for a synchronous client (the CLI, scripts in a worker)."""
    confirm = confirmer(settings)
    if confirm is None:
        return pipe.execute()
    return confirm.execute_sync(client, pipe, what)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_info(raw: Any) -> dict[str, str]:
    """An INFO reply's `key:value` lines."""
    pairs = (line.partition(":") for line in _text(raw).splitlines() if ":" in line)
    return {key: value.strip() for key, _, value in pairs}


def online_replicas(info: dict[str, Any]) -> int:
    """Replicas in `info` that are streaming (`state=online`): one still loading its full
    resync counts in `connected_slaves` but confirms nothing until it is done. (`slaveN` is a
    string here, a dict in redis-py's parsed INFO.)"""
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave")
        and (value.get("state") == "online" if isinstance(value, dict) else "state=online" in value)
    )


class ReplicaConfirm:
    """One per user (the caller's submissions, the hub's publishes): runs transactions that
    `replicas` replicas confirm (see the module)."""

    def __init__(self, replicas: int, timeout: float) -> None:
        self.replicas = replicas
        self.timeout = timeout
        #: the replication id of the last primary seen confirming (`_steps`, `refresh`)
        self.confirmed_replid: str | None = None
        self.learnt_at = -LEARN_SECONDS
        self.alone: str | None = None  # the successor primary trusted alone, for now

    async def refresh(self, client: aredis.Redis) -> None:
        """Note the primary `client` reaches if it has its replicas (the caller's refresh, once
        a second: a server that submitted nothing since the last resync still knows it)."""
        try:
            info: dict[str, Any] = await client.info("replication")
        except redis.ResponseError:  # INFO not permitted: learnt from confirmed writes only
            return
        if info.get("role") == "master" and online_replicas(info) >= self.replicas:
            self._confirmed_by(_text(info.get("master_replid", "")))

    def _confirmed_by(self, replid: str) -> None:
        if replid:
            self.confirmed_replid = replid
        if self.alone is not None:
            log.warning("Redis primary has %d replica(s) again", self.replicas)
            self.alone = None

    async def execute(
        self, client: aredis.Redis, pipe: aredis.client.Pipeline, what: str = "the task"
    ) -> list[Any]:
        """Run `pipe`'s commands as one transaction, confirmed; its replies. CallError
        `not_replicated` (naming `what`) when the primary took them but neither enough replicas
        confirmed within `timeout` nor is it a successor trusted alone: a failover may drop
        them."""
        commands = _commands_of(pipe)
        try:
            replies = await self._send(client, commands)
        except redis.ConnectionError:  # a demoted primary (READONLY), a dropped connection
            replies = await self._send(client, commands)
        return self._confirmed(replies, what)

    def execute_sync(
        self, client: redis.Redis, pipe: redis.client.Pipeline, what: str = "the task"
    ) -> list[Any]:
        """`execute` for a synchronous client (the CLI, a worker's scripts)."""
        commands = _commands_of(pipe)
        try:
            replies = self._send_sync(client, commands)
        except redis.ConnectionError:
            replies = self._send_sync(client, commands)
        return self._confirmed(replies, what)

    def _confirmed(self, replies: list[Any] | None, what: str) -> list[Any]:
        if replies is not None:
            return replies
        raise CallError(
            "not_replicated",
            f"Redis took {what} but fewer than {self.replicas} replica(s) confirmed it "
            f"within {self.timeout:g}s (a failover under way, or a replica down): it may be "
            "lost, or may still take effect",
            retry_after=RETRY_AFTER_SECONDS,
        )

    async def _send(self, client: aredis.Redis, commands: list[Command]) -> list[Any] | None:
        pool = client.connection_pool
        conn = await pool.get_connection()
        try:
            steps = self._steps(commands)
            request = next(steps)
            while True:
                answers = await _exchange(conn, request)
                try:
                    request = steps.send(answers)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
        except BaseException:
            await conn.disconnect()  # its replies may be out of step with what was sent
            raise
        finally:
            await pool.release(conn)

    def _send_sync(self, client: redis.Redis, commands: list[Command]) -> list[Any] | None:
        pool = client.connection_pool
        conn = pool.get_connection()
        try:
            steps = self._steps(commands)
            request = next(steps)
            while True:
                answers = _exchange_sync(conn, request)
                try:
                    request = steps.send(answers)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def _steps(self, commands: list[Command]) -> Generator[Request, Answers, list[Any] | None]:
        """The exchange with the primary, apart from its I/O (`_send`, `_send_sync` do it):
        yields each request (a transaction and what follows it on the connection, or plain
        commands), is sent its answers; returns the transaction's replies, None if refused."""
        wait = ("WAIT", self.replicas, max(1, round(self.timeout * 1000)))
        check = ("INFO", "replication")
        # trusted alone: whether it still is comes first (WAIT would time out each time);
        # read once, as another submission may change it while this one waits
        alone = self.alone is not None
        replies, (answer,) = yield commands, [check if alone else wait]
        if alone:
            if self._trusted_alone(parse_info(answer)):
                return replies
            _, (answer,) = yield None, [wait]
        if int(answer) >= self.replicas:
            # note which primary just confirmed a write (at most once every LEARN_SECONDS)
            if time.monotonic() - self.learnt_at >= LEARN_SECONDS:
                _, (raw,) = yield None, [check]
                self.learnt_at = time.monotonic()
                info = parse_info(raw)
                if info.get("role") == "master":
                    self._confirmed_by(info.get("master_replid", ""))
            return replies
        _, (raw,) = yield None, [check]
        return replies if self._trusted_alone(parse_info(raw)) else None

    def _trusted_alone(self, info: dict[str, str]) -> bool:
        """A primary short of replicas that took over from the last one seen with them."""
        if info.get("role") != "master":
            return False
        if online_replicas(info) >= self.replicas:
            return False  # its replicas are there: WAIT decides
        replid = info.get("master_replid")
        if self.alone is not None and replid == self.alone:
            return True
        if self.confirmed_replid is None or info.get("master_replid2") != self.confirmed_replid:
            return False
        log.warning(
            "Redis primary %s took over with %s replica(s): submissions are acknowledged "
            "without a replica's confirmation until %d replica(s) have synced",
            replid,
            online_replicas(info),
            self.replicas,
        )
        self.alone = replid
        return True


def _by_text(args: tuple[Any, ...], scripts: dict[str, Any]) -> tuple[Any, ...]:
    """A pipeline's EVALSHA as EVAL with the script's text: inside MULTI a script the server
    does not hold (a new primary, a restarted one) would fail the command, not the pipeline."""
    if args and args[0] == "EVALSHA" and args[1] in scripts:
        return ("EVAL", scripts[args[1]], *args[2:])
    return args


def _commands_of(pipe: Any) -> list[Command]:
    """A pipeline's queued commands (taken off it), its scripts' EVALSHAs as EVALs."""
    scripts = {script.sha: script.script for script in pipe.scripts}
    commands = [_by_text(args, scripts) for args, _options in pipe.command_stack]
    pipe.command_stack.clear()
    pipe.scripts.clear()
    return commands


def _framed(request: Request) -> list[Command]:
    """What a request sends in one write: MULTI, the commands, EXEC, then the tail (or the
    tail alone)."""
    commands, tail = request
    return tail if commands is None else [("MULTI",), *commands, ("EXEC",), *tail]


def _answers(request: Request, read: list[Any]) -> Answers:
    """EXEC's replies (empty without a transaction) and the tail's, from all replies read."""
    commands, tail = request
    if commands is None:
        return [], read
    replies = read[len(commands) + 1]  # after OK, then QUEUED for each command
    if replies is None:
        raise redis.ResponseError("the transaction was aborted (EXEC answered nil)")
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies, read[len(read) - len(tail) :]


async def _exchange(conn: Any, request: Request) -> Answers:
    sent = _framed(request)
    await conn.send_packed_command(conn.pack_commands(sent), check_health=False)
    return _answers(request, [await conn.read_response() for _ in sent])


def _exchange_sync(conn: Any, request: Request) -> Answers:
    sent = _framed(request)
    conn.send_packed_command(conn.pack_commands(sent), check_health=False)
    return _answers(request, [conn.read_response() for _ in sent])
