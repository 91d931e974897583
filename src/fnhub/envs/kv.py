"""`fnhub.store`: a key-value store in the database, per script unless told otherwise.

Values are JSON (stored as its text, read back exactly). A key may expire (`expires`, seconds):
from then on every read ignores it, and the servers' purge (`purge_expired`, run by the envs
feature's service every minute) deletes it. Patterns are Redis-style globs (`*`, `?`,
`[abc]`), matched byte for byte: SQL `LIKE` narrows the rows, `fnmatchcase` decides, since
SQLite's `LIKE` ignores case and `%`/`_` mean something to it.

Unlike `fnhub.cache` (Redis: fast, lost with Redis), what is stored here lasts as the
database does, and is shared by every worker of the installation.
"""

from __future__ import annotations

import fnmatch
import functools
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

from fnhub import runtime
from fnhub.context import context
from fnhub.envs.models import StoreItem
from fnhub.store.db import Database, rows_changed, upsert_insert
from fnhub.store.models import table_of

MAX_KEY_CHARS = 256
MAX_SCOPE_CHARS = 128
_ESCAPE = "/"


def _dump(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise TypeError(
            f"fnhub.store keeps JSON values; a {type(value).__name__} is not one ({exc})"
        ) from None


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"fnhub.store: a key is a string of 1-{MAX_KEY_CHARS} characters")
    _check_text(key, "key")
    return key


def _check_text(text: str, what: str) -> None:
    """What every database keeps as a key: no NUL (PostgreSQL refuses it), valid Unicode."""
    if "\x00" in text:
        raise ValueError(f"fnhub.store: a {what} cannot hold a NUL character")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError(f"fnhub.store: a {what} must be valid Unicode") from None


def _expires_at(expires: float | None, now: float) -> float | None:
    if expires is None or expires == 0:
        return None
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires < 0:
        raise ValueError(f"fnhub.store: expires is seconds (> 0) or None, got {expires!r}")
    return now + float(expires)


def _live(now: float) -> ColumnElement[bool]:
    return or_(StoreItem.expires_at.is_(None), StoreItem.expires_at > now)


