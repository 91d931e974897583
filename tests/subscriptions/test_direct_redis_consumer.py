"""The Redis Streams consumer of the direct path on its own, against the machine's Redis: what
it makes of entries (read from the raw reply), when its acknowledgements reach Redis (with
the next read, or on close), and when it claims a dead consumer's entries (a holder in a real
process, killed or stopped)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
from tests.conftest import REDIS_URL, redis_url_without_client, wait_for

from fnhub.connectors.base import Message
from fnhub.connectors.redis.direct import RedisDirectConsumer
from fnhub.connectors.redis.liveness import alive_key
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions

GROUP = "g"


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"direct-consumer-{uuid.uuid4().hex[:8]}"
    yield name
    r = redis.Redis.from_url(REDIS_URL)
    r.delete(name)
    for key in r.scan_iter(match=f"*{GROUP}*{name}-*"):  # its consumers' keys: this test's only
        r.delete(key)


def _consumer(stream: str) -> RedisDirectConsumer:
    consumer = RedisDirectConsumer(
        RedisSettings(url=REDIS_URL),
        topics=[stream],
        group=GROUP,
        consumer=f"{stream}-test-{uuid.uuid4().hex[:6]}",
        options=RedisSourceOptions(kind="stream", start="0"),
    )
    consumer.open()
    return consumer


def _pending(stream: str) -> int:
    return int(redis.Redis.from_url(REDIS_URL).xpending(stream, GROUP)["pending"])


def test_entries_become_messages_payload_headers_or_json(stream: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    plain = r.xadd(stream, {"data": b"\x00raw bytes"}).decode()
    with_header = r.xadd(stream, {"data": "body", "source": "plant-7"}).decode()
    no_payload = r.xadd(stream, {"temp": "21.5", "unit": "C"}).decode()
    consumer = _consumer(stream)
    try:
        msgs = consumer.read(10, 100)
        assert [m.message_id for m in msgs] == [plain, with_header, no_payload]
        assert all(m.topic == stream and not m.redelivered for m in msgs)
        assert msgs[0].payload == b"\x00raw bytes" and msgs[0].headers == {}
        assert msgs[0].timestamp == int(plain.split("-")[0]) / 1000
        assert msgs[1].payload == b"body" and msgs[1].headers == {"source": b"plant-7"}
        # an entry without the payload field is handed over as a JSON object of its fields
        assert json.loads(msgs[2].payload) == {"temp": "21.5", "unit": "C"}
        assert consumer.status.received == 3
    finally:
        consumer.close()


def test_an_ack_goes_with_the_next_read_and_close_sends_the_last(stream: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    for i in range(5):
        r.xadd(stream, {"data": f"m{i}"})
    consumer = _consumer(stream)
    first = consumer.read(3, 100)
    consumer.ack(first)
    assert _pending(stream) == 3, "not sent before the next read"
    assert consumer.status.acked == 0
    second = consumer.read(3, 100)  # sends the first batch's ack in its round trip
    assert [m.payload for m in second] == [b"m3", b"m4"]
    assert _pending(stream) == 2 and consumer.status.acked == 3
    consumer.ack(second)
    consumer.close()  # a stopping child sends what it acknowledged
    assert _pending(stream) == 0


def test_a_batch_past_luas_unpack_limit_is_acknowledged_whole(stream: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    pipe = r.pipeline(transaction=False)
    for i in range(2500):
        pipe.xadd(stream, {"data": f"m{i}"})
    pipe.execute()
    consumer = _consumer(stream)
    try:
        msgs = consumer.read(2500, 100)
        assert len(msgs) == 2500
        consumer.ack(msgs)
        assert consumer.read(10, 10) == []
        assert _pending(stream) == 0 and consumer.status.acked == 2500
    finally:
        consumer.close()


#: a consumer in its own process that reads the stream's entries and holds them (never acks);
#: its key lives 600 s, so a claim seen within the test's wait came before the key lapsed
HOLDER = """
import sys, time
from fnhub.connectors.redis.direct import RedisDirectConsumer
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions
url, stream, group, name = sys.argv[1:5]
consumer = RedisDirectConsumer(RedisSettings(url=url), topics=[stream], group=group,
    consumer=name, options=RedisSourceOptions(kind="stream", start="0"), alive_ttl_ms=600_000)
