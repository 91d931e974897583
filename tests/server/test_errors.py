"""Bad input anywhere in the API gets fnhub's JSON error with its reason, never a server error:
kwargs that cannot travel (integers past 64 bits, lone surrogates, NaN, deep nesting) on every
route that takes them, out-of-range limits and ids, sub-millisecond cron pauses, invalid cron
expressions (the CLI's reason), and 405 naming every method of the path."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest
from tests.server.conftest import Stack

BIG = b"18446744073709551616"  # 2**64: one past msgpack's largest integer
DEEP = b"[" * 1000 + b"]" * 1000
NESTED = b"[" * 300 + b"]" * 300  # parses everywhere, but deeper than the API takes

#: (raw JSON of one kwarg value, what the answer's message must say)
UNTRAVELLABLE = {
    "integer >= 2**64": (BIG, "integers must fit in 64 bits (kwargs.x)"),
    "integer < -2**63": (b"-9223372036854775809", "integers must fit in 64 bits (kwargs.x)"),
    "lone surrogate": (b'"\\ud800"', "lone surrogate"),
    "lone surrogate in a list": (b'[1, "a\\udfff"]', "lone surrogate"),
    "NaN": (b"NaN", "numbers must be finite"),
    "1,000 levels deep": (DEEP, "deeper than 256 levels"),
    "300 levels deep": (NESTED, "nest deeper than 256 levels (at kwargs.x[0][0]"),
}
JSON = {"Content-Type": "application/json"}
CLI = [sys.executable, "-c", "from fnhub.cli import main; main()"]


def _error(answer: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The error of a JSON error answer with one of `statuses`."""
    assert answer.status_code in statuses, (answer.status_code, answer.text[:500])
    assert answer.headers["content-type"] == "application/json", answer.text[:500]
    error = answer.json()["error"]
    assert error["code"] and error["message"]
    return error


@pytest.fixture(scope="module")
def admin(stack: Stack):
    with stack.admin() as client:
        spec = {"function": "demo.echo", "kwargs": None}
        response = client.put("/api/v1/endpoints/open", json=spec)
        assert response.status_code == 200, response.text
        yield client


@pytest.mark.parametrize("value,reason", UNTRAVELLABLE.values(), ids=UNTRAVELLABLE.keys())
@pytest.mark.parametrize("route", ["call", "submit", "endpoint"])
def test_kwargs_that_cannot_travel_are_refused_with_the_reason(
    stack: Stack, admin: httpx.Client, route: str, value: bytes, reason: str
) -> None:
    kwargs = b'{"x": ' + value + b"}"
    if route == "endpoint":
        with stack.client() as public:
            answer = public.post("/e/open", content=kwargs, headers=JSON)
    else:
        path = "call" if route == "call" else "tasks"
        body = b'{"kwargs": ' + kwargs + b"}"
        answer = admin.post(f"/api/v1/functions/demo.echo/{path}", content=body, headers=JSON)
    if route == "endpoint" and (b"ud" in value or value == b"NaN"):
        # an endpoint's JSON parser is strict: a lone surrogate or NaN is malformed JSON
        assert _error(answer, 400)["code"] == "malformed_json"
        return
    assert reason in _error(answer, 400, 422)["message"]


def test_a_kwarg_named_with_a_lone_surrogate_is_refused(admin: httpx.Client) -> None:
    body = b'{"kwargs": {"ok": {"\\udc80x": 1}}}'
    answer = admin.post("/api/v1/functions/demo.echo/call", content=body, headers=JSON)
    assert "lone surrogate in a key of kwargs.ok" in _error(answer, 422)["message"]


def test_integers_at_the_64_bit_edges_still_travel(admin: httpx.Client) -> None:
    body = b'{"kwargs": {"top": 18446744073709551615, "bottom": -9223372036854775808}}'
    answer = admin.post("/api/v1/functions/demo.echo/call", content=body, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"top": 2**64 - 1, "bottom": -(2**63)}


@pytest.mark.parametrize("value,reason", UNTRAVELLABLE.values(), ids=UNTRAVELLABLE.keys())
@pytest.mark.parametrize("route", ["cron job", "endpoint", "subscription", "connector"])
def test_stored_kwargs_that_cannot_travel_are_refused(
    admin: httpx.Client, route: str, value: bytes, reason: str
) -> None:
    """Values kept for later (a cron job's kwargs, an endpoint's fixed kwargs, a subscription's
    options, a connector's settings) are refused when sent, not when used."""
    field = b'{"x": ' + value + b"}"
    method, path, body = {
        "cron job": (
            "POST",
            "/api/v1/cron-jobs",
            b'{"id": "bad", "function": "demo.echo", "expr": "* * * * *", "kwargs": ',
        ),
        "endpoint": ("PUT", "/api/v1/endpoints/bad", b'{"function": "demo.echo", "kwargs": '),
        "subscription": (
            "PUT",
            "/api/v1/subscriptions/bad",
            b'{"connector": "c", "topics": ["t"], "function": "demo.echo", "options": ',
        ),
        "connector": ("PUT", "/api/v1/connectors/bad", b'{"type": "redis", "settings": '),
    }[route]
    answer = admin.request(method, path, content=body + field + b"}", headers=JSON)
    assert reason.split(" (")[0] in _error(answer, 400, 422)["message"]
    assert admin.get(path.replace("/api/v1/cron-jobs", "/api/v1/cron-jobs/bad")).status_code == 404


