"""The SDK a JavaScript function sees, answered by Python: the cache on the same Redis keys as
Python's `fnhub.cache`, and publishing through a stored connector (real Redis)."""

from __future__ import annotations

import uuid

import redis
from tests.conftest import REDIS_URL

from fnhub.cache import cache
from fnhub.config import Settings
from fnhub.connectors import validate_settings
from fnhub.keys import Keys
from fnhub.runtime import current_task
from fnhub.secret_box import SecretBox, resolve_secret_key
from fnhub.store.connectors import save_connector
from fnhub.store.db import Database
from fnhub.tasks import Task

from .conftest import JsScripts, ok, run

CACHE = """
const fnhub = require('fnhub');
exports.roundTrip = async () => {
  const out = {};
  out.set = await fnhub.cache.set('greeting', { text: 'hi', n: [1, 2] });
  out.get = await fnhub.cache.get('greeting');
  out.missing = await fnhub.cache.get('nope', 'fallback');
  out.incr = await fnhub.cache.incr('counter');
  out.incr2 = await fnhub.cache.incr('counter', 5);
  out.nx = await fnhub.cache.set('greeting', 'other', { notExists: true });
  await fnhub.cache.set('short', 1, { expires: 100 });
  const ttl = await fnhub.cache.ttl('short');
  out.ttl = ttl > 90 && ttl <= 100;
  out.exists = await fnhub.cache.exists('short');
  out.deleted = await fnhub.cache.delete('short');
  out.gone = await fnhub.cache.exists('short');
  await fnhub.cache.hset('h', 'f', { deep: true });
  out.hget = await fnhub.cache.hget('h', 'f');
  out.hincr = await fnhub.cache.hincr('h', 'n', 2);
  out.hgetall = await fnhub.cache.hgetall('h');
  out.hdel = await fnhub.cache.hdel('h', ['f', 'n']);
  out.keys = await fnhub.cache.keys();
  await fnhub.cache.set('shared', 'across scripts', { scope: 'common' });
  return out;
};
exports.fromPython = () => fnhub.cache.get('written by python');
exports.badCall = async () => {
  try {
    await fnhub.cache.expire('x', 'not a number');
  } catch (err) {
    return `${err.name}: caught`;
  }
};
"""


def test_cache_round_trip_on_pythons_keys(
    js: JsScripts, make_executor, sdk_runtime: Settings
) -> None:
    js.publish(store=CACHE)
    executor = make_executor()
    assert ok(run(executor, "store.roundTrip")) == {
        "set": True,
        "get": {"text": "hi", "n": [1, 2]},
        "missing": "fallback",
        "incr": 1,
        "incr2": 6,
        "nx": False,
        "ttl": True,
        "exists": True,
        "deleted": True,
        "gone": False,
        "hget": {"deep": True},
        "hincr": 2,
        "hgetall": {"f": {"deep": True}, "n": 2},
        "hdel": 2,
        "keys": ["counter", "greeting"],
    }
    # the same keys Python's fnhub.cache uses: scope = the script's name
    keys = Keys(sdk_runtime.key_prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.get(keys.cache("store", "counter")) == b"6"
        assert client.get(keys.cache("common", "shared")) == b'"across scripts"'
    finally:
        client.close()
    token = current_task.set(Task(function="store.any"))
    try:
        assert cache.get("greeting") == {"text": "hi", "n": [1, 2]}
        cache.set("written by python", [True, None])
    finally:
        current_task.reset(token)
    assert ok(run(executor, "store.fromPython")) == [True, None]
    assert ok(run(executor, "store.badCall")) == "ValueError: caught"  # Python's error, by name


PUBLISH = """
const fnhub = require('fnhub');
exports.send = async ({ target, topic }) => {
  await fnhub.connector(target).publish(topic, { hello: 'world' }, { kind: 'stream' });
  await fnhub.connector(target).publish(topic, Buffer.from([1, 2, 3]), { kind: 'stream' });
  return 'sent';
};
exports.unknown = async () => {
  try {
    await fnhub.connector('no-such-connector').publish('t', 'x');
  } catch (err) {
    return err.message;
  }
};
"""


def test_connector_publish_through_a_stored_connector(
    js: JsScripts, make_executor, sdk_runtime: Settings
) -> None:
    settings = sdk_runtime
    db = Database(settings.resolved_db_url())
    db.migrate()
    name = f"out-{uuid.uuid4().hex[:8]}"
    box = SecretBox(resolve_secret_key(settings))
    try:
        with db.session() as session, session.begin():
            save_connector(
                session,
                box,
                name,
                type_="redis",
                description="",
                settings={"url": REDIS_URL},
                actor="test",
                validate=validate_settings,
            )
    finally:
        db.dispose()
    topic = f"{settings.key_prefix}:out"
    js.publish(pub=PUBLISH)
    executor = make_executor()
    assert ok(run(executor, "pub.send", {"target": name, "topic": topic})) == "sent"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        entries = client.xrange(topic)
    finally:
        client.close()
    payloads = [fields for _id, fields in entries]
    assert [next(iter(p.values())) for p in payloads] == [b'{"hello":"world"}', b"\x01\x02\x03"]
    assert f"no connector named 'no-such-connector' (known: {name}" in ok(
        run(executor, "pub.unknown")
    )
