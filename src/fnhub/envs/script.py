"""`fnhub.env(name, default)`: env variables as scripts read them, cached in the process.

Every process keeps every env variable, parsed, labelled with the envs revision read before
it (`Keys.envs_revision`, bumped after every change by the API, the CLI and apply). It looks at
the revision at most once a second (`CHECK_SECONDS`), and reloads from the database only when it
moved, so a read costs no round trip, and a change reaches running workers within about a
second. A name it does not know makes it look again (at most every 0.1 s), so a variable
created just before a call is found. A reload that cannot reach Redis or the database keeps the
copy held (logged), so a blip fails no task once a process has read its variables. Passwords
are opened here and handed to `masking`, which keeps them out of the task's output, result and
errors.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.exceptions as redis_errors
import sqlalchemy.exc as sql_errors
from sqlalchemy import select

from fnhub import runtime
from fnhub.envs import masking
from fnhub.envs.models import EnvVar
from fnhub.envs.values import EnvType, InvalidEnv, check_type, parse
from fnhub.errors import UnknownEnv

log = logging.getLogger(__name__)
CHECK_SECONDS = 1.0
UNKNOWN_CHECK_SECONDS = 0.1
_MISSING: Any = object()
#: a reload that meets these keeps the copy held (a database or Redis blip fails no task)
REDIS_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError)
DATABASE_UNAVAILABLE = (sql_errors.OperationalError, sql_errors.InterfaceError)


@dataclass(frozen=True, slots=True)
class Loaded:
    type: EnvType
    value: Any  # parsed; json kept as its text (parsed per read: callers may change it)
    error: str | None = None


@dataclass(slots=True)
class _Cache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[str, Loaded] = field(default_factory=dict)
    revision: int = -1
    checked_at: float = float("-inf")


def load_all() -> dict[str, Loaded]:
    """Every env variable from the process's database, passwords opened."""
    from fnhub.secret_box import SecretBox, resolve_secret_key

    box = SecretBox(resolve_secret_key(runtime.settings()))
    with runtime.database().session() as session:
        rows = session.execute(select(EnvVar.name, EnvVar.type, EnvVar.value)).all()
    loaded: dict[str, Loaded] = {}
    secrets: list[str] = []
    for name, type_name, stored in rows:
        try:
            type_ = check_type(type_name)
            text = box.decrypt(stored) if type_ == "password" else stored
            if type_ == "password":
                secrets.append(text)
            parsed = parse(text, type_)  # checked when saved; read again all the same
            value = text if type_ == "json" else tuple(parsed) if type_ == "list" else parsed
            loaded[name] = Loaded(type_, value)
        except (InvalidEnv, ValueError) as exc:
            loaded[name] = Loaded("string", None, f"env variable '{name}': {exc}")
    masking.remember(secrets)
    return loaded


class Env:
    """`fnhub.env` (DataFlux Func's `DFF.ENV`): call it with a name for the typed value."""

    def __init__(self) -> None:
        self._cache = _Cache()

    def _refresh(self, unknown: bool) -> dict[str, Loaded]:
        cache = self._cache
        with cache.lock:
            now = time.monotonic()
            due = CHECK_SECONDS if not unknown else UNKNOWN_CHECK_SECONDS
            if now - cache.checked_at >= due:
                try:
                    client = runtime.redis_client()
                    revision = int(client.get(runtime.keys().envs_revision) or 0)
                    if revision != cache.revision:
                        cache.values = load_all()
                        cache.revision = revision
                except (*REDIS_UNAVAILABLE, *DATABASE_UNAVAILABLE) as exc:
                    if cache.revision < 0:
                        raise  # nothing to fall back on: the script sees why
                    log.warning("env variables not reloaded, using the copy held: %s", exc)
                cache.checked_at = time.monotonic()
            return cache.values

    def __call__(self, name: str, default: Any = _MISSING) -> Any:
        values = self._refresh(unknown=False)
        loaded = values.get(name)
        if loaded is None:
            loaded = self._refresh(unknown=True).get(name)
        if loaded is None:
            if default is _MISSING:
                raise UnknownEnv(name, sorted(self._cache.values))
            return default
        if loaded.error is not None:
            raise InvalidEnv(loaded.error)
        if loaded.type == "json":
            return orjson.loads(loaded.value)
        if loaded.type == "list":
            return list(loaded.value)
        return loaded.value

    def keys(self) -> list[str]:
        """The names of every env variable."""
        return sorted(self._refresh(unknown=False))

    def forget(self) -> None:
        """Drop the cache (tests; a process that changed settings)."""
        self._cache = _Cache()

    def __repr__(self) -> str:
        return "<fnhub.env>"


env = Env()
