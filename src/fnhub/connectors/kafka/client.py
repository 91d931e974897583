"""Connecting to Kafka: what the source and the publishers share."""

from __future__ import annotations

import logging

from fnhub.connectors.kafka.settings import KafkaSettings

log = logging.getLogger("fnhub.connectors.kafka")

#: an idle source asks the cluster for metadata this often, to notice (and show) an outage
PROBE_SECONDS = 3.0
PROBE_TIMEOUT_SECONDS = 5.0


def where(s: KafkaSettings) -> str:
    servers = s.bootstrap_servers
    return ",".join(servers) if isinstance(servers, list) else servers
