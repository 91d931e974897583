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
"""

from __future__ import annotations

import logging
import os
import time
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
        #: the replication id of the last primary seen confirming (`_learn`)
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

    async def _learn(self, conn: Any) -> None:
        """Note which primary just confirmed a write (at most once every LEARN_SECONDS)."""
        if time.monotonic() - self.learnt_at < LEARN_SECONDS:
            return
        (raw,) = await _commands(conn, [("INFO", "replication")])
        info = parse_info(raw)
        self.learnt_at = time.monotonic()
        if info.get("role") == "master":
            self._confirmed_by(info.get("master_replid", ""))

    async def execute(self, client: aredis.Redis, pipe: aredis.client.Pipeline) -> list[Any]:
        """Run `pipe`'s commands as one transaction, confirmed; its replies. CallError
        `not_replicated` when the primary took them but neither enough replicas confirmed
        within `timeout` nor is it a successor trusted alone: a failover may drop them."""
        scripts = {script.sha: script.script for script in pipe.scripts}
        commands = [_by_text(args, scripts) for args, _options in pipe.command_stack]
        pipe.command_stack.clear()
        pipe.scripts.clear()
        try:
            return await self._send(client, commands)
        except redis.ConnectionError:  # a demoted primary (READONLY), a dropped connection
            return await self._send(client, commands)

    async def _send(self, client: aredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
        pool = client.connection_pool
        conn = await pool.get_connection()
        try:
            wait = ("WAIT", self.replicas, max(1, round(self.timeout * 1000)))
            check = ("INFO", "replication")
            # trusted alone: whether it still is comes first (WAIT would time out each time);
            # read once, as another submission may change it while this one waits
            alone = self.alone is not None
            replies, (answer,) = await _transaction(conn, commands, [check if alone else wait])
            if alone:
                info = parse_info(answer)
                if self._trusted_alone(info):
                    return replies
                (answer,) = await _commands(conn, [wait])
            if int(answer) >= self.replicas:
                await self._learn(conn)
                return replies
            (raw,) = await _commands(conn, [check])
            if self._trusted_alone(parse_info(raw)):
                return replies
        except BaseException:
            await conn.disconnect()  # its replies may be out of step with what was sent
            raise
        finally:
            await pool.release(conn)
        raise CallError(
            "not_replicated",
            f"Redis took the task but fewer than {self.replicas} replica(s) confirmed it "
            f"within {self.timeout:g}s (a failover under way, or a replica down): it may be "
            "lost, or may still run",
            retry_after=RETRY_AFTER_SECONDS,
        )

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


async def _transaction(
    conn: Any, commands: list[tuple[Any, ...]], tail: list[tuple[Any, ...]]
) -> tuple[list[Any], list[Any]]:
    """MULTI, `commands`, EXEC, then `tail` in one write; EXEC's replies and the tail's."""
    packed = conn.pack_commands([("MULTI",), *commands, ("EXEC",), *tail])
    await conn.send_packed_command(packed, check_health=False)
    for _ in range(len(commands) + 1):  # OK, then QUEUED for each command
        await conn.read_response()
    replies = await conn.read_response()
    after = [await conn.read_response() for _ in tail]
    if replies is None:
        raise redis.ResponseError("the transaction was aborted (EXEC answered nil)")
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies, after


async def _commands(conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
    return [await conn.read_response() for _ in commands]
