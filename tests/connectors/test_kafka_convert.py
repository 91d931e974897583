"""Records as Messages (`fnhub.connectors.kafka.convert`): the batch converter of the direct
path gives field for field what the single-record one gives, on real aiokafka records."""

from __future__ import annotations

import time

from aiokafka.structs import ConsumerRecord

from fnhub.connectors.base import Message
from fnhub.connectors.kafka.convert import partition_messages, record_message


def _record(offset: int, *, ts: int = 1_700_000_000_123, value: bytes | None = b"v", headers=()):
    return ConsumerRecord("orders", 3, offset, ts, 0, b"key", value, None, 3, 1, list(headers))


def test_a_record_lands_in_every_field() -> None:
    m = record_message(_record(7, headers=[("trace", b"t1"), ("kind", b"x")]), "child-1")
    assert m == Message(
        topic="orders",
        payload=b"v",
        qos=0,
        timestamp=1_700_000_000.123,
        key=b"key",
        headers={"trace": b"t1", "kind": b"x"},
        partition=3,
        offset=7,
        message_id="orders:3:7",
        client_id="child-1",
        redelivered=False,
    )


def test_batch_conversion_matches_the_single_record_one() -> None:
    records = [
        _record(10, headers=[("a", b"1")]),
        _record(11, value=None),
        _record(13, headers=[("a", b"1"), ("a", b"2"), ("empty", None)]),
        _record(14, ts=1),
    ]
    batch = partition_messages("orders", 3, records, "c")
    assert batch == [record_message(r, "c") for r in records]
    assert [m.message_id for m in batch] == [
        "orders:3:10",
        "orders:3:11",
        "orders:3:13",
        "orders:3:14",
    ]
    assert batch[1].payload == b""  # a tombstone (no value) reads as empty
    assert batch[2].headers == {"a": b"2", "empty": b""}  # last of a name wins; None is b""


def test_no_broker_timestamp_reads_as_the_receipt_time() -> None:
    before = time.time()
    for m in [
        record_message(_record(1, ts=-1), "c"),
        *partition_messages("orders", 3, [_record(2, ts=0)], "c"),
    ]:
        assert before <= m.timestamp <= time.time()


def test_messages_do_not_share_their_headers() -> None:
    a, b = partition_messages("orders", 3, [_record(1), _record(2)], "c")
    a.headers["x"] = b"1"
    assert b.headers == {}
