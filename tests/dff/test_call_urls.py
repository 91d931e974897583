"""DataFlux Func's call URLs on a real stack (server, worker, Redis, SQLite): `POST
/api/v1/func/<funcId>` (sync, async, unbox, returnType, eta/delay, `set__script.func`),
`/api/v1/func-many`, and the published APIs `/api/v1/sync|async/<id>` with their simplified
forms, mapped onto fnhub endpoints; their envelopes, errors and statuses, and authentication."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import wait_for
from tests.private_redis import PrivateRedis
from tests.server.conftest import Stack, close_stack, make_stack
from tests.server.test_connector_edits import DIRECT

# scripts/demo.py as a DataFlux Func user writes it (no imports of fnhub or DFF)
SCRIPT = """
import time


@DFF.API("Add")
def add(a, b):
    return a + b


@DFF.API("Echo")
def echo(**kwargs):
    return kwargs


@DFF.API("Falsy values")
def falsy(kind):
    return {"zero": 0, "false": False, "empty": "", "list": [], "none": None,
            "text": "hello"}[kind]


@DFF.API("Fail")
def fail(message="boom"):
    raise ValueError(message)


@DFF.API("Slow", timeout=1)
def slow(seconds=5):
    time.sleep(seconds)
    return seconds


@DFF.API("Page")
def page(name="world"):
    return DFF.RESP("<h1>hi " + name + "</h1>", status_code=203, content_type="html")


@DFF.API("Leave a mark")
def mark(key):
    DFF.CACHE.set(key, "marked")


@DFF.API("Read a mark")
def seen(key):
    return DFF.CACHE.get(key)


@DFF.API("Who called")
def origin():
    return {"origin": _DFF_ORIGIN, "origin_id": _DFF_ORIGIN_ID, "func": _DFF_FUNC_ID}


@DFF.API("Edit a connector")
def reconnect(name, delete=False):
    if delete:
        return DFF.CONN.delete(name)
    DFF.CONN.save(name, "mqtt", {"host": "127.0.0.1", "port": 1883, "clean_start": True})
