"""A loop retrying a dead Redis writes one line per outage, not one per try (bench/cluster.py
saw ~16 lines of ~3 KB a second from a cut-off worker's supervisor)."""

from __future__ import annotations

import logging
import time

import pytest
import redis.sentinel
from tests.conftest import free_port

from fnhub.outage_log import OutageLog, short_reason


def _sentinel_error() -> redis.RedisError:
    """redis-py's own error for Sentinels that cannot be reached (nothing listens there)."""
    sentinel = redis.sentinel.Sentinel([("127.0.0.1", free_port())], socket_timeout=0.5)
    with pytest.raises(redis.sentinel.MasterNotFoundError) as caught:
        sentinel.master_for("fnhub").ping()
    return caught.value


def test_short_reason_drops_the_client_dump_redis_py_appends() -> None:
    error = _sentinel_error()
    assert "<redis.client.Redis" in str(error)
    assert short_reason(error) == "No master found for 'fnhub'"
    assert short_reason(ConnectionError("refused")) == "refused"


def test_an_outage_is_logged_once_then_reminded_then_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog(logging.getLogger("fnhub.test"), "chores cannot reach Redis", every=0.3)
    error = _sentinel_error()
    with caplog.at_level(logging.WARNING, logger="fnhub.test"):
        for _ in range(200):  # a loop retrying every few milliseconds
            outage.failed(error)
        assert [r.getMessage() for r in caplog.records] == [
            "chores cannot reach Redis: No master found for 'fnhub'"
        ]
        time.sleep(0.35)
        outage.failed(error)
        assert "for 0 s (201 tries)" in caplog.records[-1].getMessage()
        outage.ok()
        outage.ok()  # nothing more: it was already up
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[-1].startswith("chores cannot reach Redis: recovered after 0.")
