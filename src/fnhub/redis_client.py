"""Redis clients built from settings: the configured URL, or the embedded server's socket.

Every client here returns bytes (no ``decode_responses``) and speaks RESP2: fnhub.redis_replies
types the replies on that promise.

A `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]` URL names
Sentinels rather than a server: each client asks them for the service's primary when it
connects, and a connection that finds its server demoted (READONLY, or the UNBLOCKED error a
blocked XREADGROUP gets) is dropped and raises ConnectionError, so the next command, retried by
the caller's own loop, goes to the new primary (redis-py's `SentinelConnectionPool`). The
password is the data servers'; Sentinels that need one of their own take `?sentinel_password=`.

redis-py asks the Sentinels only when it opens a connection, and a primary demoted while it is
up (`SENTINEL FAILOVER`, a partition) keeps taking writes until the Sentinels reconfigure it,
about 10 s later; whatever it took meanwhile is thrown away when it resyncs as a replica. So
each process asks the Sentinels itself every `WATCH_SECONDS` (`_Watcher`, a daemon thread);
once the primary moved, its pools close their idle connections and mark those in use to close
when released, and the next command of every client goes to the new primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aredis
import redis.asyncio.sentinel as asentinel
import redis.sentinel as sentinel
from redis.retry import Retry

from fnhub.config import Settings
from fnhub.embedded_redis import embedded_url

SENTINEL_SCHEME = "redis+sentinel"
TLS_SENTINEL_SCHEME = "rediss+sentinel"  # refused with the reason: not supported
SENTINEL_PORT = 26379
#: how long one Sentinel may take to answer "who is the primary?" before the next is asked
SENTINEL_TIMEOUT = 1.0
#: how often each process asks the Sentinels where the primary is
WATCH_SECONDS = 0.5

log = logging.getLogger(__name__)


class ClientOptions(TypedDict, total=False):
    """The connection settings callers tune; anything left out keeps redis-py's default."""

    socket_timeout: float
    socket_connect_timeout: float


class SyncClientOptions(ClientOptions, total=False):
    retry: Retry  # the synchronous client's kind (redis.asyncio has its own)


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed `redis+sentinel://` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def redis_url(settings: Settings) -> str:
    return settings.redis_url or embedded_url(settings.data_dir)


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith((SENTINEL_SCHEME + "://", TLS_SENTINEL_SCHEME + "://"))


def parse_sentinel_url(url: str) -> SentinelUrl:
    """`redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`;
    ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme.lower() == TLS_SENTINEL_SCHEME:
        raise ValueError(
            f"{TLS_SENTINEL_SCHEME}:// (TLS to the Sentinels and the servers) is not supported: "
            f"use {SENTINEL_SCHEME}:// on a network you trust, or rediss:// to one server"
        )
    if parts.scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    credentials, _, hosts = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if credentials:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(item) for item in hosts.split(",") if item)
    if not sentinels:
        raise ValueError(f"{SENTINEL_SCHEME}:// needs at least one Sentinel host:port")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(f"{SENTINEL_SCHEME}:// needs /service_name or /service_name/db")
    try:
        db = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise ValueError(f"database number {path[1]!r} is not an integer") from None
    query = parse_qs(parts.query)
    unknown = set(query) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} (sentinel_password)")
    given = query.get("sentinel_password")
    return SentinelUrl(sentinels, path[0], db, username, password, given[-1] if given else None)


def _host_port(item: str) -> tuple[str, int]:
    host, port = item, SENTINEL_PORT
    if item.startswith("["):  # [IPv6]:port
        end = item.find("]")
        host, rest = item[1:end], item[end + 1 :]
        if rest.startswith(":"):
            port = int(rest[1:])
    elif item.count(":") == 1:
        host, raw = item.split(":")
        try:
            port = int(raw)
        except ValueError:
            raise ValueError(f"Sentinel port {raw!r} is not a number") from None
    if not host:
        raise ValueError(f"Sentinel address {item!r} has no host")
    return host, port


def redacted_url(url: str) -> str:
    """`url` without its passwords, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    if at and ":" in credentials:
        netloc = f"{credentials.partition(':')[0]}:***@{hosts}"
    if "password=" in tail:
        path, _, query = tail.partition("?")
        pairs = [
            f"{k}=***" if k.endswith("password") else f"{k}{eq}{v}"
            for k, eq, v in (p.partition("=") for p in query.split("&"))
        ]
        tail = f"{path}?{'&'.join(pairs)}"
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def _sentinel_kwargs(parsed: SentinelUrl, options: dict[str, Any]) -> dict[str, Any]:
    """The Sentinels' own connections: short timeouts (an answer is one round trip; a dead
    Sentinel must not hold up the question to the next one), their own password."""
    timeout = min(options.get("socket_timeout") or SENTINEL_TIMEOUT, SENTINEL_TIMEOUT)
    kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if parsed.sentinel_password is not None:
        kwargs["password"] = parsed.sentinel_password
    return kwargs