"""

TRACE_HEADERS = ("X-Trace-Id", "X-Request-Time", "X-Response-Time", "X-Request-Cost")
ENDPOINTS: dict[str, dict[str, Any]] = {
    "sapi-add": {"function": "demo.add"},
    "sapi-echo": {"function": "myset__demo.echo", "kwargs": None},
    "sapi-falsy": {"function": "demo.falsy"},
    "sapi-fail": {"function": "demo.fail"},
    "sapi-fail-tb": {"function": "demo.fail", "show_traceback": True},
    "sapi-page": {"function": "demo.page"},
    "sapi-origin": {"function": "demo.origin"},
    "sapi-locked": {
        "function": "demo.add",
        "auth": {"type": "token", "field": "X-Token", "token": "s3cret-token"},
    },
    "sapi-fixed": {"function": "demo.add", "kwargs": {"a": 10, "b": "$caller"}},
    "sapi-off": {"function": "demo.add", "enabled": False},
    "sapi-rare": {"function": "demo.add", "throttle": {"minute": 1}},
    "aapi-old": {"function": "demo.add", "mode": "async", "expires_at": 1000000000},
    "aapi-add": {"function": "demo.add", "mode": "async"},
    "aapi-echo": {"function": "demo.echo", "mode": "async"},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("dffurls"), script=SCRIPT)
    try:
        with s.admin() as admin:
            for name, spec in ENDPOINTS.items():
                answer = admin.put(f"/api/v1/endpoints/{name}", json=spec)
                assert answer.status_code == 200, answer.text
        yield s
    finally:
        close_stack(s)


@pytest.fixture()
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with stack.admin() as client:
        yield client


@pytest.fixture()
def public(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client


def _envelope_ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["error"] == 200 and body["message"] == ""
    assert body["traceId"] == answer.headers["X-Trace-Id"]
    assert body["reqTime"].endswith("Z") and isinstance(body["reqCost"], int)
    for name in TRACE_HEADERS:
        assert answer.headers[name]
    return body["data"]


def _envelope_error(answer: httpx.Response, status: int, code: float, reason: str) -> Any:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["ok"] is False
    assert body["error"] == code and body["reason"] == reason and body["status"] == status
    assert body["message"]
    assert body["traceId"] == answer.headers["X-Trace-Id"]
    for name in TRACE_HEADERS:
        assert answer.headers[name]
    return body["detail"]


def _func(client: httpx.Client, ref: str, kwargs: dict[str, Any], **options: Any) -> Any:
    return client.post(f"/api/v1/func/{ref}", json={"kwargs": kwargs, "options": options})


# -- POST /api/v1/func/<funcId> -------------------------------------------------------------


def test_func_waits_and_answers_in_the_envelope_or_unboxed(admin: httpx.Client) -> None:
    assert _envelope_ok(_func(admin, "demo.add", {"a": 1, "b": 2})) == {"result": 3}
    raw = _func(admin, "demo.add", {"a": 1, "b": 2}, unbox=True)
    assert raw.status_code == 200 and raw.content == b"3"
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["X-Trace-Id"] and raw.headers["X-Task-Id"]
    text = _func(admin, "demo.falsy", {"kind": "text"}, unbox=True)
    assert text.text == "hello" and text.headers["content-type"].startswith("text/plain")
    # an upstream trace id is kept, as DataFlux Func does
    traced = admin.post(
        "/api/v1/func/demo.add", json={"kwargs": {"a": 1, "b": 1}}, headers={"X-Trace-Id": "t-1"}
    )
    assert traced.json()["traceId"] == "t-1" and traced.headers["X-Trace-Id"] == "t-1"


def test_falsy_results_stay_what_they_are(admin: httpx.Client) -> None:
    """DataFlux Func answers null for 0, false and "" (`returnValue || null`); fnhub does not."""
    expected = {"zero": 0, "false": False, "empty": "", "list": [], "none": None}
    for kind, value in expected.items():
        assert _envelope_ok(_func(admin, "demo.falsy", {"kind": kind})) == {"result": value}
    assert _func(admin, "demo.falsy", {"kind": "zero"}, unbox=True).content == b"0"
    assert _func(admin, "demo.falsy", {"kind": "false"}, unbox=True).content == b"false"
    assert _func(admin, "demo.falsy", {"kind": "empty"}, unbox=True).content == b""


def test_return_type_json_dumps(admin: httpx.Client) -> None:
    data = _envelope_ok(_func(admin, "demo.echo", {"x": [1, 2]}, returnType="jsonDumps"))
    assert data == {"result": '{"x":[1,2]}'}
    raw = _func(admin, "demo.echo", {"x": 1}, returnType="jsonDumps", unbox=True)
    assert raw.text == '{"x":1}'
    detail = _envelope_error(
        _func(admin, "demo.echo", {}, returnType="yaml"), 400, 400.43, "EClientBadRequest"
    )
    assert detail == {"allowed": ["raw", "jsonDumps"]}


def test_dataflux_func_ids_and_json_strings(admin: httpx.Client) -> None:
    """`set__script.func` resolves; kwargs and options may be JSON strings, or form fields."""
    assert _envelope_ok(_func(admin, "myset__demo.add", {"a": 2, "b": 3})) == {"result": 5}
    answer = admin.post(
        "/api/v1/func/myset__demo.origin",
        json={"kwargs": "{}", "options": json.dumps({"unbox": True})},
    )
    assert answer.json() == {"origin": "direct", "origin_id": "demo.origin", "func": "demo.origin"}
    form = admin.post(
        "/api/v1/func/demo.add", data={"kwargs": '{"a": 4, "b": 5}', "options": '{"unbox": 1}'}
    )
    assert form.content == b"9"


def test_func_async_then_read_the_result(admin: httpx.Client) -> None:
    answer = _func(admin, "demo.add", {"a": 20, "b": 22}, **{"async": True})
    data = _envelope_ok(answer)
    assert data["url"] == f"/api/v1/tasks/{data['id']}" == answer.headers["Location"]
    state = admin.get(data["url"], params={"wait": 10}).json()
    assert state["status"] == "success" and state["result"] == 42
    assert state["origin"] == "api"


def test_func_async_delay_and_eta(admin: httpx.Client) -> None:
    delayed = _envelope_ok(_func(admin, "demo.add", {"a": 1, "b": 1}, delay=1.5, **{"async": 1}))
    eta = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    at_eta = _envelope_ok(_func(admin, "demo.add", {"a": 2, "b": 2}, eta=eta, **{"async": 1}))
    assert admin.get(delayed["url"]).json()["status"] == "queued"
    first = admin.get(delayed["url"], params={"wait": 10}).json()
    second = admin.get(at_eta["url"], params={"wait": 10}).json()
    assert (first["status"], first["result"]) == ("success", 2)
    assert (second["status"], second["result"]) == ("success", 4)
    assert first["start_time"] - first["trigger_time"] >= 1.4
    assert second["start_time"] - second["trigger_time"] >= 1.8
    # a waiting call cannot be delayed
    refused = _func(admin, "demo.add", {"a": 1, "b": 1}, delay=1)
    assert "async" in refused.json()["message"]
    _envelope_error(refused, 400, 400.43, "EClientBadRequest")
    _envelope_error(
        _func(admin, "demo.add", {"a": 1, "b": 1}, eta="next tuesday", **{"async": 1}),
        400,
        400.43,
        "EClientBadRequest",
    )


def test_func_errors_in_dataflux_funcs_words(admin: httpx.Client) -> None:
    detail = _envelope_error(_func(admin, "demo.nope", {}), 404, 404.41, "EClientNotFound")
    assert detail["code"] == "unknown_function"
    failed = _func(admin, "demo.fail", {"message": "it broke"})
    detail = _envelope_error(failed, 599, 599.1, "EFuncFailed")
    assert detail["exception"] == "ValueError: it broke"
    assert detail["exceptionType"] == "ValueError"
    assert "raise ValueError(message)" in detail["traceback"]
    assert failed.headers["X-Task-Id"] == detail["taskId"]
    bad_kwargs = _func(admin, "demo.add", {"a": 1})
    detail = _envelope_error(bad_kwargs, 400, 400.43, "EClientBadRequest")
    assert detail["code"] == "invalid_kwargs" and "b" in bad_kwargs.json()["message"]
    json_type = {"Content-Type": "application/json"}
    bad_json = admin.post("/api/v1/func/demo.add", content=b'{"kwargs": {', headers=json_type)
    _envelope_error(bad_json, 400, 400.43, "EClientBadRequest")
    not_object = admin.post("/api/v1/func/demo.add", json={"kwargs": [1, 2]})
    _envelope_error(not_object, 400, 400.43, "EClientBadRequest")
    timeout = _func(admin, "demo.slow", {"seconds": 5})
    detail = _envelope_error(timeout, 599, 599.2, "EFuncTimeout")
    assert detail["taskId"]


def test_connector_edits_a_direct_subscription_refuses_fail_the_call(
    admin: httpx.Client,
) -> None:
    """A script's `DFF.CONN.save/delete` meet the API's check (`store.connectors`): the call
    fails with DFF.CONN's words, and the connector stays."""
    mqtt = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": 1883}}
    assert admin.put("/api/v1/connectors/plant", json=mqtt).status_code == 200
    assert admin.put("/api/v1/subscriptions/on-plant", json=DIRECT).status_code == 200
    try:
        saved = _func(admin, "demo.reconnect", {"name": "plant"})
        detail = _envelope_error(saved, 599, 599.1, "EFuncFailed")
        assert detail["exceptionType"] == "ConnectorRefused", detail
        assert detail["exception"].startswith(
            "ConnectorRefused: DFF.CONN.save: subscription 'on-plant' reads this connector on "
            "path: direct"
        ), detail
        deleted = _func(admin, "demo.reconnect", {"name": "plant", "delete": True})
        detail = _envelope_error(deleted, 599, 599.1, "EFuncFailed")
        assert (
            "DFF.CONN.delete: connector 'plant' is used by subscription(s) on-plant"
            in (detail["exception"])
        )
        assert admin.get("/api/v1/connectors/plant").json()["settings"] == mqtt["settings"]
    finally:
        admin.delete("/api/v1/subscriptions/on-plant")
        admin.delete("/api/v1/connectors/plant")


