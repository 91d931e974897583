"""Sync and async calls through the admin API against a real server and real workers."""

from __future__ import annotations

import json
import time

import pytest

from fnhub.keys import Keys

from .conftest import Stack


def call(stack: Stack, ref: str, body: object) -> tuple[int, dict]:
    with stack.admin() as c:
        r = c.post(f"/api/v1/functions/{ref}/call", json=body)
        assert r.headers["x-request-id"]
        return r.status_code, r.json()


def test_sync_call_success_and_falsy_results(stack: Stack) -> None:
    status, body = call(stack, "demo.add", {"kwargs": {"a": 1.5, "b": 2}})
    assert (status, body["status"], body["result"]) == (200, "success", 3.5)
    for kind, value in [("zero", 0), ("false", False), ("empty", ""), ("list", []), ("none", None)]:
        status, body = call(stack, "demo.falsy", {"kwargs": {"kind": kind}})
        assert status == 200 and body["result"] == value and type(body["result"]) is type(value)


def test_sync_call_errors_are_distinct(stack: Stack) -> None:
    status, body = call(stack, "demo.nope", {"kwargs": {}})
    assert status == 404 and body["error"]["code"] == "unknown_function"
    status, body = call(stack, "demo.add", {"kwargs": {"a": 1, "c": 2}})
    assert status == 422 and "unexpected keyword argument(s): c" in body["error"]["message"]
    status, body = call(stack, "demo.fail", {"kwargs": {"message": "it broke"}})
    assert status == 500
    assert body["error"]["error_type"] == "ValueError"
    assert body["error"]["message"] == "it broke"
    assert "raise ValueError(message)" in body["error"]["traceback"]
    status, body = call(stack, "demo.slow", {"kwargs": {"seconds": 5}})
    assert status == 504 and body["error"]["code"] == "function_timeout"
    status, body = call(stack, "demo.add", {"kwargs": {"a": 1, "b": 2}, "queue": "nobody"})
    assert status == 503 and body["error"]["code"] == "no_worker"


def test_queue_over_its_limit_is_503(stack: Stack) -> None:
    keys = Keys(stack.prefix)
    # a live worker announces queue "parked" (its heartbeat key), and the queue holds 50 tasks
    stack.redis.hset(keys.workers, "parked-worker", json.dumps({"queues": ["parked"]}))
    stack.redis.set(keys.worker_alive("parked-worker"), 1, ex=60)
    pipe = stack.redis.pipeline()
    for _ in range(50):
        pipe.xadd(keys.queue("parked"), {"e": b"x"})
    pipe.execute()
    time.sleep(1.2)  # the server refreshes queue lengths every second
    status, body = call(stack, "demo.add", {"kwargs": {"a": 1, "b": 2}, "queue": "parked"})
    assert status == 503 and body["error"]["code"] == "queue_full"
    assert stack.redis.xlen(keys.queue("parked")) == 50  # nothing was added


def test_async_call_status_and_long_poll(stack: Stack) -> None:
    with stack.admin() as c:
        r = c.post("/api/v1/functions/demo.slow/tasks", json={"kwargs": {"seconds": 0.4}})
        assert r.status_code == 202
        task_id = r.json()["id"]
        assert r.headers["location"] == f"/api/v1/tasks/{task_id}"
        first = c.get(f"/api/v1/tasks/{task_id}").json()
        assert first["status"] in ("queued", "running")
        done = c.get(f"/api/v1/tasks/{task_id}", params={"wait": 10}).json()
        assert (done["status"], done["result"]) == ("success", 0.4)
        r = c.post("/api/v1/functions/demo.falsy/tasks", json={"kwargs": {"kind": "false"}})
        done = c.get(f"/api/v1/tasks/{r.json()['id']}", params={"wait": 10}).json()
        assert done["status"] == "success" and done["result"] is False
        r = c.post("/api/v1/functions/demo.fail/tasks", json={"kwargs": {}})
        done = c.get(f"/api/v1/tasks/{r.json()['id']}", params={"wait": 10}).json()
        assert (done["status"], done["error_type"]) == ("failure", "ValueError")
        assert c.get("/api/v1/tasks/nosuchtask").status_code == 404


