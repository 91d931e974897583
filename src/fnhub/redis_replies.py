"""Typed views of redis-py replies, narrowed in one place for the whole code base.

redis-py annotates every reply as ``bytes | str`` (it cannot know whether a client decodes
responses) and a stream read as the union of its RESP2 and RESP3 shapes. fnhub builds every client
without ``decode_responses`` and on RESP2 (fnhub.redis_client, and the Redis connector's
fnhub.connectors.redis.client), so a reply is bytes and a stream read is
``[[stream, [(id, fields), ...]], ...]``. These helpers state that once, so callers get precise
types instead of scattered casts and ignores. They neither copy nor check at run time: they sit
on the worker's hot path, and a decoding client would fail the tests at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeAlias, cast

if TYPE_CHECKING:  # redis-py names its reply shapes from 8.0 on; only the checker reads them
    from redis.typing import (
        StreamRangeResponse,
        XClaimResponse,
        XPendingRangeResponse,
        XReadGroupResponse,
        XReadResponse,
    )

Fields: TypeAlias = dict[bytes, bytes]
#: a stream entry as read: its id and its fields
Entry: TypeAlias = tuple[bytes, Fields]
#: an entry re-read from a consumer group's pending list: fields are None once it was deleted
PendingEntry: TypeAlias = tuple[bytes, Fields | None]
#: XREAD / XREADGROUP ">": per stream read, its name and its new entries
Streams: TypeAlias = list[tuple[bytes, list[Entry]]]
#: XREADGROUP "0": per stream read, its name and the pending entries
PendingStreams: TypeAlias = list[tuple[bytes, list[PendingEntry]]]


def as_str(reply: object) -> str:
    """A reply read as text: bytes decoded (UTF-8), anything else (an int from a script) as
    str()."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def as_bytes(reply: bytes | str) -> bytes:
    """A string reply (GET, HGET, a hash field...) that is known to exist."""
    return cast(bytes, reply)


def as_optional_bytes(reply: bytes | str | None) -> bytes | None:
    """A string reply that is None when the key or field does not exist."""
    return cast(bytes | None, reply)


def as_popped(reply: bytes | str | list[bytes | str] | None) -> bytes | None:
    """LPOP / RPOP without a count: one value, None when the list is empty."""
    return cast(bytes | None, reply)


def as_list(reply: list[bytes | str]) -> list[bytes]:
    """A list of strings: HKEYS, LRANGE, SMEMBERS..."""
    return cast(list[bytes], reply)


def as_optional_list(reply: list[bytes | str | None]) -> list[bytes | None]:
    """HMGET / MGET: a value per name asked, None where there is none."""
    return cast(list[bytes | None], reply)


def as_hash(reply: Mapping[bytes | str, bytes | str]) -> Fields:
    """HGETALL's field -> value mapping."""
    return cast(Fields, reply)


def as_entries(reply: StreamRangeResponse | None) -> list[Entry]:
    """XRANGE / XREVRANGE: entries read by id, each with its id and fields."""
    return cast(list[Entry], reply or [])


def as_claimed(reply: XClaimResponse) -> list[Entry]:
    """XCLAIM without JUSTID: the entries now held, each with its fields."""
    return cast(list[Entry], reply)


def pending_ids(reply: XPendingRangeResponse) -> list[bytes]:
    """XPENDING over a range: the ids of the entries it lists."""
    return [cast(bytes, row["message_id"]) for row in reply]


def as_streams(reply: XReadResponse | XReadGroupResponse | None) -> Streams:
    """XREAD or XREADGROUP with ">" (entries never delivered): [] when the block timed out."""
    return cast(Streams, reply or [])


def as_pending_streams(reply: XReadGroupResponse | None) -> PendingStreams:
    """XREADGROUP with an id (re-reading the consumer's pending list): [] when none."""
    return cast(PendingStreams, reply or [])
