"""`DFF.CONN(id)` / `DFF.SRC(id)`: a connector's client, on fnhub's stored connectors.

Connector ids are fnhub connector names. `publish(topic, message, ...)` goes through
`fnhub.connector(name)` (the process's pooled publisher, confirmed by the broker) for every
connector type; a Redis connector's client also runs Redis commands (`query(*args)` and
redis-py's methods, replies as str like DataFlux Func's). `DFF.CONN.query/save/delete` list,
write and remove stored connectors; `save` takes DataFlux Func's config field names
(`settings_from_dff`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fnhub import runtime
from fnhub.dff.cache import RedisCommands, _text

if TYPE_CHECKING:  # fnhub.connections imports SQLAlchemy: only when a connector is used
    import redis

    from fnhub.connections import ConnectorConfig, ConnectorHandle


def connector_configs(refresh: bool = False) -> dict[str, ConnectorConfig]:
    from fnhub.connections import connector_configs as configs

    return configs(refresh)


class ConnectorClient:
    """What `DFF.CONN(id)` returns for MQTT, Kafka and the other brokers: `publish`."""

    def __init__(self, handle: ConnectorHandle, config: ConnectorConfig) -> None:
        self._handle = handle
        self.connector_id = config.name
        self.connector_type = config.type

    def publish(
        self,
        topic: str,
        message: Any,
        qos: int | None = None,
        retain: bool | None = None,
        **options: Any,
    ) -> None:
        """Publish and wait for the broker's confirmation (MQTT: `qos`, `retain`)."""
        if qos is not None:
            options["qos"] = qos
        if retain is not None:
            options["retain"] = retain
        self._handle.publish(topic, message, **options)

    def pub(self, topic: str, message: Any, **options: Any) -> None:
        self.publish(topic, message, **options)

    def check(self) -> None:
        """Connect (through the pooled publisher): raises when the broker cannot be reached."""
        from fnhub.connectors import get_publisher

        config = connector_configs()[self.connector_id]
        get_publisher(config.name, config.type, config.settings)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotImplementedError(
            f"DFF.CONN('{self.connector_id}').{name}: a {self.connector_type} connector's "
            "client offers publish(topic, message, ...) only in fnhub; open your own client in "
            "the script for anything else"
        )

    def __repr__(self) -> str:
        return f"<DFF.CONN {self.connector_id!r} ({self.connector_type})>"


