"""The Redis Streams consumer of the direct path on its own, against the machine's Redis: what
it makes of entries (read from the raw reply), and when its acknowledgements reach Redis (with
the next read, or on close)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from tests.conftest import REDIS_URL

from fnhub.connectors.redis.direct import RedisDirectConsumer
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions

GROUP = "g"


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"direct-consumer-{uuid.uuid4().hex[:8]}"
    yield name
    r = redis.Redis.from_url(REDIS_URL)
    r.delete(name)
    for key in r.scan_iter(match=f"*{GROUP}*direct-consumer-test*"):
        r.delete(key)


def _consumer(stream: str) -> RedisDirectConsumer:
    consumer = RedisDirectConsumer(
        RedisSettings(url=REDIS_URL),
        topics=[stream],
        group=GROUP,
        consumer=f"direct-consumer-test-{uuid.uuid4().hex[:6]}",
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
