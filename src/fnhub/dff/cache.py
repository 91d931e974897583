"""`DFF.CACHE`: DataFlux Func's cache API on fnhub's cache keys.

Keys are `fnhub.cache`'s (`<prefix>:cache:<scope>:<key>`, scope defaulting to the running
script), so both spellings see the same keys. Values keep DataFlux Func's meaning, which is
Redis's: strings in, strings out (`set("n", 1)` then `get("n")` is `"1"`), lists, sets and
sorted sets as Redis has them. `fnhub.cache` stores JSON instead: numbers and counters read
the same from both; a string written by one is read by the other with its JSON quotes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fnhub import runtime
from fnhub.cache import cache as _fnhub_cache

if TYPE_CHECKING:
    import redis


def _text(value: Any) -> Any:
    """Redis replies as DataFlux Func returns them: bytes as str, containers converted."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple | set):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    return value


def _many(value: Any) -> list[Any]:
    """DataFlux Func's `as_array`: one value or a list or tuple of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class RedisCommands:
    """DataFlux Func's Redis methods (its cache helper's and its Redis connector client's), on
    the client and key naming a subclass gives: `_client()`, `_key(key, scope)`."""

    def _client(self) -> redis.Redis:
        raise NotImplementedError

    def _key(self, key: str, scope: str | None) -> str:
        return key

    def _prefix(self, scope: str | None) -> str:
        return self._key("", scope)

    def _origin(self, full: bytes | str, scope: str | None) -> str:
        text = full.decode() if isinstance(full, bytes) else full
        return text[len(self._prefix(scope)) :]

    def _scan(self, pattern: str, scope: str | None) -> list[bytes]:
        found = self._client().scan_iter(match=self._key(pattern, scope), count=1000)
        return list(dict.fromkeys(found))

    # generic

    def run(self, cmd: str, key: str, *args: Any, scope: str | None = None, **kwargs: Any) -> Any:
        """Any redis-py command on a (scoped) key: `run("strlen", "name")`."""
        return _text(getattr(self._client(), cmd)(self._key(key, scope), *args, **kwargs))

    def ping(self) -> bool:
        return bool(self._client().ping())

    def info(self) -> Any:
        return _text(self._client().info())

    def dbsize(self) -> int:
        return int(self._client().dbsize())

    def type(self, key: str, scope: str | None = None) -> str:
        return str(_text(self._client().type(self._key(key, scope))))

    def keys(self, pattern: str = "*", scope: str | None = None) -> list[str]:
        return [self._origin(k, scope) for k in self._scan(pattern, scope)]

    def exists(self, key: str, scope: str | None = None) -> bool:
        return bool(self._client().exists(self._key(key, scope)))

    def expire(
        self,
        key: str,
        expires: int | None = None,
        expire: int | None = None,
        scope: str | None = None,
    ) -> bool:
        return bool(self._client().expire(self._key(key, scope), int(expires or expire or 0)))

    def expireat(self, key: str, timestamp: int, scope: str | None = None) -> bool:
        return bool(self._client().expireat(self._key(key, scope), int(timestamp)))

    def ttl(self, key: str, scope: str | None = None) -> int:
        return int(self._client().ttl(self._key(key, scope)))

    def pttl(self, key: str, scope: str | None = None) -> int:
        return int(self._client().pttl(self._key(key, scope)))

    def delete(self, key: str | Iterable[str], scope: str | None = None) -> int:
        keys = [self._key(k, scope) for k in _many(key)]
        return int(self._client().delete(*keys)) if keys else 0

    # strings

    def set(
        self,
        key: str,
        value: Any,
        expires: int | None = None,
        not_exists: bool = False,
        exists: bool = False,
        expire: int | None = None,
        scope: str | None = None,
    ) -> bool | None:
        ex = expires or expire
        done = self._client().set(
            self._key(key, scope), value, ex=ex or None, nx=not_exists, xx=exists
        )
        return None if done is None else bool(done)

    def mset(self, key_values: dict[str, Any], scope: str | None = None) -> bool:
        if not key_values:
            return False
        scoped = {self._key(k, scope): v for k, v in key_values.items()}
        return bool(self._client().mset(scoped))

    def get(self, key: str, scope: str | None = None) -> Any:
        return _text(self._client().get(self._key(key, scope)))

    def mget(self, keys: str | Iterable[str], scope: str | None = None) -> dict[str, Any]:
        names = _many(keys)
        if not names:
            return {}
        values = self._client().mget([self._key(k, scope) for k in names])
        return dict(zip(names, _text(values), strict=True))

    def getset(self, key: str, value: Any, scope: str | None = None) -> Any:
        return _text(self._client().getset(self._key(key, scope), value))

    def incr(self, key: str, step: int = 1, scope: str | None = None) -> int:
        return int(self._client().incrby(self._key(key, scope), step))

    def incrby(self, key: str, step: int, scope: str | None = None) -> int:
        return self.incr(key, step, scope=scope)

    # hashes

    def hkeys(
        self, key: str, pattern: str = "*", with_values: bool = False, scope: str | None = None
    ) -> Any:
        found: dict[str, Any] = {}
        client = self._client()
        for field, value in client.hscan_iter(self._key(key, scope), match=pattern, count=1000):
            found[_text(field)] = _text(value)
        return found if with_values else list(found)

    def hset(
        self, key: str, field: str, value: Any, not_exists: bool = False, scope: str | None = None
    ) -> int:
        client = self._client()
        if not_exists:
            return int(client.hsetnx(self._key(key, scope), field, value))
        return int(client.hset(self._key(key, scope), field, value))

    def hmset(self, key: str, field_values: dict[str, Any], scope: str | None = None) -> bool:
        if not field_values:
            return False
        mapping: dict[Any, Any] = dict(field_values)
        self._client().hset(self._key(key, scope), mapping=mapping)
        return True

    def hsetnx(self, key: str, field: str, value: Any, scope: str | None = None) -> int:
        return self.hset(key, field, value, not_exists=True, scope=scope)

    def hget(self, key: str, field: str, scope: str | None = None) -> Any:
        return _text(self._client().hget(self._key(key, scope), field))

    def hmget(self, key: str, fields: str | Iterable[str], scope: str | None = None) -> Any:
        names = _many(fields)
        if not names:
            return {}
        values = self._client().hmget(self._key(key, scope), names)
        return dict(zip(names, _text(values), strict=True))

    def hgetall(self, key: str, scope: str | None = None) -> dict[str, Any]:
        return dict(_text(self._client().hgetall(self._key(key, scope))))

    def hincr(self, key: str, field: str, step: int = 1, scope: str | None = None) -> int:
        return int(self._client().hincrby(self._key(key, scope), field, step))

    def hincrby(self, key: str, field: str, step: int, scope: str | None = None) -> int:
        return self.hincr(key, field, step, scope=scope)

    def hdel(self, key: str, field: str | Iterable[str], scope: str | None = None) -> int:
        fields = _many(field)
        return int(self._client().hdel(self._key(key, scope), *fields)) if fields else 0

    # lists

    def lpush(self, key: str, value: Any, scope: str | None = None) -> int:
        values = _many(value)
        return int(self._client().lpush(self._key(key, scope), *values)) if values else 0

    def rpush(self, key: str, value: Any, scope: str | None = None) -> int:
        values = _many(value)
        return int(self._client().rpush(self._key(key, scope), *values)) if values else 0

    def lpop(self, key: str, scope: str | None = None) -> Any:
        return _text(self._client().lpop(self._key(key, scope)))

    def rpop(self, key: str, scope: str | None = None) -> Any:
        return _text(self._client().rpop(self._key(key, scope)))

    def _bpop(self, side: str, key: str, timeout: int, scope: str | None) -> list[Any] | None:
        keys = [self._key(k, scope) for k in _many(key)]
        got = getattr(self._client(), side)(keys, timeout=timeout)
        if not got:
            return None
        return [self._origin(got[0], scope), _text(got[1])]

    def blpop(self, key: str, timeout: int = 0, scope: str | None = None) -> list[Any] | None:
        return self._bpop("blpop", key, timeout, scope)

    def brpop(self, key: str, timeout: int = 0, scope: str | None = None) -> list[Any] | None:
        return self._bpop("brpop", key, timeout, scope)

    def rpoplpush(
        self,
        key: str,
        dest_key: str | None = None,
        scope: str | None = None,
        dest_scope: str | None = None,
    ) -> Any:
        source = self._key(key, scope)
        dest = self._key(dest_key or key, dest_scope or scope)
        return _text(self._client().rpoplpush(source, dest))

    def brpoplpush(
        self,
        key: str,
        dest_key: str | None = None,
        timeout: int = 0,
        scope: str | None = None,
        dest_scope: str | None = None,
    ) -> Any:
        source = self._key(key, scope)
        dest = self._key(dest_key or key, dest_scope or scope)
        return _text(self._client().brpoplpush(source, dest, timeout))

    def llen(self, key: str, scope: str | None = None) -> int:
        return int(self._client().llen(self._key(key, scope)))

    def lrange(self, key: str, start: int = 0, stop: int = -1, scope: str | None = None) -> Any:
        return _text(self._client().lrange(self._key(key, scope), start, stop))

    def ltrim(self, key: str, start: int, stop: int, scope: str | None = None) -> bool:
        return bool(self._client().ltrim(self._key(key, scope), start, stop))

    def push(self, key: str, value: Any, scope: str | None = None) -> int:
        return self.lpush(key, value, scope=scope)

    def pop(self, key: str, scope: str | None = None) -> Any:
        return self.rpop(key, scope=scope)

    def bpop(self, key: str, timeout: int = 0, scope: str | None = None) -> list[Any] | None:
        return self.brpop(key, timeout, scope=scope)

    # sets

    def sadd(self, key: str, member: Any, scope: str | None = None) -> int:
        members = _many(member)
        return int(self._client().sadd(self._key(key, scope), *members)) if members else 0

    def srem(self, key: str, member: Any, scope: str | None = None) -> int:
        members = _many(member)
        return int(self._client().srem(self._key(key, scope), *members)) if members else 0

    def scard(self, key: str, scope: str | None = None) -> int:
        return int(self._client().scard(self._key(key, scope)))

    def smembers(self, key: str, scope: str | None = None) -> Any:
        return _text(self._client().smembers(self._key(key, scope)))

    def sismember(self, key: str, member: Any, scope: str | None = None) -> bool:
        return bool(self._client().sismember(self._key(key, scope), member))

    # sorted sets

    def zadd(self, key: str, member_scores: dict[str, float], scope: str | None = None) -> int:
        added: Any = self._client().zadd(self._key(key, scope), member_scores)
        return int(added)

    def zrem(self, key: str, member: Any, scope: str | None = None) -> int:
        members = _many(member)
        return int(self._client().zrem(self._key(key, scope), *members)) if members else 0

    def zcard(self, key: str, scope: str | None = None) -> int:
        return int(self._client().zcard(self._key(key, scope)))

    def zrange(
        self,
        key: str,
        start: int = 0,
        stop: int = -1,
        with_scores: bool = False,
        scope: str | None = None,
    ) -> Any:
        found = self._client().zrange(self._key(key, scope), start, stop, withscores=with_scores)
        return _text(found)

    def zrangebyscore(
        self,
        key: str,
        min_score: float | str = "-inf",
        max_score: float | str = "+inf",
        with_scores: bool = False,
        scope: str | None = None,
    ) -> Any:
        found = self._client().zrangebyscore(
            self._key(key, scope), min_score, max_score, withscores=with_scores
        )
        return _text(found)

    # pub/sub and patterns

    def get_pattern(self, pattern: str = "*", scope: str | None = None) -> dict[str, Any] | None:
        """Keys matching `pattern` with their values; None when none match (as in DataFlux Func)."""
        keys = self._scan(pattern, scope)
        if not keys:
            return None
        values = self._client().mget(keys)
        return {self._origin(k, scope): _text(v) for k, v in zip(keys, values, strict=True)}

    def delete_pattern(self, pattern: str = "*", scope: str | None = None) -> int | None:
        keys = self._scan(pattern, scope)
        return int(self._client().delete(*keys)) if keys else None


class DFFCache(RedisCommands):
    """`DFF.CACHE`: every method takes `scope=` like DataFlux Func's; the default scope is the
    script whose code calls it (a helper script's calls use the helper's scope, as in DataFlux
    Func)."""

    def __init__(self, default_scope: str | None = None) -> None:
        #: the script whose code holds this `DFF` (DataFlux Func's default scope); None: the
        #: running task's script, as `fnhub.cache`
        self.default_scope = default_scope

    def __call__(self, key: str, scope: str | None = None) -> Any:
        return self.get(key, scope=scope)

    def _client(self) -> redis.Redis:
        return runtime.redis_client()

    def _key(self, key: str, scope: str | None) -> str:
        return _fnhub_cache._key(key, scope or self.default_scope)

    def publish(self, topic: str, message: Any, scope: str | None = None) -> int:
        """Publish on `topic`; `DFF.CACHE` scopes it, as DataFlux Func does
        (`<prefix>:cache:<scope>:<topic>`): a Redis connector subscribed there receives it."""
        return int(self._client().publish(self._key(topic, scope), message))
