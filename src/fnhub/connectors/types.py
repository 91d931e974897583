"""The list of broker connector types: adding a broker is its folder plus one entry here."""

from __future__ import annotations

from fnhub.connectors import kafka, memory, mqtt, nats, rabbitmq, redis
from fnhub.connectors.base import ConnectorConfigError, ConnectorType

CONNECTOR_TYPES: tuple[ConnectorType, ...] = (
    kafka.TYPE,
    memory.TYPE,
    mqtt.TYPE,
    nats.TYPE,
    rabbitmq.TYPE,
    redis.TYPE,
)

connector_types: dict[str, ConnectorType] = {t.name: t for t in CONNECTOR_TYPES}


def get_type(connector_type: str) -> ConnectorType:
    try:
        return connector_types[connector_type]
    except KeyError:
        known = ", ".join(sorted(connector_types))
        raise ConnectorConfigError(
            f"unknown connector type {connector_type!r} (known: {known})"
        ) from None
