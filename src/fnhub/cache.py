"""`fnhub.cache`: a Redis-backed cache for scripts, scoped per script unless told otherwise.

Values are stored as JSON, so `get` returns what `set` was given (dicts, lists, numbers...).
"""

from __future__ import annotations

from typing import Any

import orjson

from fnhub import runtime
from fnhub.context import context
from fnhub.redis_replies import as_hash


def _dump(value: Any) -> bytes:
    return orjson.dumps(value)


def _load(raw: bytes | str) -> Any:
    return orjson.loads(raw)


class Cache:
    def _key(self, key: str, scope: str | None) -> str:
        return runtime.keys().cache(scope or context.script or "global", key)

    def set(
        self,
        key: str,
        value: Any,
        expires: float | None = None,
        *,
        not_exists: bool = False,
        scope: str | None = None,
    ) -> bool:
        """Store `value`; `expires` in seconds; `not_exists` only sets a missing key."""
        px = int(expires * 1000) if expires else None
        done = runtime.redis_client().set(self._key(key, scope), _dump(value), px=px, nx=not_exists)
        return bool(done)

    def get(self, key: str, default: Any = None, *, scope: str | None = None) -> Any:
        raw = runtime.redis_client().get(self._key(key, scope))
        return default if raw is None else _load(raw)

    def delete(self, key: str, *, scope: str | None = None) -> bool:
        return bool(runtime.redis_client().delete(self._key(key, scope)))

    def exists(self, key: str, *, scope: str | None = None) -> bool:
        return bool(runtime.redis_client().exists(self._key(key, scope)))

    def ttl(self, key: str, *, scope: str | None = None) -> float | None:
        ms = runtime.redis_client().pttl(self._key(key, scope))
        return None if ms < 0 else ms / 1000

    def expire(self, key: str, seconds: float, *, scope: str | None = None) -> bool:
        return bool(runtime.redis_client().pexpire(self._key(key, scope), int(seconds * 1000)))

    def incr(self, key: str, step: int = 1, *, scope: str | None = None) -> int:
        return int(runtime.redis_client().incrby(self._key(key, scope), step))

    def keys(self, pattern: str = "*", *, scope: str | None = None) -> list[str]:
        prefix = self._key("", scope)
        client = runtime.redis_client()
        found = client.scan_iter(match=prefix + pattern, count=500)
        return sorted(k.decode()[len(prefix) :] for k in found)

    def hset(self, key: str, field: str, value: Any, *, scope: str | None = None) -> None:
        runtime.redis_client().hset(self._key(key, scope), field, _dump(value))

    def hget(self, key: str, field: str, default: Any = None, *, scope: str | None = None) -> Any:
        raw = runtime.redis_client().hget(self._key(key, scope), field)
        return default if raw is None else _load(raw)

    def hgetall(self, key: str, *, scope: str | None = None) -> dict[str, Any]:
        raw = as_hash(runtime.redis_client().hgetall(self._key(key, scope)))
        return {k.decode(): _load(v) for k, v in raw.items()}

    def hdel(self, key: str, *fields: str, scope: str | None = None) -> int:
        return int(runtime.redis_client().hdel(self._key(key, scope), *fields))

    def hincr(self, key: str, field: str, step: int = 1, *, scope: str | None = None) -> int:
        return int(runtime.redis_client().hincrby(self._key(key, scope), field, step))


cache = Cache()
