"""Connecting to Kafka: what the source and the publishers share."""

from __future__ import annotations

import logging

from fnhub.connectors.kafka.settings import KafkaSettings, KafkaSourceOptions

log = logging.getLogger("fnhub.connectors.kafka")

#: an idle source asks the cluster for metadata this often, to notice (and show) an outage
PROBE_SECONDS = 3.0
PROBE_TIMEOUT_SECONDS = 5.0


def where(s: KafkaSettings) -> str:
    servers = s.bootstrap_servers
    return ",".join(servers) if isinstance(servers, list) else servers


def consumer_kwargs(
    settings: KafkaSettings, options: KafkaSourceOptions, client_id: str
) -> dict[str, object]:
    """An AIOKafkaConsumer's arguments as a subscription's options give them (the server's
    source and the worker children's direct consumer): offsets committed by fnhub only."""
    kw = settings.client_kwargs()
    kw["client_id"] = client_id or "fnhub"
    return kw | {
        "enable_auto_commit": False,
        "auto_offset_reset": options.start,
        "session_timeout_ms": options.session_timeout_ms,
        "heartbeat_interval_ms": options.heartbeat_interval_ms,
        "metadata_max_age_ms": options.metadata_max_age_ms,
        "fetch_max_wait_ms": options.fetch_max_wait_ms,
    }
