"""Redis or the database down: every route answers fnhub's JSON 503 `unavailable` with
`Retry-After` (or what it answers without them: a 2xx from what it holds, a 4xx for bad input),
never a 500; and once the service is back, the server works again by itself.

Each test takes down a service of its own: a Redis server on a free port (shut down with its
data saved, started again on the same port) or a PostgreSQL database that stops taking
connections.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import POSTGRES_URL
from tests.private_redis import PrivateRedis
from tests.server.conftest import Stack, close_stack, make_stack

from fnhub.store.db import Database

#: a sample for each path parameter, so that each route gets as far as it can
PARAMS = {
    "ref": "demo.echo",
    "job_id": "nightly",
    "scope": "global",
    "key": "k",
    "key_id": "nokey",
    "version": "1",
    "dead_id": "1",
    "subscription_id": "nosub",
    "topic_hash": "nohash",
}
#: `{name}` by resource: mutations go to resources the recovery checks do not use
NAMES = {
    "/api/v1/scripts": "other",
    "/api/v1/endpoints": "spare",
    "/api/v1/connectors": "conn",
    "/api/v1/subscriptions": "sub",
    "/e/": "ep",
}
CRON_JOB = {"id": "nightly", "function": "demo.echo", "expr": "0 3 * * *"}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/functions/{ref}/call"): {"kwargs": {"x": 1}},
    ("POST", "/api/v1/functions/{ref}/tasks"): {"kwargs": {"x": 1}},
    ("PUT", "/api/v1/scripts/{name}"): {"code": "import fnhub\n"},
    ("POST", "/api/v1/scripts/{name}/rollback"): {"version": 1},
    ("PUT", "/api/v1/endpoints/{name}"): {"function": "demo.echo"},
    ("PUT", "/api/v1/connectors/{name}"): {"type": "redis", "settings": {"host": "127.0.0.1"}},
    ("POST", "/api/v1/keys"): {"name": "k"},
    ("POST", "/api/v1/cron-jobs"): CRON_JOB,
    ("PUT", "/api/v1/cron-jobs/{job_id}"): CRON_JOB,
    ("POST", "/api/v1/cron-jobs/{job_id}/pause"): {"seconds": 5},
    ("POST", "/api/v1/cron/pause"): {"seconds": 5},
    ("POST", "/api/v1/websub/topics"): {"url": "http://127.0.0.1:9/feed"},
    ("POST", "/api/v1/websub/publish"): {"topic": "http://127.0.0.1:9/feed", "content": "hi"},
    ("PUT", "/api/v1/subscriptions/{name}"): {
        "connector": "conn",
        "topics": ["t"],
        "function": "demo.echo",
    },
    ("POST", "/e/{name}"): {"x": 1},
}
#: routes that cannot answer without Redis: each must say 503 `unavailable`
NEED_REDIS = {
    ("GET", "/api/v1/functions"),
    ("POST", "/api/v1/functions/{ref}/call"),
    ("POST", "/api/v1/functions/{ref}/tasks"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("GET", "/api/v1/cache/{scope}"),
    ("GET", "/api/v1/cache/{scope}/{key}"),
    ("DELETE", "/api/v1/cache/{scope}/{key}"),
    ("GET", "/api/v1/workers"),
    ("GET", "/api/v1/queues"),
    ("GET", "/api/v1/cron-jobs"),
    ("GET", "/api/v1/cron-jobs/{job_id}"),
    ("POST", "/api/v1/cron-jobs/{job_id}/pause"),
    ("POST", "/api/v1/cron-jobs/{job_id}/resume"),
    ("POST", "/api/v1/cron/pause"),
    ("POST", "/api/v1/cron/resume"),
    ("GET", "/api/v1/websub/metrics"),
    ("POST", "/api/v1/websub/publish"),
    ("GET", "/e/{name}"),
    ("POST", "/e/{name}"),
    ("GET", "/e/{name}/tasks/{task_id}"),
    ("GET", "/metrics"),
}
#: answers not in fnhub's error shape by design
OTHER_SHAPES = {"/websub/hub", "/readyz"}
#: routes that answer a stream which never ends (tested as streams in test_console_feed.py)
STREAMS = {"/api/v1/events"}


def _url(template: str, task_id: str) -> str:
    url = template
    for prefix, name in NAMES.items():
        if template.startswith(prefix):
            url = url.replace("{name}", name)
    for param, value in {**PARAMS, "task_id": task_id}.items():
        url = url.replace("{" + param + "}", value)
    return url


def _is_unavailable(answer: httpx.Response) -> bool:
    return (
        answer.status_code == 503
        and answer.headers.get("content-type") == "application/json"
        and answer.json()["error"]["code"] == "unavailable"
        and answer.headers.get("retry-after", "").isdigit()
    )


def _sweep(stack: Stack, task_id: str) -> dict[tuple[str, str], httpx.Response]:
    """One request to every operation of the OpenAPI document, deletions last (a deletion may
    take effect in SQL before Redis refuses the rest)."""
    with stack.admin() as client:
        paths = client.get("/openapi.json").json()["paths"]
        ops = [
            (m.upper(), template)
            for template, methods in paths.items()
            for m in methods
            if template not in STREAMS
        ]
        ops.sort(key=lambda op: op[0] == "DELETE")
        return {
            op: client.request(op[0], _url(op[1], task_id), json=BODIES.get(op), timeout=30)
            for op in ops
        }


def _problems(answers: dict[tuple[str, str], httpx.Response], need: set[tuple[str, str]]) -> list:
    problems = []
    for (method, template), answer in answers.items():
        what = f"{method} {template}: {answer.status_code} {answer.text[:200]!r}"
        if answer.status_code >= 500 and template not in OTHER_SHAPES:
            if not _is_unavailable(answer):
                problems.append(what)
        elif (
            answer.status_code >= 400
            and template not in OTHER_SHAPES
            and answer.headers.get("content-type") != "application/json"
        ):
            problems.append(what)
        if (method, template) in need and not _is_unavailable(answer):
            problems.append(f"should be 503 unavailable: {what}")
    return problems


def _wait_until_working(stack: Stack, timeout: float = 30) -> float:
    """Seconds until a call, an endpoint, the cron jobs and the hub's metrics answer 200."""
    start = time.monotonic()
    last: list[str] = []
    while time.monotonic() - start < timeout:
        with stack.admin() as client:
            answers = [
                client.post("/api/v1/functions/demo.echo/call", json={"kwargs": {"a": 1}}),
                client.get("/e/ep", params={"b": 2}),
                client.get("/api/v1/cron-jobs"),
                client.get("/api/v1/websub/metrics"),
                client.get("/readyz"),
            ]
        if all(a.status_code == 200 for a in answers):
            return time.monotonic() - start
        last = [f"{a.request.url.path}: {a.status_code} {a.text[:120]}" for a in answers]
        time.sleep(0.25)
    raise AssertionError(f"not working again within {timeout}s: {last}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    own = PrivateRedis(tmp_path / "redis")
    own.start()
    try:
        yield own
    finally:
        own.stop()


@pytest.mark.timeout(240)
def test_redis_down_every_route_answers_json_503_and_the_server_recovers(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    stack = make_stack(tmp_path / "stack", redis_url=redis_server.url)
    try:
        with stack.admin() as client:
            for name in ("ep", "spare"):
                spec = {"function": "demo.echo", "kwargs": None}
                assert client.put(f"/api/v1/endpoints/{name}", json=spec).status_code == 200
            assert client.put(f"/api/v1/cron-jobs/{CRON_JOB['id']}", json=CRON_JOB).is_success
            submitted = client.post("/api/v1/functions/demo.echo/tasks", json={"kwargs": {}})
            assert submitted.status_code == 202, submitted.text
            task_id = submitted.json()["id"]
        _wait_until_working(stack)
        redis_server.stop()
        answers = _sweep(stack, task_id)
        assert not _problems(answers, NEED_REDIS), "\n".join(_problems(answers, NEED_REDIS))
        assert len(answers) >= 60  # the whole API was swept
        redis_server.start()
        assert _wait_until_working(stack) < 30
    finally:
        close_stack(stack)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"fnhub_outage_{uuid.uuid4().hex[:10]}"
    admin = Database(POSTGRES_URL + "/postgres").engine
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield f"{POSTGRES_URL}/{name}"
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def _database_connections(url: str, allow: bool) -> None:
    """Let the database take connections, or refuse them and end those it has."""
    name = url.rsplit("/", 1)[1]
    admin = Database(POSTGRES_URL + "/postgres").engine
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allow).lower()}"))
            if not allow:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
    finally:
        admin.dispose()


@pytest.mark.timeout(180)
def test_database_down_routes_answer_json_503_and_the_server_recovers(
    tmp_path: Path, postgres_url: str
) -> None:
    stack = make_stack(tmp_path / "stack", db_url=postgres_url)
    try:
        with stack.admin() as client:
            spec = {"function": "demo.echo", "kwargs": None}
            assert client.put("/api/v1/endpoints/ep", json=spec).status_code == 200
        _wait_until_working(stack)
        _database_connections(postgres_url, allow=False)
        with stack.admin() as client:
            for path in ("/api/v1/tasks", "/api/v1/scripts", "/api/v1/endpoints", "/api/v1/keys"):
                answer = client.get(path)
                assert _is_unavailable(answer), (path, answer.status_code, answer.text[:300])
                assert "database is unavailable" in answer.json()["error"]["message"]
        _database_connections(postgres_url, allow=True)
        with stack.admin() as client:
            deadline = time.monotonic() + 30
            while client.get("/api/v1/tasks").status_code != 200:
                assert time.monotonic() < deadline, "the server did not get the database back"
                time.sleep(0.25)
        assert _wait_until_working(stack) < 30
    finally:
        _database_connections(postgres_url, allow=True)
        close_stack(stack)
