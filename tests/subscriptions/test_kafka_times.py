"""A Kafka subscription with default settings: its first message and its resumption after the
holder's kill -9, against generous bounds (bench/kafka_failover.py gives the figures)."""

from __future__ import annotations

import pytest
from tests.subscriptions.kafka_timing import measure


@pytest.mark.timeout(240)
def test_single_mode_defaults_start_and_fail_over_quickly(make_cluster, conn_broker_factory):
    broker = conn_broker_factory("tansu")
    cluster = make_cluster(
        {"kf": {"type": "kafka", "settings": {"bootstrap_servers": f"127.0.0.1:{broker.port}"}}},
        {"k": {"connector": "kf", "topics": ["ev"], "function": "handlers.count"}},
    )
    timings = measure(cluster, broker.port, "k", "ev")
    print(
        f"kafka single mode: first message {timings.first_message:.2f}s, "
        f"failover {timings.failover:.2f}s"
    )
    assert timings.lost == []
    assert timings.first_message < 10, timings
    assert timings.failover < 10, timings
    assert set(cluster.seen().values()) <= {1, 2, 3}  # duplicates bounded by the window