consumer.open()
print(len(consumer.read(100, 100)), flush=True)
time.sleep(600)
"""
HOLDER_TTL_MS = 600_000


def _holder(stream: str, n: int, url: str = REDIS_URL) -> tuple[subprocess.Popen[str], str]:
    """A holder process with the stream's `n` entries pending, and its consumer name."""
    name = f"{stream}-holder-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, stream, GROUP, name],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    held = proc.stdout.readline()
    assert int(held) == n
    return proc, name


def _read_until(consumer: RedisDirectConsumer, done: object) -> list[Message]:
    """What `consumer` reads (as a child does, 100 ms blocks) until `done()` is true."""
    got: list[Message] = []
    assert callable(done)
    wait_for(lambda: got.extend(consumer.read(10, 100)) or done(got), timeout=60)
    return got


def _held_by(stream: str, name: str) -> int:
    pending = redis.Redis.from_url(REDIS_URL).xpending_range(stream, GROUP, "-", "+", 100, name)
    return len(pending)


def test_a_killed_consumers_entries_are_claimed_before_its_key_lapses(stream: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    ids = [r.xadd(stream, {"data": f"m{i}"}).decode() for i in range(3)]
    holder, name = _holder(stream, 3)
    survivor = _consumer(stream)
    try:
        assert r.get(alive_key(GROUP, name)) == b"named 600000 500"  # TTL, renewal period
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        got = _read_until(survivor, lambda got: len(got) >= 3)
        assert sorted(m.message_id for m in got) == ids and all(m.redelivered for m in got)
        # its connections closed with its process: claimed while its key lives on
        assert r.pttl(alive_key(GROUP, name)) > HOLDER_TTL_MS - 60_000
        assert _held_by(stream, name) == 0
    finally:
        survivor.close()
        holder.kill()


def test_a_stopped_consumer_keeps_its_entries_until_its_key_lapses(stream: str) -> None:
    """SIGSTOP: its key goes stale, but its connections stay open (as a partitioned or frozen
    host's would): not judged dead. Killed then, it is."""
    r = redis.Redis.from_url(REDIS_URL)
    for i in range(3):
        r.xadd(stream, {"data": f"m{i}"})
    holder, name = _holder(stream, 3)
    survivor = _consumer(stream)
    try:
        os.kill(holder.pid, signal.SIGSTOP)
        # three lists with it stale, our connections quiet: its second check came and went
        got = _read_until(survivor, lambda _got: survivor._unconnected.judged >= 3)
        assert got == [] and _held_by(stream, name) == 3
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        got = _read_until(survivor, lambda got: len(got) >= 3)
        assert r.pttl(alive_key(GROUP, name)) > HOLDER_TTL_MS - 60_000
    finally:
        survivor.close()
        holder.kill()


def test_a_consumer_that_could_not_name_its_connections_is_not_judged(stream: str) -> None:
    """An ACL refusing CLIENT SETNAME: nothing tells its death from a connection it never
    named, so its entries wait for its key to lapse."""
    r = redis.Redis.from_url(REDIS_URL)
    for i in range(3):
        r.xadd(stream, {"data": f"m{i}"})
    with redis_url_without_client(r, REDIS_URL) as url:
        holder, name = _holder(stream, 3, url)
        assert r.get(alive_key(GROUP, name)).startswith(b"unnamed ")
        survivor = _consumer(stream)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        # checks at least a second apart: past our quiet time and its key's staleness
        got = _read_until(survivor, lambda _got: survivor.dead_checks >= 7)
        assert got == [] and _held_by(stream, name) == 3
        assert survivor._unconnected.judged == 0  # never even listed: nobody was stale
        survivor.close()
