"""redis_lane: commands on a held connection behave as through the client (replies, errors,
scripts Redis forgot, a connection Redis dropped)."""

from __future__ import annotations

import pytest
import redis

from fnhub.config import Settings
from fnhub.redis_client import async_redis, sync_redis
from fnhub.redis_lane import AsyncLane, SyncLane, stream_reply
from fnhub.redis_replies import as_streams


def _kill_lane_connection(client: redis.Redis, name: bytes) -> None:
    for info in client.client_list():
        if info.get("name") == name.decode():
            client.client_kill_filter(_id=info["id"])


def test_sync_lane_replies_scripts_errors_and_reconnects(settings: Settings) -> None:
    client = sync_redis(settings)
    lane = SyncLane(client)
    key = f"{settings.key_prefix}:lane"
    assert lane.execute("SET", key, b"v") in (b"OK", "OK", True)
    assert lane.execute("GET", key) == b"v"
    script = client.register_script("return redis.call('GET', KEYS[1]) .. ARGV[1]")
    client.script_flush()  # EVALSHA meets NOSCRIPT: sent again as EVAL
    assert lane.evalsha(script, [key], ["!"]) == b"v!"
    assert lane.evalsha(script, [key], ["?"]) == b"v?"  # cached by the EVAL
    with pytest.raises(redis.ResponseError):
        lane.execute("INCR", key)  # a reply error, the connection still fine
    lane.execute("CLIENT", "SETNAME", "lane-test")
    _kill_lane_connection(client, b"lane-test")
    assert lane.execute("GET", key) == b"v"  # reconnected and sent again
    lane.close()
    client.delete(key)
    client.close()


async def test_async_lane_times_out_and_reads_streams(settings: Settings) -> None:
    client = async_redis(settings)
    lane = AsyncLane(client, timeout=0.3)
    stream = f"{settings.key_prefix}:lane-stream"
    await client.xadd(stream, {"rs": b"x"})
    reply = await lane.execute("XREAD", "COUNT", 10, "STREAMS", stream, "0-0")
    [[name, entries]] = as_streams(stream_reply(reply))  # type: ignore[arg-type]
    assert name == stream.encode()
    assert [fields for _id, fields in entries] == [{b"rs": b"x"}]
    with pytest.raises(redis.TimeoutError):  # blocks past the lane's timeout
        await lane.execute("XREAD", "BLOCK", 2000, "STREAMS", stream, "$")
    assert await lane.execute("XLEN", stream) == 1  # the next command reconnects
    assert stream_reply(await lane.execute("XREAD", "BLOCK", 10, "STREAMS", stream, "$")) == []
    await lane.close()
    await client.delete(stream)
    await client.aclose()


def test_stream_reply_reads_resp2_and_resp3_shapes() -> None:
    entries = [[b"1-0", [b"a", b"1", b"b", b"2"]]]
    expected = [[b"s", [(b"1-0", {b"a": b"1", b"b": b"2"})]]]
    assert stream_reply([[b"s", entries]]) == expected
    assert stream_reply({b"s": entries}) == expected
    assert stream_reply(None) == []
