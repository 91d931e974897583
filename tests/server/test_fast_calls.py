"""The call routes' fast path (`server.fast_call`): an API key and a body that validates are
answered before FastAPI's router, anything else by the router as ever, with the same answers and
the same route label in the metrics. The app runs in this process (its lifespan on the module's
Redis, database and worker), so the test can see whether its router was entered."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fnhub.config import load_settings
from fnhub.keys import Keys
from fnhub.server.app import create_app

from .conftest import Stack

SUBMIT = "/api/v1/functions/demo.add/tasks"
CALL = "/api/v1/functions/demo.add/call"
ROUTE = "hr|/api/v1/functions/{ref}/tasks|POST|"


class RouterEntries:
    """Counts the requests that reached the app's router (FastAPI's route matching)."""

    def __init__(self, router: Any) -> None:
        self.paths: list[str] = []
        inner = router.middleware_stack

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.paths.append(scope["path"])
            await inner(scope, receive, send)

        router.middleware_stack = counted


@pytest.fixture()
def app_client(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """A client of the app in this process; its lifespan runs in `with`."""
    for name, value in stack.env.items():
        if name.startswith("FNHUB_"):
            monkeypatch.setenv(name, value)
    app = create_app(load_settings(stack.dir))
    return TestClient(app, headers={"Authorization": f"Bearer {stack.token}"})


def test_submissions_and_calls_skip_the_router(stack: Stack, app_client: TestClient) -> None:
    """Fails before the async submission had a fast path: it went through the router."""
    keys = Keys(stack.prefix)
    before = {s: int(stack.redis.hget(keys.stats, ROUTE + s) or 0) for s in ("2xx", "4xx")}
    with app_client:
        viewer = app_client.post("/api/v1/keys", json={"name": "ro", "role": "viewer"})
        entries = RouterEntries(app_client.app.router)  # type: ignore[attr-defined]
        _exercise(stack, app_client, entries, viewer.json()["token"])
    # the lifespan's shutdown flushed the last counts: the route template, as FastAPI matched it
    after = {s: int(stack.redis.hget(keys.stats, ROUTE + s) or 0) for s in ("2xx", "4xx")}
    assert after["2xx"] - before["2xx"] == 2
    assert after["4xx"] - before["4xx"] == 5


def _exercise(stack: Stack, app_client: TestClient, entries: RouterEntries, viewer: str) -> None:
    keys = Keys(stack.prefix)

    r = app_client.post(SUBMIT, json={"kwargs": {"a": 1, "b": 2}})
    assert r.status_code == 202, r.text
    task = r.json()
    assert task == {"id": task["id"], "status": "queued", "queue": "sync", "url": task["url"]}
    assert task["url"] == f"/api/v1/tasks/{task['id']}" == r.headers["location"]
    assert r.headers["x-request-id"]
    assert stack.redis.exists(keys.task_status(task["id"]))
    delayed = app_client.post(SUBMIT, json={"kwargs": {"a": 1, "b": 2}, "delay": 60})
    assert delayed.status_code == 202
    assert app_client.post(CALL, json={"kwargs": {"a": 1, "b": 2}}).json()["result"] == 3
    assert entries.paths == []

    # the ordinary way, with the answers it always gave
    refused = [
        (app_client.post(SUBMIT, json={"kwargs": {}, "delay": -1}), 422, None),
        (app_client.post(SUBMIT, json={"kwargs": {"c": 1}}), 422, "invalid_kwargs"),
        (app_client.post("/api/v1/functions/demo.nope/tasks", json={}), 404, "unknown_function"),
        (app_client.post(SUBMIT, json={}, headers={"Authorization": "Bearer fnh_x_y"}), 401, None),
        (
            app_client.post(SUBMIT, json={}, headers={"Authorization": f"Bearer {viewer}"}),
            403,
            "forbidden",
        ),
    ]
    for answer, status, code in refused:
        assert answer.status_code == status, answer.text
        if code is not None:
            assert answer.json()["error"]["code"] == code
    assert len(entries.paths) == len(refused)

    r = app_client.get(task["url"], params={"wait": 10})
    assert (r.status_code, r.json()["status"], r.json()["result"]) == (200, "success", 3)