def _server_kwargs(parsed: SentinelUrl, options: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(options)
    kwargs["db"] = parsed.db
    if parsed.username is not None:
        kwargs["username"] = parsed.username
    if parsed.password is not None:
        kwargs["password"] = parsed.password
    return kwargs


def sync_redis(settings: Settings, **options: Unpack[SyncClientOptions]) -> redis.Redis:
    url = redis_url(settings)
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    manager = sentinel.Sentinel(
        parsed.sentinels, sentinel_kwargs=_sentinel_kwargs(parsed, dict(options))
    )
    client: redis.Redis = manager.master_for(
        parsed.service,
        redis_class=redis.Redis,
        connection_pool_class=SyncSentinelPool,
        connection_class=_SyncConnection,
        **_server_kwargs(parsed, dict(options)),
    )
    _watcher().add(url, parsed, client.connection_pool)
    return client


NO_REPLICAS = "NOREPLICAS"  # a primary with too few replicas (`min-replicas-to-write`) refusing


class _SyncConnection(sentinel.SentinelManagedConnection):
    """A write refused for want of replicas is what a primary just demoted by a failover says
    under `min-replicas-to-write`: nothing ran, so it is a ConnectionError every loop retries
    (on the new primary), like redis-py's READONLY."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            if NO_REPLICAS not in str(exc):
                raise
            self.disconnect()
            raise redis.ConnectionError(f"the primary refuses writes: {exc}") from exc


class _AsyncConnection(asentinel.SentinelManagedConnection):
    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            if NO_REPLICAS not in str(exc):
                raise
            await self.disconnect()
            raise redis.ConnectionError(f"the primary refuses writes: {exc}") from exc


class SyncSentinelPool(sentinel.SentinelConnectionPool):
    """Drops its connections to a primary the Sentinels no longer name (`_Watcher`)."""

    moved = False  # set by the watcher thread; acted on by the pool's own user

    def interrupt(self, primary: tuple[str, int]) -> None:
        """From the watcher thread: end the reads in progress on the old primary (a blocked
        XREADGROUP would wait out its timeout there); each user sees a ConnectionError."""
        self.moved = True
        for connection in list(self._in_use_connections):
            sock = getattr(connection, "_sock", None)
            if sock is not None and (connection.host, connection.port) != primary:
                connection.mark_for_reconnect()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # the owner closes it

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.moved:
            self.moved = False
            self.disconnect(inuse_connections=False)
            for connection in list(self._in_use_connections):
                connection.mark_for_reconnect()  # closed when released
        return super().get_connection(*args, **kwargs)


class AsyncSentinelPool(asentinel.SentinelConnectionPool):
    """The asyncio twin of `SyncSentinelPool`."""

    moved = False
    loop: asyncio.AbstractEventLoop | None = None  # where its connections live

    def interrupt(self, primary: tuple[str, int]) -> None:
        self.moved = True
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop just closed
                loop.call_soon_threadsafe(self._abort_reads, primary)

    def _abort_reads(self, primary: tuple[str, int]) -> None:
        for connection in list(self._in_use_connections):
            writer = getattr(connection, "_writer", None)
            address = (getattr(connection, "host", None), getattr(connection, "port", None))
            if writer is not None and address != primary:
                connection.mark_for_reconnect()
                writer.transport.abort()

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.loop = asyncio.get_running_loop()
        if self.moved:
            self.moved = False
            await self.disconnect(inuse_connections=False)
            for connection in list(self._in_use_connections):
                connection.mark_for_reconnect()
        return await super().get_connection(*args, **kwargs)


class BlockingSentinelConnectionPool(AsyncSentinelPool, aredis.BlockingConnectionPool):
    """A Sentinel pool that waits for a free connection (`max_connections`, `timeout`) rather
    than failing, as `aredis.BlockingConnectionPool` does for a plain URL."""


class _Watcher:
    """This process's look at where each Sentinel URL's primary is, every WATCH_SECONDS."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.watched: dict[str, tuple[sentinel.Sentinel, str, weakref.WeakSet[Any]]] = {}
        self.primary: dict[str, tuple[str, int] | None] = {}
        self.thread: threading.Thread | None = None

    def add(self, url: str, parsed: SentinelUrl, pool: Any) -> None:
        with self.lock:
            if url not in self.watched:
                manager = sentinel.Sentinel(
                    parsed.sentinels, sentinel_kwargs=_sentinel_kwargs(parsed, {})
                )
                self.watched[url] = (manager, parsed.service, weakref.WeakSet())
                self.primary[url] = None
            self.watched[url][2].add(pool)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self.run, name="fnhub-sentinel-watch", daemon=True
                )
                self.thread.start()

    def run(self) -> None:
        while True:
            with self.lock:
                watched = list(self.watched.items())
            for url, (manager, service, pools) in watched:
                try:
                    address = manager.discover_master(service)
                except redis.RedisError as exc:  # no Sentinel answers: ask again next time
                    log.debug("Sentinels of %s: %s", redacted_url(url), exc)
                    continue
                before = self.primary[url]
                self.primary[url] = address
                if before is not None and address != before:
                    log.warning(
                        "Redis primary of %s moved from %s:%s to %s:%s",
                        redacted_url(url),
                        *before,
                        *address,
                    )
                    for pool in list(pools):
                        pool.interrupt(address)
            threading.Event().wait(WATCH_SECONDS)


