"""A direct child's batch, in this process: the common case runs inline in `DirectChild.handle`
(no `_run` frames, `worker.direct`), and its records must be what the general path writes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import msgspec
import pytest
import redis
import yaml
from tests.conftest import REDIS_URL

from fnhub.connectors import DirectPlace, create_direct_consumer
from fnhub.features import FEATURES
from fnhub.keys import Keys
from fnhub.project import apply_project
from fnhub.queue import iter_results
from fnhub.redis_client import sync_redis
from fnhub.subscriptions.direct import DirectJob, consumer_args
from fnhub.subscriptions.stored import load_stored
from fnhub.tasks import TaskResult
from fnhub.worker.child import Slot
from fnhub.worker.direct import DirectChild
from fnhub.worker.execute import Executor
from fnhub.worker.loader import WorkerScripts

HANDLER = """
import fnhub


@fnhub.api("handle")
def handle(topic, message):
    print("saw", message)
    if message == "bad":
        raise ValueError("bad message")
    return {"got": message}
"""


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"direct-inline-{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(name)


def _child(settings, services, stream: str) -> DirectChild:
    (settings.project_dir / "scripts").mkdir()
    (settings.project_dir / "scripts" / "handlers.py").write_text(HANDLER)
    subscription = {
        "connector": "c",
        "topics": [stream],
        "function": "handlers.handle",
        "options": {"kind": "stream", "start": "0"},
        "path": "direct",
        "record": True,
    }
    (settings.project_dir / "fnhub.yaml").write_text(
        yaml.safe_dump(
            {
                "connectors": {"c": {"type": "redis", "settings": {"url": REDIS_URL}}},
                "subscriptions": {"s": subscription},
            }
        )
    )
    apply_project(settings, services.scripts, FEATURES)
    specs, connectors = load_stored(services.db, settings)
    (spec,) = specs
    keys = Keys(settings.key_prefix)
    client = sync_redis(settings)
    executor = Executor(
        WorkerScripts(client, keys), settings.log_max_bytes, settings.result_max_bytes, settings
    )
    job = DirectJob(msgspec.json.encode(spec), connectors["c"], {}, 1)
    group, options = consumer_args(spec)
    consumer = create_direct_consumer(
        "redis",
        connectors["c"].settings,
        topics=[stream],
        group=group,
        consumer=f"inline-{os.getpid()}",
        options=options,
        place=DirectPlace(spec.mode, 0, 1, job.share, "test"),
    )
    return DirectChild(
        settings, keys, client, executor.scripts, executor, Slot.create(), job, consumer, "t"
    )


def _records(settings) -> list[TaskResult]:
    r = redis.Redis.from_url(REDIS_URL)
    return [
        result
        for _id, fields in r.xrange(Keys(settings.key_prefix).records)
        for result in iter_results(fields)
    ]


def _shape(result: TaskResult) -> dict:
    """What a record says, without what differs from run to run (ids, times)."""
    data = msgspec.structs.asdict(result)
    for name in ("id", "trigger_time", "start_time", "end_time", "traceback"):
        data.pop(name)
    data["meta"] = {k: v for k, v in data["meta"].items() if k not in ("invoke_id", "message_id")}
    return data


def test_the_inline_batch_records_what_the_general_path_does(settings, services, stream):
    child = _child(settings, services, stream)
    r = redis.Redis.from_url(REDIS_URL)
    consumer = child.consumer
    consumer.open()
    try:
        for general in (False, True):
            for text in ("a", "bad", "b"):
                r.xadd(stream, {"data": text})
            if general:  # no function resolved for the batch: every message through `_run`
                child._python_function = lambda _make: None  # type: ignore[method-assign]
            msgs = consumer.read(10, 100)
            assert len(msgs) == 3
            child.handle(msgs)
            assert child.slot.running() is None
        consumer.read(10, 10)  # sends the last batch's ack
        assert r.xpending(stream, "fnhub-s")["pending"] == 0
    finally:
        consumer.close()
        child.executor.close()
    records = _records(settings)
    assert len(records) == 6
    by_message = {}
    for record in records:
        assert record.start_time is not None and record.end_time is not None
        assert record.trigger_time <= record.start_time <= record.end_time
        assert record.meta["invoke_id"] and record.meta["message_id"]
        by_message.setdefault(record.kwargs["message"], []).append(_shape(record))
    inline, general = zip(*by_message.values(), strict=True)
    assert inline == general
    assert by_message["a"][0]["result"] == {"got": "a"}
    assert by_message["a"][0]["logs"] == "saw a\n"
    assert by_message["a"][0]["kwargs"] == {"topic": stream, "message": "a"}
    assert by_message["bad"][0]["status"] == "failure"
    assert by_message["bad"][0]["error_message"] == "bad message"
    assert child.stats.snapshot()["processed"] == 6


def test_task_ids_derive_from_the_entry_whatever_the_batch():
    """A message's task id is its millisecond in hex and a digest of (subscription, stream,
    entry id), the same in any batch (a redelivery keeps its record); messages of one
    millisecond share the prefix, and a message without an id gets a fresh one."""
    import hashlib
    from types import SimpleNamespace

    from fnhub.connectors import Message

    def expected(stream: str, entry: str, ms: int) -> str:
        digest = hashlib.blake2b(f"s\0{stream}\0{entry}".encode(), digest_size=6).hexdigest()
        return f"{ms:012x}{digest}"

    child = SimpleNamespace(spec=SimpleNamespace(name="s"))
    ms = [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_000]
    msgs = [
        Message(f"in-{i % 2}", b"x", timestamp=t / 1000, message_id=f"{t}-{i}")
        for i, t in enumerate(ms)
    ]
    ids = DirectChild._task_ids(child, msgs)  # type: ignore[arg-type]
    assert ids == [expected(m.topic, m.message_id, t) for m, t in zip(msgs, ms, strict=True)]
    assert DirectChild._task_ids(child, msgs[2:]) == ids[2:]  # another batch, the same ids
    fresh = DirectChild._task_ids(child, [Message("in-0", b"x"), msgs[0]])  # type: ignore[arg-type]
    assert fresh[1] == ids[0] and len(fresh[0]) == 24 and fresh[0] not in ids
