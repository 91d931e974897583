"""`DFF.CACHE` on a real Redis: DataFlux Func's method names, return values and `scope=`, on
fnhub.cache's keys."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from fnhub import runtime
from fnhub.cache import cache as fnhub_cache
from fnhub.config import Settings
from fnhub.dff import DFF
from fnhub.tasks import Task


@pytest.fixture
def in_task(settings: Settings) -> Iterator[redis.Redis]:
    """This process as a worker child running a task of script `shop`."""
    client = redis.Redis.from_url(settings.redis_url)
    runtime.init(settings, client)
    token = runtime.current_task.set(Task(function="shop.tick"))
    yield client
    runtime.current_task.reset(token)
    runtime.init(None, None)  # type: ignore[arg-type]
    client.close()


def test_strings_keep_redis_meaning_on_fnhub_cache_keys(in_task, settings):
    cache = DFF.CACHE
    assert cache.set("greeting", "hi") is True
    assert cache.get("greeting") == "hi"
    assert in_task.get(f"{settings.key_prefix}:cache:shop:greeting") == b"hi"
    assert cache.set("greeting", "again", not_exists=True) is None
    assert cache.set("missing", "x", exists=True) is None
    assert cache.set("n", 1) and cache.get("n") == "1"  # as in DataFlux Func: strings out
    assert cache.incr("n") == 2 and cache.incrby("n", 3) == 5
    assert fnhub_cache.get("n") == 5  # a counter reads the same through fnhub.cache
    fnhub_cache.incr("hits")
    assert cache.get("hits") == "1"
    assert cache.getset("greeting", "bye") == "hi"
    assert cache.mset({"a": "1", "b": "2"})
    assert cache.mget(["a", "b", "zz"]) == {"a": "1", "b": "2", "zz": None}
    assert cache.set("short", "x", expires=30) and 0 < cache.ttl("short") <= 30
    assert 0 < cache.pttl("short") <= 30_000
    assert cache.expire("a", 60) and cache.ttl("a") > 0
    assert cache.expireat("b", int(time.time()) + 60) and cache.ttl("b") > 0
    assert cache.exists("a") and not cache.exists("nope")
    assert cache.type("a") == "string"
    assert cache("greeting") == "bye"
    assert cache.delete(["a", "b"]) == 2
    assert cache.run("strlen", "greeting") == 3
    assert cache.ping() and cache.dbsize() > 0


def test_scopes_keys_and_patterns(in_task, settings):
    cache = DFF.CACHE
    cache.set("user:1", "ada")
    cache.set("user:2", "bob")
    cache.set("user:1", "other", scope="elsewhere")
    assert sorted(cache.keys("user:*")) == ["user:1", "user:2"]
    assert cache.keys("*", scope="elsewhere") == ["user:1"]
    assert cache.get_pattern("user:*") == {"user:1": "ada", "user:2": "bob"}
    assert cache.get_pattern("none:*") is None
    assert cache.delete_pattern("user:*") == 2
    assert cache.delete_pattern("user:*") is None
    assert cache.get("user:1", scope="elsewhere") == "other"
    assert in_task.exists(f"{settings.key_prefix}:cache:elsewhere:user:1")


def test_hashes(in_task):
    cache = DFF.CACHE
    assert cache.hset("h", "a", 1) == 1
    assert cache.hset("h", "a", 2, not_exists=True) == 0
    assert cache.hsetnx("h", "b", "x") == 1
    assert cache.hmset("h", {"c": "3", "d": "4"})
    assert cache.hget("h", "a") == "1"
    assert cache.hmget("h", ["a", "zz"]) == {"a": "1", "zz": None}
    assert cache.hgetall("h") == {"a": "1", "b": "x", "c": "3", "d": "4"}
    assert sorted(cache.hkeys("h")) == ["a", "b", "c", "d"]
    assert cache.hkeys("h", "c*", with_values=True) == {"c": "3"}
    assert cache.hincr("h", "a") == 2 and cache.hincrby("h", "a", 5) == 7
    assert cache.hdel("h", ["c", "d"]) == 2


def test_lists_sets_sorted_sets(in_task):
    cache = DFF.CACHE
    assert cache.lpush("l", ["a", "b"]) == 2 and cache.rpush("l", "z") == 3
    assert cache.lrange("l") == ["b", "a", "z"] and cache.llen("l") == 3
    assert cache.push("l", "p") == 4 and cache.pop("l") == "z"
    assert cache.lpop("l") == "p" and cache.rpop("l") == "a"
    assert cache.rpoplpush("l", "l2") == "b" and cache.lrange("l2") == ["b"]
    assert cache.brpop("l2", timeout=1) == ["l2", "b"]
    assert cache.bpop("l2", timeout=1) is None
    cache.rpush("l3", ["1", "2", "3"])
    assert cache.ltrim("l3", 0, 1) and cache.lrange("l3") == ["1", "2"]
    assert cache.blpop("l3", timeout=1) == ["l3", "1"]
    assert cache.brpoplpush("l3", "l4", timeout=1) == "2"
    assert cache.sadd("s", ["x", "y"]) == 2 and cache.srem("s", "y") == 1
    assert cache.scard("s") == 1 and cache.smembers("s") == ["x"]
    assert cache.sismember("s", "x") and not cache.sismember("s", "y")
    assert cache.zadd("z", {"a": 1, "b": 2, "c": 3}) == 3
    assert cache.zrange("z") == ["a", "b", "c"]
    assert cache.zrange("z", 0, 0, with_scores=True) == [["a", 1.0]]
    assert cache.zrangebyscore("z", 2, "+inf") == ["b", "c"]
    assert cache.zrem("z", ["a"]) == 1 and cache.zcard("z") == 2


def test_publish_goes_to_the_scoped_channel(in_task, settings):
    pubsub = in_task.pubsub()
    pubsub.subscribe(f"{settings.key_prefix}:cache:shop:news")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    assert DFF.CACHE.publish("news", "hello") == 1
    message = pubsub.get_message(timeout=2)
    assert message["data"] == b"hello"
    pubsub.close()