_watchers: dict[int, _Watcher] = {}


def _watcher() -> _Watcher:
    """This process's watcher (a forked child starts its own)."""
    pid = os.getpid()
    if pid not in _watchers:
        _watchers.clear()
        _watchers[pid] = _Watcher()
    return _watchers[pid]


def async_redis(
    settings: Settings,
    *,
    max_connections: int | None = None,
    pool_timeout: float | None = None,
    **options: Unpack[ClientOptions],
) -> aredis.Redis:
    """`max_connections`: a pool that waits (up to `pool_timeout` seconds) for one of at most
    that many connections; default: redis-py's unbounded pool."""
    url = redis_url(settings)
    blocking: dict[str, Any] = {}
    if max_connections is not None:
        blocking = {"max_connections": max_connections, "timeout": pool_timeout}
    if not is_sentinel_url(url):
        if blocking:
            pool = aredis.BlockingConnectionPool.from_url(url, **blocking, **options)
            return aredis.Redis(connection_pool=pool)
        return aredis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    manager = asentinel.Sentinel(
        parsed.sentinels, sentinel_kwargs=_sentinel_kwargs(parsed, dict(options))
    )
    pool_class = BlockingSentinelConnectionPool if blocking else AsyncSentinelPool
    client: aredis.Redis = manager.master_for(
        parsed.service,
        redis_class=aredis.Redis,
        connection_pool_class=pool_class,
        connection_class=_AsyncConnection,
        **_server_kwargs(parsed, dict(options)),
        **blocking,
    )
    _watcher().add(url, parsed, client.connection_pool)
    return client
