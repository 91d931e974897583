"""Persistence: SQLAlchemy models, the database handle and Alembic migrations.

This package is also `fnhub.store` as scripts know it, the key-value store in the database
(`fnhub.store.set("k", v)`, `get`, `mget`...): Python binds `fnhub.store` to this package as
soon as anything imports a module of it, so its script methods are answered here, by
`fnhub.envs.kv.store`.
"""

from typing import TYPE_CHECKING, Any

from fnhub.store.db import Database

if TYPE_CHECKING:
    from fnhub.store.models import Base

__all__ = ["Base", "Database"]

#: the script API (`fnhub.envs.kv.Store`)
SCRIPT_METHODS = frozenset(
    {"set", "mset", "get", "mget", "getall", "keys", "get_pattern", "delete", "delete_pattern"}
)


def __getattr__(name: str) -> Any:
    if name == "Base":  # the models, with the ORM, once asked for: a beat starts without them
        from fnhub.store.models import Base

        return Base
    if name in SCRIPT_METHODS:
        from fnhub.envs.kv import store

        return getattr(store, name)
    raise AttributeError(f"module 'fnhub.store' has no attribute {name!r}")