def test_func_needs_fnhub_authentication(stack: Stack, admin: httpx.Client) -> None:
    with stack.client() as anonymous:
        detail = _envelope_error(
            anonymous.post("/api/v1/func/demo.add", json={"kwargs": {"a": 1, "b": 2}}),
            401,
            401.14,
            "EUserAuth",
        )
        assert detail["code"] == "unauthorized"
        _envelope_error(
            anonymous.post("/api/v1/func-many", json={"calls": []}), 401, 401.14, "EUserAuth"
        )
    key = admin.post("/api/v1/keys", json={"name": "reader", "role": "viewer"}).json()["token"]
    with stack.client(headers={"Authorization": f"Bearer {key}"}) as viewer:
        refused = viewer.post("/api/v1/func/demo.add", json={"kwargs": {"a": 1, "b": 2}})
        assert _envelope_error(refused, 401, 401.15, "EUserPrivilege")["code"] == "forbidden"


def test_func_many_queues_every_call(admin: httpx.Client) -> None:
    calls = [
        {"funcId": "demo.add", "kwargs": {"a": 1, "b": 2}},
        {"funcId": "myset__demo.add", "kwargs": {"a": 3, "b": 4}, "options": {"delay": 1}},
    ]
    data = _envelope_ok(admin.post("/api/v1/func-many", json={"calls": calls}))
    assert len(data["ids"]) == 2 and data["urls"] == [f"/api/v1/tasks/{i}" for i in data["ids"]]
    results = [admin.get(url, params={"wait": 10}).json() for url in data["urls"]]
    assert [(r["status"], r["result"]) for r in results] == [("success", 3), ("success", 7)]
    # one refused call refuses them all, naming it
    refused = admin.post(
        "/api/v1/func-many",
        json={"calls": [{"funcId": "demo.add", "kwargs": {"a": 1, "b": 1}}, {"funcId": "x.y"}]},
    )
    detail = _envelope_error(refused, 404, 404.41, "EClientNotFound")
    assert detail["index"] == 1
    _envelope_error(
        admin.post("/api/v1/func-many", json={"calls": {}}), 400, 400.43, "EClientBadRequest"
    )
    # a queue nobody reads refuses the whole batch before any call is queued
    calls = [
        {"funcId": "demo.mark", "kwargs": {"key": "many-refused"}},
        {"funcId": "demo.add", "kwargs": {"a": 1, "b": 1}, "options": {"queue": 12}},
    ]
    refused = admin.post("/api/v1/func-many", json={"calls": calls})
    detail = _envelope_error(refused, 503, 503.1, "ESysLimitReached.NoWorker")
    assert detail["code"] == "no_worker" and refused.headers["Retry-After"]
    assert "'q12'" in refused.json()["message"]
    time.sleep(1.0)  # a queued mark would have run by now
    assert _envelope_ok(_func(admin, "demo.seen", {"key": "many-refused"})) == {"result": None}
    _envelope_ok(admin.post("/api/v1/func-many", json={"calls": calls[:1]}))
    marked = lambda: _func(admin, "demo.seen", {"key": "many-refused"}).json()["data"]  # noqa: E731
    assert wait_for(lambda: marked()["result"] == "marked", timeout=10)


