"""Fetched Kafka records as fnhub Messages: what the server's source and the worker children's
direct consumer both hand on. The direct path converts a whole `getmany` batch per partition
at a time, so what is the same for every record of a partition (topic, partition, the id's
prefix, the receipt time) is worked out once; header values are aiokafka's bytes already and
are not copied."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import ConsumerRecord

from fnhub.connectors.base import Message


def _headers(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, bytes]:
    """A record's headers as a dict (the last of a repeated name wins); a header without a
    value reads as b""."""
    out = dict(headers)
    if None in out.values():
        return {k: b"" if v is None else v for k, v in out.items()}
    return out  # type: ignore[return-value]  # no None left


def record_message(r: ConsumerRecord, client_id: str) -> Message:
    """A fetched record as a Message; its id, `topic:partition:offset`, is the same each time
    the record is read."""
    topic, partition, offset, ts, value, headers = (
        r.topic,
        r.partition,
        r.offset,
        r.timestamp,
        r.value,
        r.headers,
    )
    return Message(
        topic,
        value if value is not None else b"",
        0,
        ts / 1000 if ts and ts > 0 else time.time(),
        r.key,
        _headers(headers) if headers else {},
        partition,
        offset,
        f"{topic}:{partition}:{offset}",
        client_id,
    )


def partition_messages(
    topic: str, partition: int, records: Sequence[ConsumerRecord], client_id: str
) -> list[Message]:
    """The records of one partition (one `getmany` batch) as Messages, in order: the same
    Messages as `record_message` gives, made with what is per record only."""
    prefix = f"{topic}:{partition}:"
    now = time.time()
    out: list[Message] = []
    append = out.append
    for r in records:
        offset, ts, value, headers = r.offset, r.timestamp, r.value, r.headers
        append(
            Message(
                topic,
                value if value is not None else b"",
                0,
                ts / 1000 if ts and ts > 0 else now,
                r.key,
                _headers(headers) if headers else {},
                partition,
                offset,
                prefix + str(offset),
                client_id,
            )
        )
    return out