@pytest.mark.parametrize("seconds", [0.0001, 5e-324, 1e300])
@pytest.mark.parametrize("target", ["all", "job"])
def test_cron_pause_outside_a_millisecond_to_ten_years_is_refused(
    admin: httpx.Client, target: str, seconds: float
) -> None:
    if target == "job":
        spec = {"id": "pausable", "function": "demo.echo", "expr": "0 0 1 1 *"}
        created = admin.put("/api/v1/cron-jobs/pausable", json=spec)
        assert created.status_code == 200, created.text
    path = "/api/v1/cron/pause" if target == "all" else "/api/v1/cron-jobs/pausable/pause"
    message = _error(admin.post(path, json={"seconds": seconds}), 422)["message"]
    assert "body.seconds" in message
    assert admin.post(path, json={"seconds": 0.001}).status_code == 200


@pytest.mark.parametrize(
    "expr", ["* * *", "61 * * * *", "* * * * * * *", "@sometimes", "*/0 * * * *"]
)
def test_invalid_cron_expression_gets_the_reason_the_cli_gives(
    stack: Stack, admin: httpx.Client, expr: str
) -> None:
    spec = {"id": "badexpr", "function": "demo.echo", "expr": expr}
    message = _error(admin.post("/api/v1/cron-jobs", json=spec), 422)["message"]
    cli = subprocess.run(
        [*CLI, "cron", "add", "badexpr", "demo.echo", expr, "-p", str(stack.dir)],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert message != "invalid" and message.startswith("cron job 'badexpr'")
    assert message in " ".join((cli.stdout + cli.stderr).split())


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/websub/dead-letters?limit=-1"),
        ("GET", "/api/v1/websub/dead-letters?limit=0"),
        ("GET", "/api/v1/websub/dead-letters?limit=99999999999999999999"),
        ("GET", "/api/v1/websub/dead-letters/99999999999999999999"),
        ("GET", "/api/v1/websub/dead-letters/-1"),
        ("DELETE", "/api/v1/websub/dead-letters/425962125483696572885630976"),
        ("POST", "/api/v1/websub/dead-letters/2147483648/retry"),
        ("GET", "/api/v1/tasks?limit=501"),
        ("GET", "/api/v1/tasks?offset=-1"),
        ("GET", "/api/v1/tasks?offset=18446744073709551616"),
        ("GET", "/api/v1/cache/global?cursor=18446744073709551616"),
        ("GET", "/api/v1/cache/global?count=0"),
        ("GET", "/api/v1/scripts/demo/versions/18446744073709551616"),
        ("GET", "/api/v1/scripts/demo/versions/0"),
    ],
)
def test_limits_offsets_and_ids_out_of_range_are_refused(
    admin: httpx.Client, method: str, path: str
) -> None:
    error = _error(admin.request(method, path), 422)
    assert error["code"] == "invalid_request" and ("than" in error["message"])


@pytest.mark.parametrize(
    "field,value", [("record_limit", 2**64), ("record_limit", -1), ("expires_at", 1e300)]
)
def test_cron_job_numbers_out_of_range_are_refused(
    admin: httpx.Client, field: str, value: float
) -> None:
    spec = {"id": "ranged", "function": "demo.echo", "expr": "* * * * *", field: value}
    assert f"body.{field}" in _error(admin.post("/api/v1/cron-jobs", json=spec), 422)["message"]


@pytest.mark.parametrize(
    "method,path,body,field",
    [
        ("POST", "/api/v1/keys", {"expires_in": True}, "expires_in"),
        ("POST", "/api/v1/dead-letters/discard", {"all": 0}, "all"),
        ("POST", "/api/v1/functions/demo.echo/call", {"timeout": "5"}, "timeout"),
        ("POST", "/api/v1/cron/pause", {"seconds": True}, "seconds"),
        (
            "POST",
            "/api/v1/cron-jobs",
            {"id": "typed", "function": "demo.echo", "expr": "* * * * *", "enabled": 0},
            "enabled",
        ),
        ("PUT", "/api/v1/endpoints/typed", {"function": "demo.echo", "enabled": "yes"}, "enabled"),
    ],
)
def test_a_value_of_another_json_type_is_refused_not_converted(
    admin: httpx.Client, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    """`0` is not `false`, nor `true` a number of seconds (found by schemathesis)."""
    answer = admin.request(method, path, json=body)
    assert f"body.{field}" in _error(answer, 422)["message"]


@pytest.mark.parametrize("version", [0, 2**31, 15854748313054029824])
def test_rollback_to_a_version_out_of_range_is_refused(admin: httpx.Client, version: int) -> None:
    answer = admin.post("/api/v1/scripts/demo/rollback", json={"version": version})
    assert "body.version" in _error(answer, 422)["message"]


def test_method_not_allowed_names_every_method_of_the_path(admin: httpx.Client) -> None:
    answer = admin.request("PATCH", "/api/v1/endpoints/open")
    assert _error(answer, 405)["code"] == "method_not_allowed"
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed and "PATCH" not in allowed


def test_method_not_allowed_on_a_literal_path_names_only_its_methods(
    admin: httpx.Client,
) -> None:
    """`/dead-letters/replay` also matches `/dead-letters/{letter_id}`: only its own count."""
    answer = admin.request("PATCH", "/api/v1/dead-letters/replay")
    assert _error(answer, 405)["code"] == "method_not_allowed"
    assert answer.headers["allow"] == "POST"


def test_openapi_documents_the_errors_routes_give(admin: httpx.Client) -> None:
    paths = admin.get("/openapi.json").json()["paths"]
    pause = paths["/api/v1/cron-jobs/{job_id}/pause"]["post"]["responses"]
    assert {"401", "404", "422", "500", "503"} <= set(pause)
    assert pause["503"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    hub = paths["/websub/hub"]["post"]["responses"]
    assert "text/plain" in hub["400"]["content"]
