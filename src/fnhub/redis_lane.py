"""A Redis connection held by one hot loop, for the few commands each sync call costs.

A command through redis-py's client costs 40-100 µs of CPU on this path (the pool's get and
release under a lock, the retry wrapper, event dispatch and metrics hooks, and on asyncio a
`wait_for` task per write for the socket timeout): more than Redis takes to run it. A sync call
sends four such commands (the server's enqueue and its reply read, the worker child's read and
FINISH), so a lane takes one connection from the client's pool for good and sends each command
packed in one write on it, reading the reply straight from the connection: a fifth of the cost.

What the client gave stays: the connection is the pool's, made, authenticated and (through
Sentinel) pointed at the primary by redis-py, and reconnected after an error (redis-py's
connection drops itself when a read or write fails, or is cancelled; a ConnectionError is tried
once more, as the client's default retry does); a Sentinel pool's failover watch still reaches
it (`redis_client`: it shuts the sockets in use that point at the old primary, and marks them
for reconnect). Errors are redis-py's: ConnectionError and TimeoutError for the caller's retry
loop, ResponseError as sent.

Through Sentinel, a lane sends its commands through the client (`execute_command`, the script
object): a held connection did not follow a failover (acknowledged submissions went unrun in
`tests/server/test_sentinel.py`), and the failover handling is redis-py's there.

A lane is used by one task or thread at a time (each caller keeps its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aredis
from hiredis import pack_command  # C; redis-py's own packing is Python, a tenth of the cost
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError
from redis.sentinel import SentinelConnectionPool
from redis.typing import EncodableT, KeyT


def _packed(args: tuple[EncodableT, ...]) -> bytes:
    """The command in RESP, in one piece (hiredis's stub types its argument as a 1-tuple)."""
    return bytes(pack_command(args))  # type: ignore[arg-type]


def _script_args(
    script: Script | AsyncScript, keys: Sequence[EncodableT], args: Sequence[EncodableT]
) -> tuple[list[EncodableT], list[EncodableT]]:
    """EVALSHA's arguments, and EVAL's (which also loads the script) for Redis without it."""
    rest: list[EncodableT] = [len(keys), *keys, *args]
    return ["EVALSHA", script.sha, *rest], ["EVAL", script.script, *rest]


class SyncLane:
    """One connection of a synchronous client's pool (see the module)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._pool = client.connection_pool
        self._connection: Any = None
        self._direct = not isinstance(self._pool, SentinelConnectionPool)

    def execute(self, *args: EncodableT) -> Any:
        if not self._direct:
            return self._client.execute_command(*args)
        try:
            return self._send(args)
        except redis.ConnectionError:  # one retry, on a new connection, as the client does
            return self._send(args)

    def _send(self, args: tuple[EncodableT, ...]) -> Any:
        conn = self._connection
        if conn is None:
            conn = self._connection = self._pool.get_connection()
        elif conn.should_reconnect():  # the pool's primary moved (Sentinel)
            conn.disconnect()
        conn.send_packed_command([_packed(args)], check_health=False)
        return conn.read_response()

    def evalsha(
        self, script: Script, keys: Sequence[KeyT] = (), args: Sequence[EncodableT] = ()
    ) -> Any:
        if not self._direct:
            return script(keys=list(keys), args=list(args))
        by_sha, by_text = _script_args(script, keys, args)
        try:
            return self.execute(*by_sha)
        except NoScriptError:
            return self.execute(*by_text)

    def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            self._pool.release(conn)


class AsyncLane:
    """One connection of an asyncio client's pool (see the module). `timeout`: how long a
    reply may take (None: the client's socket timeout), enforced by one timer per command
    rather than by redis-py's task per write."""

    def __init__(self, client: aredis.Redis, timeout: float | None = None) -> None:
        self._client = client
        self._direct = not isinstance(client.connection_pool, AsyncSentinelConnectionPool)
        self._pool = client.connection_pool
        self._connection: Any = None
        self.timeout = timeout
        self._socket_timeout: float | None = None  # the connection's, given back with it

    async def _connect(self) -> Any:
        conn = await self._pool.get_connection()
        self._socket_timeout = conn.socket_timeout
        if self.timeout is None:
            self.timeout = conn.socket_timeout
        conn.socket_timeout = None  # the lane's own timer bounds each command
        self._connection = conn
        return conn

    async def execute(self, *args: EncodableT, timeout: float | None = None) -> Any:
        """The reply of one command, within `timeout` seconds (default: the lane's)."""
        if not self._direct:
            return await self._client.execute_command(*args)
        try:
            return await self._send(args, timeout)
        except redis.ConnectionError:  # one retry, on a new connection, as the client does
            return await self._send(args, timeout)

    async def _send(self, args: tuple[EncodableT, ...], timeout: float | None) -> Any:
        conn = self._connection
        if conn is None:
            conn = await self._connect()
        elif conn.should_reconnect():
            await conn.disconnect()
        limit = timeout if timeout is not None else self.timeout
        try:
            async with asyncio.timeout(limit):
                await conn.send_packed_command([_packed(args)], check_health=False)
                return await conn.read_response()
        except TimeoutError:  # the connection dropped itself on the cancelled read or write
            raise redis.TimeoutError(f"no reply from Redis within {limit}s") from None

    async def evalsha(
        self,
        script: AsyncScript,
        keys: Sequence[KeyT] = (),
        args: Sequence[EncodableT] = (),
    ) -> Any:
        if not self._direct:
            return await script(keys=list(keys), args=list(args))
        by_sha, by_text = _script_args(script, keys, args)
        try:
            return await self.execute(*by_sha)
        except NoScriptError:
            return await self.execute(*by_text)

    async def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.socket_timeout = self._socket_timeout
            await self._pool.release(conn)


def stream_reply(raw: Any) -> list[list[Any]]:
    """An XREAD / XREADGROUP reply (RESP3's map of streams or RESP2's list of pairs) as
    redis-py's client parses it (`[[stream, [(id, fields dict)]]]`, [] when the block timed
    out), so `redis_replies.as_streams` types it as usual."""
    if not raw:
        return []
    out = []
    for stream, entries in raw.items() if isinstance(raw, dict) else raw:
        parsed = []
        for entry_id, flat in entries:  # (a client's reply, through Sentinel: fields a dict)
            if flat is None:  # a pending entry re-read after it was deleted
                fields = None
            elif isinstance(flat, dict) or not flat:
                fields = flat or {}
            else:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
            parsed.append((entry_id, fields))
        out.append([stream, parsed])
    return out
