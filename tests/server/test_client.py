"""`fnhub.Client` and `fnhub.AsyncClient` against a real server and real workers: results, each
typed error the API answers with, submit with `result(timeout)`, retries that queue nothing
twice, and one client shared by threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.conftest import free_port

import fnhub
from fnhub import errors
from fnhub.keys import Keys

from .conftest import Stack


@pytest.fixture
def client(stack: Stack):
    with fnhub.Client(stack.url, stack.token) as c:
        yield c


def test_call_returns_the_result(client: fnhub.Client) -> None:
    assert client.call("demo.add", a=1.5, b=2) == 3.5
    assert client.call("demo.falsy", kind="false") is False
    assert client.call("demo.falsy", kind="none") is None
    assert client.call("demo.echo", **{"class": 1, "ref": "x"}) == {"class": 1, "ref": "x"}


def test_a_raising_function_raises_function_failed(client: fnhub.Client) -> None:
    with pytest.raises(errors.FunctionFailed) as caught:
        client.call("demo.fail", message="it broke")
    exc = caught.value
    assert (exc.status, exc.code, exc.error_type, exc.message) == (
        500,
        "function_failed",
        "ValueError",
        "it broke",
    )
    assert "raise ValueError(message)" in exc.traceback
    assert exc.task_id and str(exc) == f"ValueError: it broke (task {exc.task_id})"
    assert isinstance(exc, errors.TaskFailed) and isinstance(exc, errors.CallError)


def test_a_function_past_its_timeout_raises_function_timeout(client: fnhub.Client) -> None:
    with pytest.raises(errors.FunctionTimeout) as caught:
        client.call("demo.slow", seconds=5)
    assert (caught.value.status, caught.value.code) == (504, "function_timeout")
    assert caught.value.task_id
    # a shorter run limit of the call's own
    started = time.monotonic()
    with pytest.raises(errors.FunctionTimeout):
        client.options(timeout=0.3).call("demo.slow", seconds=2)
    assert time.monotonic() - started < 1.5


def test_refusals_have_their_own_classes(stack: Stack, client: fnhub.Client) -> None:
    with pytest.raises(errors.UnknownFunction) as unknown:
        client.call("demo.nope")
    assert unknown.value.status == 404 and "exports:" in unknown.value.message
    with pytest.raises(errors.InvalidKwargs) as invalid:
        client.call("demo.add", a=1, c=2)
    assert invalid.value.status == 422
    assert "unexpected keyword argument(s): c" in invalid.value.message
    impatient = fnhub.Client(stack.url, stack.token, retries=0)
    with impatient, pytest.raises(errors.NoWorker) as no_worker:
        impatient.options(queue="nobody").call("demo.add", a=1, b=2)
    assert no_worker.value.retry_after == 5 and isinstance(no_worker.value, errors.Unavailable)
    with fnhub.Client(stack.url, "fnh_0000_wrong") as stranger:
        with pytest.raises(errors.Unauthorized) as unauthorized:
            stranger.call("demo.add", a=1, b=2)
        assert unauthorized.value.status == 401
    with stack.admin() as admin:
        viewer = admin.post("/api/v1/keys", json={"name": "v", "role": "viewer"}).json()["token"]
    with fnhub.Client(stack.url, viewer) as looker:
        assert "demo.add" in {f["ref"] for f in looker.functions()}
        with pytest.raises(errors.Forbidden):
            looker.call("demo.add", a=1, b=2)


def test_no_server_is_connection_failed() -> None:
    nowhere = fnhub.Client(f"http://127.0.0.1:{free_port()}", "k", retries=0)
    with nowhere, pytest.raises(errors.ConnectionFailed):
        nowhere.call("demo.add", a=1, b=2)


def test_submit_and_result(client: fnhub.Client) -> None:
    task = client.submit("demo.slow", seconds=0.3)
    assert task.status() in ("queued", "running")
    assert task.result(timeout=10) == 0.3
    assert task.status() == "success" and task.state()["result"] == 0.3
    assert client.task(task.id).result(timeout=1) == 0.3
    failed = client.submit("demo.fail", message="later")
    with pytest.raises(errors.FunctionFailed) as caught:
        failed.result(timeout=10)
    assert (caught.value.error_type, caught.value.message, caught.value.task_id) == (
        "ValueError",
        "later",
        failed.id,
    )
    assert "raise ValueError(message)" in caught.value.traceback
    with pytest.raises(errors.UnknownTask):
        client.task("0" * 24).status()


def test_result_timeout_keeps_the_task(client: fnhub.Client) -> None:
    task = client.submit("demo.slow", seconds=0.8)
    started = time.monotonic()
    with pytest.raises(errors.ResultTimeout) as caught:
        task.result(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.7
    assert isinstance(caught.value, TimeoutError) and caught.value.task_id == task.id
    assert task.result(timeout=10) == 0.8  # the task ran on, and its result is there


def test_delayed_submit(client: fnhub.Client) -> None:
    task = client.options(delay=0.6).submit("demo.add", a=1, b=1)
    time.sleep(0.3)
    assert task.status() == "queued"
    assert task.result(timeout=10) == 2
    with pytest.raises(TypeError):
        client.options(delay=1).call("demo.add", a=1, b=1)


def test_no_worker_is_retried_after_retry_after(stack: Stack) -> None:
    """503 no_worker queues nothing, so the client waits Retry-After and tries again."""
    keys = Keys(stack.prefix)

    def worker_appears() -> None:
        time.sleep(1)
        stack.redis.hset(keys.workers, "late-worker", '{"queues": ["late"]}')
        stack.redis.set(keys.worker_alive("late-worker"), 1, ex=60)

    threading.Thread(target=worker_appears, daemon=True).start()
    with fnhub.Client(stack.url, stack.token, retries=1) as c:
        started = time.monotonic()
        task = c.options(queue="late").submit("demo.add", a=1, b=2)
        assert time.monotonic() - started >= 4.5  # Retry-After: 5
        assert task.status() == "queued"
    assert stack.redis.xlen(keys.queue("late")) == 1  # queued once


def test_one_client_shared_by_threads(client: fnhub.Client) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.call("demo.add", a=i, b=0.5), range(40)))
    assert results == [i + 0.5 for i in range(40)]


async def test_async_client(stack: Stack) -> None:
    async with fnhub.AsyncClient(stack.url, stack.token) as c:
        assert await c.call("demo.add", a=2, b=3) == 5
        task = await c.submit("demo.slow", seconds=0.3)
        assert await task.status() in ("queued", "running")
        assert await task.result(timeout=10) == 0.3
        with pytest.raises(errors.FunctionFailed) as caught:
            await c.call("demo.fail", message="async")
        assert caught.value.error_type == "ValueError" and caught.value.traceback
        with pytest.raises(errors.FunctionTimeout):
            await c.call("demo.slow", seconds=5)
        with pytest.raises(errors.UnknownFunction):
            await c.submit("demo.nope")
        slow = await c.submit("demo.slow", seconds=0.8)
        with pytest.raises(errors.ResultTimeout):
            await slow.result(timeout=0.2)
        assert await slow.result(timeout=10) == 0.8


def test_the_redis_client_is_pointed_to() -> None:
    with pytest.raises(TypeError, match="QueueClient"):
        fnhub.Client(object(), "k")  # type: ignore[arg-type]
