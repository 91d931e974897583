"""Messages that no retry can help are handled as visible failures, not retried forever and not
lost: an unknown function fails the whole batch, an oversized message fails alone while the
rest of its batch runs. The machine's Redis and a real worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from tests.conftest import wait_for

from fnhub.calling.caller import Caller
from fnhub.connections import ConnectorConfig
from fnhub.connectors import Message
from fnhub.keys import Keys
from fnhub.redis_client import async_redis
from fnhub.server.context import ServerContext
from fnhub.store.db import Database
from fnhub.subscriptions.messages import kwargs_size_bound, message_text
from fnhub.subscriptions.runner import Runner
from fnhub.subscriptions.spec import parse_spec
from fnhub.task_history import record_detail

SCRIPT = """
import fnhub

@fnhub.api("handle")
def handle(topic, message):
    return len(message)
"""


#: the server context each caller fixture runs in
contexts: dict[Caller, ServerContext] = {}


@pytest.fixture
async def caller(settings, publish, start_worker) -> AsyncIterator[Caller]:  # type: ignore[no-untyped-def]
    settings.kwargs_max_bytes = 200
    publish({"handlers": SCRIPT})
    start_worker(queues=["sub"], processes=1)
    client, keys = async_redis(settings), Keys(settings.key_prefix)
    c = Caller(settings, client, keys, "refusals-test")
    db = Database(settings.resolved_db_url())
    contexts[c] = ServerContext(settings, client, db, keys, "refusals-test", c)
    await c.start()
    yield c
    await c.stop()
    await client.aclose()
    db.dispose()


def _runner(caller: Caller, function: str) -> Runner:
    spec = parse_spec({"name": "s", "connector": "c", "topics": ["t"], "function": function})
    connector = ConnectorConfig(name="c", type="redis", settings={})
    return Runner(spec, connector, {"c": connector}, contexts[caller], caller, node="n1")


async def _handle(runner: Runner, payloads: list[bytes]) -> list[tuple[int, bool]]:
    settled: list[tuple[int, bool]] = []
    msgs = [Message(topic="t", payload=p) for p in payloads]
    await runner.handle_batch(msgs, lambda i, ok: settled.append((i, ok)))
    return sorted(settled)


async def test_unknown_function_fails_every_message_visibly(caller: Caller) -> None:
    runner = _runner(caller, "handlers.nope")
    assert await _handle(runner, [b"a", b"b"]) == [(0, True), (1, True)]  # handled: acked
    assert runner.stats.by_outcome == {"failure": 2}
    last = runner.stats.last["failure"]
    assert "unknown function 'handlers.nope'" in last["error"]
    assert last["message"] == {"text": "b", "truncated": False}


async def test_an_oversized_message_fails_alone(caller: Caller) -> None:
    runner = _runner(caller, "handlers.handle")
    big = b"x" * 500  # over kwargs_max_bytes (200) once it is the `message` kwarg
    assert await _handle(runner, [b"small", big, b"tiny"]) == [(0, True), (1, True), (2, True)]
    assert runner.stats.by_outcome == {"success": 2, "failure": 1}
    assert "over the limit of 200 bytes" in runner.stats.last["failure"]["error"]
    assert runner.stats.last["success"]["result"] in (4, 5)  # len("tiny") or len("small")


async def test_the_last_message_names_its_task_when_there_is_one(caller: Caller) -> None:
    """The console links a subscription's last message to the task that handled it: a task
    that ran is named (its status is readable), a refused message has no task to name."""
    runner = _runner(caller, "handlers.handle")
    await _handle(runner, [b"small", b"x" * 500])
    task_id = runner.stats.last["success"]["task_id"]
    db = contexts[caller].db
    record = await asyncio.to_thread(wait_for, lambda: record_detail(db, task_id))
    assert record["status"] == "success" and record["origin_id"] == "s"
    assert "task_id" not in runner.stats.last["failure"]
    unrecorded = _runner(caller, "handlers.handle")
    unrecorded.spec = msgspec.structs.replace(unrecorded.spec, record=False)
    await _handle(unrecorded, [b"quiet"])
    assert "task_id" not in unrecorded.stats.last["success"]


async def test_the_size_limit_holds_to_the_byte(caller: Caller) -> None:
    """The runner skips measuring kwargs it knows are small: at the limit itself a message is
    measured, taken when its kwargs are exactly 200 bytes and refused at 201."""
    runner = _runner(caller, "handlers.handle")
    # {"topic": "t", "message": <n bytes>} is 19 + n bytes of msgpack (n < 256)
    fits, over = b"y" * 181, b"z" * 182
    assert await _handle(runner, [fits, over]) == [(0, True), (1, True)]
    assert runner.stats.by_outcome == {"success": 1, "failure": 1}
    assert runner.stats.last["success"]["result"] == 181
    assert "kwargs are 201 bytes" in runner.stats.last["failure"]["error"]


@pytest.mark.parametrize("size", [0, 1, 31, 32, 255, 256, 65535, 65536, 70000])
@pytest.mark.parametrize(
    "topic", ["t", "sensors/é/温度", "x" * 300], ids=["short", "unicode", "long"]
)
def test_the_kwargs_size_bound_is_never_below_the_encoded_size(size: int, topic: str) -> None:
    for payload in (b"a" * size, b"\xff" * size):  # text, and bytes that are not UTF-8
        msg = Message(topic=topic, payload=payload)
        encoded = msgspec.msgpack.encode({"topic": topic, "message": message_text(payload)})
        bound = kwargs_size_bound("kwargs", msg)
        assert bound is not None and len(encoded) <= bound
    assert kwargs_size_bound("event_context", Message(topic=topic, payload=b"{}")) is None
