"""A subscription's status keeps updating after a message refused before it ran (its outcome
is a `Status` member, which the JSON snapshot once refused as a key: the status froze for
good). Redis Streams on the machine's Redis, a real server and worker."""

from __future__ import annotations

import time

import pytest
from tests.conftest import REDIS_URL, wait_for


@pytest.mark.timeout(90)
def test_status_keeps_updating_after_a_refused_message(make_cluster) -> None:
    stream = f"in-{time.time_ns()}"
    cluster = make_cluster(
        {"local": {"type": "redis", "settings": {"url": REDIS_URL}}},
        {
            "watched": {
                "connector": "local",
                "topics": [stream],
                "function": "handlers.count",
                "options": {"kind": "stream", "start": "0"},
            }
        },
    )
    cluster.env["FNHUB_KWARGS_MAX_BYTES"] = "300"  # a 1000-byte message is refused
    cluster.redis.delete(stream)
    try:
        cluster.start_worker(processes=1)
        cluster.start_server()
        wait_for(lambda: cluster.connected("watched") == 1, timeout=30)
        cluster.redis.xadd(stream, {"data": "x" * 1000})

        def outcomes() -> dict[str, int]:
            views = cluster.status("watched")
            return views[0]["outcomes"] if views else {}

        wait_for(lambda: outcomes() == {"failure": 1}, timeout=20, interval=0.2)
        [view] = cluster.status("watched")
        assert "over the limit of 300 bytes" in view["last"]["failure"]["error"]
        at = view["at"]
        wait_for(lambda: cluster.status("watched")[0]["at"] > at + 1, timeout=10)
        cluster.redis.xadd(stream, {"data": "ok"})
        wait_for(lambda: outcomes() == {"failure": 1, "success": 1}, timeout=20, interval=0.2)
        assert cluster.seen() == {"ok": 1}
    finally:
        cluster.redis.delete(stream)