class RedisConnectorClient(ConnectorClient, RedisCommands):
    """A Redis connector: `publish` (confirmed, through the pooled publisher), DataFlux Func's
    Redis methods (`RedisCommands`: `set(key, value, expires)`, `mget` as a dict,
    `get_pattern`...), `query(*args)`, and redis-py's other commands."""

    _lock = threading.Lock()
    _clients: dict[tuple[str, str], Any] = {}

    def __init__(self, handle: ConnectorHandle, config: ConnectorConfig) -> None:
        super().__init__(handle, config)
        self._settings = config.settings

    def _client(self) -> redis.Redis:
        import redis

        from fnhub.connectors.base import parse_model, settings_hash
        from fnhub.connectors.redis.client import client_kwargs
        from fnhub.connectors.redis.settings import RedisSettings

        key = (self.connector_id, settings_hash("redis", self._settings))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                s = parse_model(RedisSettings, self._settings, "redis settings")
                kw = {**client_kwargs(s, blocking=False), "decode_responses": True}
                client = redis.Redis.from_url(s.url, **kw) if s.url else redis.Redis(**kw)
                self._clients[key] = client
            return client

    def query(self, *args: Any, **kwargs: Any) -> Any:
        """Any Redis command: `query("get", "name")`."""
        return _text(self._client().execute_command(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self._client(), name)
        except AttributeError:
            raise NotImplementedError(
                f"DFF.CONN('{self.connector_id}').{name} is not supported by fnhub (DataFlux "
                "Func's time series `ts_*` included): use Redis commands (`query(...)`)"
            ) from None


def get(connector_id: str, **_kwargs: Any) -> ConnectorClient:
    """The client of connector `connector_id` (its fnhub name)."""
    from fnhub.connections import UnknownConnector, connector

    try:
        handle = connector(connector_id)
    except UnknownConnector as exc:
        raise UnknownConnector(f"DFF.CONN: {exc}; {NOT_A_BROKER}") from None
    config = connector_configs()[connector_id]
    if config.type == "redis":
        return RedisConnectorClient(handle, config)
    return ConnectorClient(handle, config)


#: what to do for DataFlux Func's connector types that are no broker (databases and others)
NOT_A_BROKER = (
    "fnhub's connectors are brokers (redis, mqtt, kafka, nats, rabbitmq): for a database or "
    "another service, open its client in the script (credentials from DFF.ENV)"
)

#: DataFlux Func's connector config fields → fnhub's connector settings, per type
FIELDS: dict[str, dict[str, str]] = {
    "redis": {"database": "db", "user": "username", "useTLS": "tls", "useSSL": "tls"},
    "mqtt": {"user": "username", "clientId": "client_id"},
    "kafka": {
        "servers": "bootstrap_servers",
        "securityProtocol": "security_protocol",
        "saslMechanism": "sasl_mechanism",
        "saslMechanisms": "sasl_mechanism",
        "user": "sasl_username",
        "username": "sasl_username",
        "password": "sasl_password",
        "groupId": "client_id",
    },
}

#: fields of DataFlux Func's configs that are about its subscriptions, not the connection
NOT_SETTINGS = {"topicHandlers", "multiSubClient", "authType", "transport", "keepalive"}


def settings_from_dff(connector_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """A DataFlux Func connector config as fnhub connector settings (unknown fields stay, so
    fnhub's check names them)."""
    names = FIELDS.get(connector_type, {})
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in NOT_SETTINGS or value is None:
            continue
        out.setdefault(names.get(key, key), value)
    if connector_type == "kafka" and "sasl_password" in out:
        out.setdefault("sasl_mechanism", "PLAIN")
        out.setdefault("security_protocol", "SASL_PLAINTEXT")
    return out


class ConnectorHelper:
    """`DFF.CONN`: call it for a client; `query`, `save`, `delete` manage stored connectors."""

    def __call__(self, connector_id: str, **kwargs: Any) -> ConnectorClient:
        return get(connector_id, **kwargs)

    def get(self, connector_id: str, **kwargs: Any) -> ConnectorClient:
        return get(connector_id, **kwargs)

    def query(self, connector_type: str | list[str] | None = None) -> list[dict[str, Any]]:
        """Stored connectors as `{id, title, type}`, optionally of some types."""
        types = [connector_type] if isinstance(connector_type, str) else connector_type
        configs = connector_configs(refresh=True)
        return [
            {"id": c.name, "title": c.name, "type": c.type}
            for c in sorted(configs.values(), key=lambda c: c.name)
            if not types or c.type in types
        ]

    def save(
        self,
        connector_id: str,
        connector_type: str,
        config: dict[str, Any],
        title: str | None = None,
        description: str | None = None,
    ) -> None:
        """Create or replace a connector, with DataFlux Func's config field names; sealed,
        checked and audited like one saved through the API: `ConnectorRefused` ("DFF.CONN.save:
        subscription ... reads this connector on path: direct ...") for settings a subscription
        reading it on the direct path could not run on."""
        from fnhub.connectors import validate_settings
        from fnhub.connectors.types import connector_types
        from fnhub.store.connectors import ConnectorRefused, save_connector

        if connector_type not in connector_types:
            raise NotImplementedError(
                f"DFF.CONN.save: connector type {connector_type!r} is not supported by fnhub: "
                + NOT_A_BROKER
            )
        if not isinstance(config, dict):
            raise ValueError("DFF.CONN.save: config must be a dict")
        settings = settings_from_dff(connector_type, config)
        try:
            with _database().session() as session, session.begin():
                save_connector(
                    session,
                    _box(),
                    connector_id,
                    type_=connector_type,
                    description=description or title or "",
                    settings=settings,
                    actor=_actor(),
                    validate=validate_settings,
                )
        except ConnectorRefused as exc:
            raise ConnectorRefused(exc.kind, f"DFF.CONN.save: {exc}", exc.users) from None
        connector_configs(refresh=True)

    def delete(self, connector_id: str) -> None:
        """Remove a connector; `ConnectorRefused` ("DFF.CONN.delete: connector ... is used by
        subscription(s) ...") while a subscription uses it, as through the API."""
        from fnhub.store.connectors import ConnectorRefused, delete_connector

        try:
            with _database().session() as session, session.begin():
                delete_connector(session, _box(), connector_id, actor=_actor())
        except ConnectorRefused as exc:
            raise ConnectorRefused(exc.kind, f"DFF.CONN.delete: {exc}", exc.users) from None
        connector_configs(refresh=True)


def _database() -> Any:
    from fnhub.connections import database

    return database()


def _box() -> Any:
    from fnhub.secret_box import SecretBox, resolve_secret_key

    return SecretBox(resolve_secret_key(runtime.settings()))


def _actor() -> str:
    task = runtime.current_task.get()
    return f"script:{task.function}" if task is not None else "script"
