"""Nothing secret in task records: credentials an endpoint's caller sends (headers, its token)
are "[redacted]" in what is recorded, and an async endpoint's pollers see the function's logs
and traceback only when the endpoint allows it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import wait_for

from fnhub.store.db import Database
from fnhub.store.models import TaskRecord

from .conftest import Stack

GATE = """
import fnhub


@fnhub.api("Let in only the caller with the right bearer token and session cookie")
def allow(request):
    headers = request["headers"]
    return headers.get("authorization") == "Bearer let-me-in-1234" and (
        headers.get("cookie") == "session=cookie-secret-5678"
    )


@fnhub.api("The HTTP headers of the trigger, as the function sees them")
def headers():
    return fnhub.context.meta["http"]["headers"]


@fnhub.api("Print, then fail if asked")
def noisy(fail: bool = False):
    print("printed-by-the-function")
    if fail:
        raise ValueError("asked to fail")
    return 1
"""


@pytest.fixture(scope="module", autouse=True)
def gate_script(stack: Stack) -> None:
    with stack.admin() as c:
        r = c.put("/api/v1/scripts/gate", json={"code": GATE})
        assert r.status_code == 200, r.text


def publish(stack: Stack, name: str, **spec: object) -> None:
    with stack.admin() as c:
        r = c.put(f"/api/v1/endpoints/{name}", json=spec)
        assert r.status_code == 200, r.text


def records(stack: Stack, origin: str, origin_id: str, count: int = 1) -> list[TaskRecord]:
    """The task records of one origin, once `count` of them are written."""
    db = Database(f"sqlite:///{stack.dir / 'fnhub.db'}")
    query = select(TaskRecord).where(TaskRecord.origin == origin, TaskRecord.origin_id == origin_id)

    def written() -> list[TaskRecord]:
        with db.session() as session:
            rows = list(session.execute(query).scalars())
        return rows if len(rows) >= count else []

    try:
        return wait_for(written, timeout=10)
    finally:
        db.dispose()


def text(value: Any) -> str:
    return json.dumps(value)


def test_function_auth_decides_on_credentials_its_record_does_not_keep(stack: Stack) -> None:
    publish(
        stack, "gated", function="demo.echo", auth={"type": "function", "function": "gate.allow"}
    )
    secrets = {"Authorization": "Bearer let-me-in-1234", "Cookie": "session=cookie-secret-5678"}
    with stack.client() as c:
        assert c.get("/e/gated", headers={"Authorization": "Bearer wrong"}).status_code == 403
        allowed = c.get("/e/gated", params={"q": "1"}, headers=secrets)
        assert (allowed.status_code, allowed.json()) == (200, {"q": "1"})
    checks = records(stack, "endpoint_auth", "gated", count=2)
    for row in checks:
        seen = row.kwargs["request"]["headers"]
        assert seen["authorization"] == "[redacted]"
        assert "let-me-in-1234" not in text(row.kwargs) and "wrong" not in text(row.kwargs)
    passed = next(r for r in checks if r.result is True)
    assert passed.kwargs["request"]["headers"]["cookie"] == "[redacted]"
    assert "cookie-secret-5678" not in text(passed.kwargs)
    assert passed.kwargs["request"]["query"] == {"q": "1"}  # the rest is kept as it came


def test_query_token_is_consumed_by_auth_never_passed_on_or_recorded(stack: Stack) -> None:
    auth = {"type": "token", "location": "query", "field": "key", "token": "query-token-4321"}
    publish(stack, "tokq-open", function="demo.echo", auth=auth)
    with stack.client() as c:
        r = c.get("/e/tokq-open", params={"key": "query-token-4321", "a": "1"})
    assert (r.status_code, r.json()) == (200, {"a": "1"})
    [row] = records(stack, "endpoint", "tokq-open")
    assert row.kwargs == {"a": "1"}


def test_kwargs_and_headers_under_redacted_names(stack: Stack) -> None:
    publish(stack, "echo-secrets", function="demo.echo")
    publish(
        stack,
        "tok-headers",
        function="gate.headers",
        auth={"type": "token", "token": "hdr-token-9876"},
    )
    with stack.client() as c:
        body = {"n": 1, "x_api_key": "kwarg-secret-1111", "nested": {"Authorization": "abc"}}
        echoed = c.post("/e/echo-secrets", json=body)
        assert echoed.json() == body  # the function gets what the caller sent
        seen = c.get(
            "/e/tok-headers",
            headers={"X-Token": "hdr-token-9876", "Proxy-Authorization": "Basic cHJveHk6cHc="},
        ).json()
    [row] = records(stack, "endpoint", "echo-secrets")
    redacted = {"n": 1, "x_api_key": "[redacted]", "nested": {"Authorization": "[redacted]"}}
    assert row.kwargs == redacted
    # trigger headers (fnhub.context.meta) carry no credential, not even for the function
    assert seen["x-token"] == seen["proxy-authorization"] == "[redacted]"
    assert "hdr-token-9876" not in text(seen) and seen["host"].startswith("127.0.0.1")


def poll(stack: Stack, endpoint: str, **kwargs: object) -> dict[str, Any]:
    with stack.client() as c:
        queued = c.post(f"/e/{endpoint}", json=kwargs)
        assert queued.status_code == 202, queued.text
        done = c.get(queued.json()["url"], params={"wait": 10}).json()
    assert done["status"] in ("success", "failure"), done
    return done


def test_async_pollers_see_logs_and_traceback_only_when_allowed(stack: Stack) -> None:
    publish(stack, "noisy-quiet", function="gate.noisy", mode="async")
    publish(
        stack,
        "noisy-open",
        function="gate.noisy",
        mode="async",
        show_logs=True,
        show_traceback=True,
    )
    quiet = poll(stack, "noisy-quiet", fail=True)
    assert (quiet["status"], quiet["error_type"]) == ("failure", "ValueError")
    assert quiet["logs"] is None and quiet["traceback"] is None
    assert poll(stack, "noisy-quiet")["logs"] is None
    loud = poll(stack, "noisy-open", fail=True)
    assert "printed-by-the-function" in loud["logs"] and "raise ValueError" in loud["traceback"]
    # the admin API shows everything
    with stack.admin() as c:
        full = c.get(f"/api/v1/tasks/{quiet['id']}").json()
    assert "printed-by-the-function" in full["logs"] and "raise ValueError" in full["traceback"]
    # once the status key is gone, the answer comes from the record: still hidden
    stack.redis.delete(f"{stack.prefix}:task:{quiet['id']}")
    records(stack, "endpoint", "noisy-quiet", count=2)
    with stack.client() as c:
        again = c.get(f"/e/noisy-quiet/tasks/{quiet['id']}").json()
    assert again["status"] == "failure" and again["logs"] is None and again["traceback"] is None