# -- /api/v1/sync/<id>, /api/v1/async/<id> --------------------------------------------------


def test_sync_api_unboxes_by_default(public: httpx.Client) -> None:
    query = {"kwargs": json.dumps({"a": 1, "b": 2})}
    raw = public.get("/api/v1/sync/sapi-add", params=query)
    assert raw.status_code == 200 and raw.content == b"3", raw.text
    # DataFlux Func's URL before 5.0 (Auth Link)
    assert public.get("/api/v1/al/sapi-add", params=query).content == b"3"
    for name in TRACE_HEADERS:
        assert raw.headers[name]
    boxed = public.post(
        "/api/v1/sync/sapi-add", json={"kwargs": {"a": 1, "b": 2}, "options": {"unbox": False}}
    )
    assert _envelope_ok(boxed) == {"result": 3}
    dumped = public.get(
        "/api/v1/sync/sapi-add",
        params={**query, "options": json.dumps({"returnType": "jsonDumps", "unbox": False})},
    )
    assert _envelope_ok(dumped) == {"result": "3"}
    zero = public.get("/api/v1/sync/sapi-falsy", params={"kwargs": '{"kind": "zero"}'})
    assert zero.content == b"0"
    page = public.get("/api/v1/sync/sapi-page", params={"kwargs": '{"name": "ann"}'})
    assert page.status_code == 203 and page.text == "<h1>hi ann</h1>"
    assert page.headers["content-type"].startswith("text/html") and page.headers["X-Trace-Id"]
    who = public.get("/api/v1/sync/sapi-origin").json()
    assert who == {"origin": "syncAPI", "origin_id": "sapi-origin", "func": "demo.origin"}


