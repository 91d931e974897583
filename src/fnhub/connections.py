"""Stored connectors read back in clear: for the subscriber in the server and for scripts.

`fnhub.connector("name")` in a worker finds the connector here (cached per process for a few
seconds, so a changed password is picked up without a query per publish) and returns the pooled
publisher of `fnhub.connectors`, so connections are opened once per process, never per call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from fnhub import runtime
from fnhub.config import Settings
from fnhub.store.db import Database

CACHE_SECONDS = 5.0


class UnknownConnector(LookupError):
    pass


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    type: str
    settings: dict[str, Any]


def load_connectors(db: Database, settings: Settings) -> dict[str, ConnectorConfig]:
    """Every stored connector with its secrets decrypted."""
    from sqlalchemy import select

    from fnhub.secret_box import SecretBox, resolve_secret_key
    from fnhub.store.models import Connector

    box = SecretBox(resolve_secret_key(settings))
    with db.session() as session:
        rows = session.execute(select(Connector)).scalars().all()
        return {r.name: ConnectorConfig(r.name, r.type, box.open(r.settings)) for r in rows}


class _ProcessCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = 0.0
        self.configs: dict[str, ConnectorConfig] = {}
        self.db: Database | None = None

    def database(self) -> Database:
        if self.db is None:
            self.db = Database(runtime.settings().resolved_db_url())
        return self.db

    def all(self, refresh: bool = False) -> dict[str, ConnectorConfig]:
        with self.lock:
            if refresh or time.monotonic() - self.loaded_at > CACHE_SECONDS:
                self._load()
            return self.configs

    def _load(self) -> None:
        self.configs = load_connectors(self.database(), runtime.settings())
        self.loaded_at = time.monotonic()

    def get(self, name: str) -> ConnectorConfig:
        with self.lock:
            stale = time.monotonic() - self.loaded_at > CACHE_SECONDS
            if stale or name not in self.configs:
                self._load()
            try:
                return self.configs[name]
            except KeyError:
                known = ", ".join(sorted(self.configs)) or "none"
                raise UnknownConnector(f"no connector named '{name}' (known: {known})") from None


_cache = _ProcessCache()


class ConnectorHandle:
    """What `fnhub.connector(name)` returns: publish through the process's pooled client."""

    def __init__(self, name: str) -> None:
        self.name = name

    def publish(self, topic: str, message: Any, **options: Any) -> None:
        from fnhub.connectors import get_publisher

        config = _cache.get(self.name)
        get_publisher(config.name, config.type, config.settings).publish(topic, message, **options)

    def __repr__(self) -> str:
        return f"<fnhub.connector {self.name!r}>"


def connector(name: str) -> ConnectorHandle:
    """A named connector for scripts: `fnhub.connector("plant").publish("alerts", {...}, qos=1)`."""
    _cache.get(name)  # fail early, with the list of known names
    return ConnectorHandle(name)


def connector_configs(refresh: bool = False) -> dict[str, ConnectorConfig]:
    """Every stored connector (secrets in clear), from the same per-process cache; `refresh`
    reads them again now (after a script changed one)."""
    return _cache.all(refresh)


def database() -> Database:
    """This process's handle on the database the connectors are read from."""
    return _cache.database()