def test_delayed_task_runs_later(stack: Stack) -> None:
    with stack.admin() as c:
        r = c.post(
            "/api/v1/functions/demo.add/tasks", json={"kwargs": {"a": 1, "b": 1}, "delay": 1}
        )
        task_id = r.json()["id"]
        assert c.get(f"/api/v1/tasks/{task_id}").json()["status"] == "queued"
        done = c.get(f"/api/v1/tasks/{task_id}", params={"wait": 10}).json()
        assert done["status"] == "success" and done["start_time"] - done["trigger_time"] >= 0.9


def test_task_records_are_paged_and_filtered(stack: Stack) -> None:
    with stack.admin() as c:
        for i in range(3):
            assert call(stack, "demo.add", {"kwargs": {"a": i, "b": 0}})[0] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            page = c.get(
                "/api/v1/tasks", params={"function": "demo.add", "status": "success", "limit": 2}
            ).json()
            if page["total"] >= 3:
                break
            time.sleep(0.3)
        assert page["total"] >= 3 and len(page["items"]) == 2
        assert all(t["function"] == "demo.add" for t in page["items"])
        nxt = c.get(
            "/api/v1/tasks",
            params={"function": "demo.add", "status": "success", "limit": 2, "offset": 2},
        ).json()
        assert {t["id"] for t in nxt["items"]}.isdisjoint({t["id"] for t in page["items"]})
        assert c.get("/api/v1/tasks", params={"origin": "cron"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        ({"content-type": "application/json"}, b'{"kwargs": {"a": 1,', 400, "malformed_json"),
        ({"content-type": "application/json"}, b'{"kwargs": {}, "extra": 1}', 422, None),
        ({"content-type": "application/json"}, b'{"kwargs": [1, 2]}', 422, None),
        (
            {"content-type": "application/json"},
            b'{"kwargs": {"pad": "' + b"x" * 300_000 + b'"}}',
            413,
            "too_large",
        ),
    ],
)
def test_bad_input_never_reaches_a_worker(
    stack: Stack, headers: dict, content: bytes, status: int, code: str | None
) -> None:
    keys = Keys(stack.prefix)
    before = stack.redis.hget(keys.stats, "n|sync|success")
    with stack.admin() as c:
        r = c.post("/api/v1/functions/demo.echo/call", content=content, headers=headers)
    assert r.status_code == status
    if code:
        assert r.json()["error"]["code"] == code
    if status == 400:
        assert "Expecting" in r.json()["error"]["message"] or "EOF" in r.json()["error"]["message"]
    assert stack.redis.hget(keys.stats, "n|sync|success") == before


def test_admin_auth(stack: Stack) -> None:
    with stack.client() as c:
        assert c.get("/api/v1/functions").status_code == 401
        bad = c.get("/api/v1/functions", headers={"Authorization": "Bearer fnh_x_y"})
        assert (
            bad.status_code == 401
            and bad.json()["error"]["message"] == "a valid API key or session is required"
        )
        assert c.get("/api/v1/functions", headers={"X-Api-Key": stack.token}).status_code == 200
    with stack.admin() as c:
        created = c.post("/api/v1/keys", json={"name": "temp"}).json()
    with stack.client() as c:
        assert c.get("/api/v1/queues", headers={"X-Api-Key": created["token"]}).status_code == 200
    with stack.admin() as c:
        assert c.delete(f"/api/v1/keys/{created['id']}").json() == {"deleted": True}
        assert "token" not in json.dumps(c.get("/api/v1/keys").json())
    with stack.client() as c:
        assert c.get("/api/v1/queues", headers={"X-Api-Key": created["token"]}).status_code == 401


def test_operations(stack: Stack) -> None:
    with stack.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["status"] == "ok" and ready["checks"]["workers"].endswith(" alive")
        assert ready["checks"]["redis"] == ready["checks"]["database"] == "ok"
        call(stack, "demo.add", {"kwargs": {"a": 1, "b": 1}})
        text = c.get("/metrics").text
        assert 'fnhub_tasks_total{queue="sync",status="success"}' in text
        assert 'fnhub_task_run_seconds_bucket{le="+Inf",queue="sync"}' in text
        workers = [line for line in text.splitlines() if line.startswith("fnhub_workers ")]
        assert float(workers[0].split()[1]) >= 1
        assert 'fnhub_queue_length{queue="sync"}' in text
