"""A Kafka subscription with default settings: its first message and its resumption after the
holder's kill -9, against generous bounds (bench/kafka_failover.py gives the figures)."""

from __future__ import annotations

import pytest
from tests.subscriptions.kafka_timing import measure


def _measure(make_cluster, conn_broker_factory, **subscription: str):
    """`measure` on a fresh Tansu for subscription `k` on topic `ev`, default settings."""
    broker = conn_broker_factory("tansu")
    sub = {"connector": "kf", "topics": ["ev"], "function": "handlers.count", **subscription}
    cluster = make_cluster(
        {"kf": {"type": "kafka", "settings": {"bootstrap_servers": f"127.0.0.1:{broker.port}"}}},
        {"k": sub},
    )
    return cluster, measure(cluster, broker.port, "k", "ev")


@pytest.mark.timeout(240)
def test_single_mode_defaults_start_and_fail_over_quickly(make_cluster, conn_broker_factory):
    cluster, timings = _measure(make_cluster, conn_broker_factory)
    print(
        f"kafka single mode: first message {timings.first_message:.2f}s, "
        f"failover {timings.failover:.2f}s"
    )
    assert timings.lost == []
    assert timings.first_message < 10, timings
    assert timings.failover < 10, timings
    assert set(cluster.seen().values()) <= {1, 2, 3}  # duplicates bounded by the window


@pytest.mark.timeout(240)
def test_multiple_mode_defaults_fail_over_without_loss(make_cluster, conn_broker_factory):
    """`multiple` (a consumer group, 6 s session, 1 s heartbeats): the killed server's partitions
    move to the other once its session expired. Not within 5 s on Tansu (docs/subscriptions.md:
    ~10 s, most of it the session and Tansu's rejoin), hence the bound."""
    _cluster, timings = _measure(make_cluster, conn_broker_factory, mode="multiple")
    print(f"kafka multiple mode: failover {timings.failover:.2f}s")
    assert timings.lost == []
    assert timings.failover < 30, timings