def like_of(pattern: str) -> str:
    """A LIKE pattern matching at least every key the glob `pattern` matches."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[" and "]" in pattern[i + 2 :]:
            out.append("_")
            i = pattern.index("]", i + 2)
        elif char in ("%", "_", _ESCAPE):
            out.append(_ESCAPE + char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


@functools.cache
def _upsert(dialect: str) -> Insert:
    table = table_of(StoreItem)
    replaced = ("value", "expires_at", "updated_at")
    stmt = upsert_insert(dialect, table)
    if dialect in ("mysql", "mariadb"):
        return stmt.on_duplicate_key_update(  # type: ignore[no-any-return]
            {c: stmt.inserted[c] for c in replaced}
        )
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["scope", "key"], set_={c: stmt.excluded[c] for c in replaced}
    )


class Store:
    """The operations of `fnhub.store` (DataFlux Func's `DFF.STORE`). `db` defaults to the
    process's database (`runtime.database`); the scope to the running script's name."""

    def __init__(self, db: Database | None = None) -> None:
        self._db = db

    def _database(self) -> Database:
        return self._db if self._db is not None else runtime.database()

    @staticmethod
    def _scope(scope: str | None) -> str:
        chosen = scope or context.script or "global"
        if not isinstance(chosen, str) or len(chosen) > MAX_SCOPE_CHARS:
            raise ValueError(f"fnhub.store: a scope is a string of 1-{MAX_SCOPE_CHARS} characters")
        _check_text(chosen, "scope")
        return chosen

    def set(
        self,
        key: str,
        value: Any,
        expires: float | None = None,
        *,
        not_exists: bool = False,
        scope: str | None = None,
    ) -> bool:
        """Store `value` under `key` (for `expires` seconds); with `not_exists`, only if the
        key is missing (or expired). True when it was stored."""
        now = time.time()
        row = {
            "scope": self._scope(scope),
            "key": _check_key(key),
            "value": _dump(value),
            "expires_at": _expires_at(expires, now),
            "updated_at": now,
        }
        db = self._database()
        if not not_exists:
            with db.session() as session, session.begin():
                session.execute(_upsert(db.engine.dialect.name), [row])
            return True
        with db.session() as session:
            with session.begin():  # an expired row does not count as existing
                session.execute(
                    delete(StoreItem).where(
                        StoreItem.scope == row["scope"],
                        StoreItem.key == row["key"],
                        StoreItem.expires_at <= now,
                    )
                )
            try:
                with session.begin():
                    session.execute(table_of(StoreItem).insert(), [row])
            except IntegrityError:
                return False
        return True

    def mset(
        self, mapping: Mapping[str, Any], expires: float | None = None, *, scope: str | None = None
    ) -> bool:
        """Store every key of `mapping` at once (one transaction)."""
        now = time.time()
        chosen = self._scope(scope)
        until = _expires_at(expires, now)
        rows = [
            {
                "scope": chosen,
                "key": _check_key(key),
                "value": _dump(value),
                "expires_at": until,
                "updated_at": now,
            }
            for key, value in mapping.items()
        ]
        if rows:
            db = self._database()
            with db.session() as session, session.begin():
                session.execute(_upsert(db.engine.dialect.name), rows)
        return True

    def get(self, key: str, default: Any = None, *, scope: str | None = None) -> Any:
        query = select(StoreItem.value).where(
            StoreItem.scope == self._scope(scope),
            StoreItem.key == _check_key(key),
            _live(time.time()),
        )
        with self._database().session() as session:
            raw = session.execute(query).scalar()
        return default if raw is None else orjson.loads(raw)

    def mget(self, keys: Iterable[str], *, scope: str | None = None) -> dict[str, Any]:
        """{key: value} for each of `keys` (None for a missing one)."""
        wanted = [_check_key(k) for k in keys]
        found = self._read(scope, StoreItem.key.in_(wanted)) if wanted else {}
        return {k: found.get(k) for k in wanted}

    def getall(self, *, scope: str | None = None) -> dict[str, Any]:
        """Every key of the scope with its value."""
        return self._read(scope)

    def keys(self, pattern: str = "*", *, scope: str | None = None) -> list[str]:
        """The scope's keys matching the glob `pattern`, sorted."""
        query = select(StoreItem.key).where(*self._where(scope, pattern, time.time()))
        with self._database().session() as session:
            found = session.execute(query).scalars().all()
        return sorted(k for k in found if fnmatch.fnmatchcase(k, pattern))

    def get_pattern(self, pattern: str, *, scope: str | None = None) -> dict[str, Any]:
        """{key: value} for the scope's keys matching the glob `pattern`."""
        found = self._read(scope, StoreItem.key.like(like_of(pattern), escape=_ESCAPE))
        return {k: v for k, v in found.items() if fnmatch.fnmatchcase(k, pattern)}

    def delete(self, key: str, *, scope: str | None = None) -> bool:
        """Delete `key`; True when it was there (an expired one was not: the purge takes it)."""
        statement = delete(StoreItem).where(
            StoreItem.scope == self._scope(scope),
            StoreItem.key == _check_key(key),
            _live(time.time()),
        )
        with self._database().session() as session, session.begin():
            return rows_changed(session.execute(statement)) > 0

    def delete_pattern(self, pattern: str, *, scope: str | None = None) -> int:
        """Delete the scope's keys matching the glob `pattern`; how many there were."""
        chosen = self._scope(scope)
        now = time.time()
        with self._database().session() as session, session.begin():
            found = session.execute(
                select(StoreItem.key).where(*self._where(chosen, pattern, now))
            ).scalars()
            doomed = [k for k in found if fnmatch.fnmatchcase(k, pattern)]
            for i in range(0, len(doomed), 500):
                session.execute(
                    delete(StoreItem).where(
                        StoreItem.scope == chosen, StoreItem.key.in_(doomed[i : i + 500])
                    )
                )
        return len(doomed)

    def _where(self, scope: str | None, pattern: str, now: float) -> list[ColumnElement[bool]]:
        where = [StoreItem.scope == self._scope(scope), _live(now)]
        if pattern != "*":
            where.append(StoreItem.key.like(like_of(pattern), escape=_ESCAPE))
        return where

    def _read(self, scope: str | None, *where: ColumnElement[bool]) -> dict[str, Any]:
        query = select(StoreItem.key, StoreItem.value).where(
            StoreItem.scope == self._scope(scope), _live(time.time()), *where
        )
        with self._database().session() as session:
            rows = session.execute(query).all()
        return {key: orjson.loads(raw) for key, raw in sorted(rows)}


def purge_expired(db: Database, now: float | None = None) -> int:
    """Delete the rows whose time is up (reads ignore them already); how many went."""
    cutoff = time.time() if now is None else now
    with db.session() as session, session.begin():
        return rows_changed(
            session.execute(delete(StoreItem).where(StoreItem.expires_at <= cutoff))
        )


#: what scripts use (`fnhub.store.<method>` calls it)
store = Store()