def test_simplified_forms_take_the_whole_query_or_body(public: httpx.Client) -> None:
    for path in ("/api/v1/sync/sapi-echo/simplified", "/api/v1/sync/sapi-echo/s"):
        assert public.get(path, params={"x": "1", "y": "two"}).json() == {"x": "1", "y": "two"}
        assert public.post(path, json={"n": 5, "list": [1]}).json() == {"n": 5, "list": [1]}
    assert public.post("/api/v1/sync/sapi-echo/s/any/path", data={"f": "v"}).json() == {"f": "v"}
    text = public.post(
        "/api/v1/sync/sapi-echo/s", content="plain words", headers={"Content-Type": "text/plain"}
    )
    assert text.json() == {"text": "plain words"}
    blob = public.post(
        "/api/v1/sync/sapi-echo/s",
        content=b"\x00\x01\x02",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert blob.json() == {"base64": base64.b64encode(b"\x00\x01\x02").decode()}
    detail = _envelope_error(
        public.get("/api/v1/sync/sapi-echo/verbose"), 404, 404.41, "EClientNotFound"
    )
    assert detail["allowed"] == ["simplified", "s", "(none)"]


def test_sync_api_keeps_the_endpoints_rules(public: httpx.Client) -> None:
    """Its auth (EAPIAuth), fixed kwargs and existence, in DataFlux Func's words."""
    body = {"kwargs": {"a": 1, "b": 2}}
    _envelope_error(public.post("/api/v1/sync/sapi-locked", json=body), 401, 401.99, "EAPIAuth")
    let_in = public.post("/api/v1/sync/sapi-locked", json=body, headers={"X-Token": "s3cret-token"})
    assert let_in.content == b"3"
    assert public.post("/api/v1/sync/sapi-fixed/s", json={"b": 5}).content == b"15"
    detail = _envelope_error(
        public.post("/api/v1/sync/sapi-fixed/s", json={"a": 1, "b": 5}),
        400,
        400.43,
        "EClientBadRequest",
    )
    assert detail["code"] == "invalid_kwargs"
    _envelope_error(public.get("/api/v1/sync/nope"), 404, 404.41, "EClientNotFound")
    once = {"kwargs": {"a": 1, "b": 1}}
    assert public.post("/api/v1/sync/sapi-rare", json=once).content == b"2"
    throttled = public.post("/api/v1/sync/sapi-rare", json=once)
    _envelope_error(throttled, 429, 429.46, "EClientRateLimit.APIThrottling")
    assert int(throttled.headers["Retry-After"]) > 0
    off = _envelope_error(
        public.get("/api/v1/sync/sapi-off"), 403, 403.21, "EBizCondition.SyncAPIDisabled"
    )
    assert off == {"id": "sapi-off", "code": "endpoint_disabled"}
    _envelope_error(
        public.post("/api/v1/async/aapi-old", json={}), 403, 403.21, "EBizCondition.AsyncAPIExpired"
    )
    wrong_mode = _envelope_error(
        public.get("/api/v1/sync/aapi-add"), 404, 404.41, "EClientNotFound"
    )
    assert wrong_mode == {"id": "aapi-add"}


def test_sync_api_failures_show_a_traceback_only_when_allowed(public: httpx.Client) -> None:
    hidden = _envelope_error(public.get("/api/v1/sync/sapi-fail"), 599, 599.1, "EFuncFailed")
    assert hidden["exception"] == "ValueError: boom" and hidden["traceback"] is None
    shown = _envelope_error(public.get("/api/v1/sync/sapi-fail-tb"), 599, 599.1, "EFuncFailed")
    assert "ValueError: boom" in shown["traceback"]
    bad = public.post(
        "/api/v1/sync/sapi-add", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    _envelope_error(bad, 400, 400.43, "EClientBadRequest")


def test_async_api_queues_and_its_result_can_be_read(stack: Stack, public: httpx.Client) -> None:
    answer = public.post("/api/v1/async/aapi-add", json={"kwargs": {"a": 5, "b": 6}})
    data = _envelope_ok(answer)
    assert data["url"] == f"/e/aapi-add/tasks/{data['id']}" == answer.headers["Location"]
    state = public.get(data["url"], params={"wait": 10}).json()
    assert (state["status"], state["result"], state["origin_id"]) == ("success", 11, "aapi-add")
    with stack.admin() as admin:
        assert admin.get(f"/api/v1/tasks/{data['id']}").json()["result"] == 11
    simplified = _envelope_ok(public.get("/api/v1/async/aapi-echo/s", params={"q": "v"}))
    state = public.get(f"/e/aapi-echo/tasks/{simplified['id']}", params={"wait": 10}).json()
    assert state["result"] == {"q": "v"}
    started = time.time()
    delayed = _envelope_ok(
        public.post(
            "/api/v1/async/aapi-add", json={"kwargs": {"a": 1, "b": 1}, "options": {"delay": 1.5}}
        )
    )
    state = public.get(f"/e/aapi-add/tasks/{delayed['id']}", params={"wait": 10}).json()
    assert state["result"] == 2 and state["start_time"] - started >= 1.4
    _envelope_error(public.get("/api/v1/async/sapi-add"), 404, 404.41, "EClientNotFound")
    # DataFlux Func's URL before 5.0 (Batch)
    batch = _envelope_ok(public.get("/api/v1/bat/aapi-add/s", params={"a": "x", "b": "y"}))
    state = public.get(f"/e/aapi-add/tasks/{batch['id']}", params={"wait": 10}).json()
    assert state["result"] == "xy"


def test_redis_down_answers_in_the_envelope_and_recovers(tmp_path: Path) -> None:
    """An outage is DataFlux Func's `ESysNetwork` 503 with `Retry-After`, never fnhub's own
    shape or a 500, on both URL styles; once Redis is back the calls work again."""
    own = PrivateRedis(tmp_path / "redis")
    own.start()
    stack = make_stack(tmp_path / "stack", script=SCRIPT, redis_url=own.url)
    try:
        with stack.admin() as admin, stack.client() as public:
            assert admin.put("/api/v1/endpoints/sapi-add", json=ENDPOINTS["sapi-add"]).is_success
            assert _func(admin, "demo.add", {"a": 1, "b": 2}, unbox=True).content == b"3"
            own.stop()
            time.sleep(1.5)  # past the endpoints' revision check
            for answer in (
                _func(admin, "demo.add", {"a": 1, "b": 2}),
                public.get("/api/v1/sync/sapi-add/s"),
            ):
                _envelope_error(answer, 503, 503.22, "ESysNetwork")
                assert answer.headers["Retry-After"] == "5"
            own.start()
            back = lambda: _func(admin, "demo.add", {"a": 2, "b": 2}, unbox=True)  # noqa: E731
            assert wait_for(lambda: back().content == b"4", timeout=30)
    finally:
        close_stack(stack)
        own.close()
