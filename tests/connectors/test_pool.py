"""The publisher pool: one publisher per connector name, reopened on settings change, and a
fresh pool in a forked child (the parent's sockets and threads are not the child's)."""

from __future__ import annotations

import multiprocessing

import redis

from fnhub.connectors import get_publisher
from fnhub.connectors.pool import close_publisher, close_publishers

from .conftest import SHARED_REDIS_URL


def _child(conn, name: str, key: str) -> None:  # type: ignore[no-untyped-def]
    pub = get_publisher(name, "redis", {"url": SHARED_REDIS_URL})
    pub.publish(key, b"from-child", kind="stream")
    conn.send(id(pub))
    close_publishers()


def test_pool_reuses_reopens_and_resets_after_fork(conn_prefix):
    name, key = conn_prefix + "pool", conn_prefix + "pool-stream"
    settings = {"url": SHARED_REDIS_URL}
    pub = get_publisher(name, "redis", settings)
    assert get_publisher(name, "redis", dict(settings)) is pub  # same settings: same object
    pub.publish(key, b"from-parent", kind="stream")

    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child_end, name, key))
    proc.start()
    assert parent_end.poll(20)
    child_pub_id = parent_end.recv()
    proc.join(20)
    assert proc.exitcode == 0
    assert child_pub_id != id(pub)  # the child opened its own

    changed = get_publisher(name, "redis", {**settings, "socket_timeout": 2})
    assert changed is not pub
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        assert [e[1][b"data"] for e in client.xrange(key)] == [b"from-parent", b"from-child"]
    finally:
        client.delete(key)
        client.close()
    close_publisher(name)
