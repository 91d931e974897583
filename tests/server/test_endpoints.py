"""Published endpoints: every auth type, throttling, cached results, uploads, shaped responses."""

from __future__ import annotations

import base64
import time
import uuid

import httpx

from fnhub.server.endpoint_auth import signature

from .conftest import Stack


def publish(stack: Stack, name: str, **spec: object) -> dict:
    with stack.admin() as c:
        r = c.put(f"/api/v1/endpoints/{name}", json=spec)
        assert r.status_code == 200, r.text
        return r.json()


def test_sync_endpoint_kwargs_from_query_json_form_text(stack: Stack) -> None:
    publish(stack, "echo", function="demo.echo")
    with stack.client() as c:
        assert c.get("/e/echo", params={"a": "1", "b": ["x", "y"]}).json() == {
            "a": "1",
            "b": ["x", "y"],
        }
        assert c.post("/e/echo?q=1", json={"n": 2, "z": None}).json() == {
            "q": "1",
            "n": 2,
            "z": None,
        }
        assert c.post("/e/echo", data={"f": "v"}).json() == {"f": "v"}
        assert c.post(
            "/e/echo", content="plain", headers={"content-type": "text/plain"}
        ).json() == {"body": "plain"}
        raw = c.post(
            "/e/echo", content=b"\x00\xff", headers={"content-type": "application/octet-stream"}
        ).json()["body"]
        assert base64.b64decode(raw["base64"]) == b"\x00\xff" and raw["size"] == 2
        bad = c.post("/e/echo", content=b"{nope", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
        assert c.get("/e/missing").status_code == 404


def test_file_upload(stack: Stack) -> None:
    publish(stack, "upload", function="demo.upload")
    with stack.client() as c:
        r = c.post(
            "/e/upload",
            files={"file": ("report.csv", b"a,b\n1,2\n", "text/csv")},
            data={"note": "hi"},
        )
    assert r.json() == {"name": "report.csv", "size": 8, "type": "text/csv", "note": "hi"}


def test_fixed_kwargs_with_placeholders(stack: Stack) -> None:
    publish(stack, "add-ten", function="demo.add", kwargs={"a": 10, "b": "$caller"})
    with stack.client() as c:
        text = c.get("/e/add-ten", params={"b": 5})  # query values are text: 10 + "5" raises
        assert (text.status_code, text.json()["error"]["error_type"]) == (500, "TypeError")
        assert c.post("/e/add-ten", json={"b": 5}).json() == 15
        refused = c.post("/e/add-ten", json={"a": 1, "b": 5})
        assert refused.status_code == 422 and "a" in refused.json()["error"]["message"]


def test_function_errors_and_traceback_visibility(stack: Stack) -> None:
    publish(stack, "fail-quiet", function="demo.fail")
    publish(stack, "fail-loud", function="demo.fail", show_traceback=True)
    with stack.client() as c:
        quiet = c.get("/e/fail-quiet").json()["error"]
        loud = c.get("/e/fail-loud").json()["error"]
    assert quiet["error_type"] == "ValueError" and "traceback" not in quiet
    assert "raise ValueError" in loud["traceback"]


def test_shaped_responses(stack: Stack) -> None:
    publish(stack, "shaped", function="demo.shaped")
    with stack.client() as c:
        text = c.get("/e/shaped", params={"kind": "text"})
        assert (text.status_code, text.text, text.headers["x-extra"]) == (201, "hi there", "1")
        assert text.headers["content-type"].startswith("text/plain")
        file = c.get("/e/shaped", params={"kind": "file"})
        assert file.content == b"\x00\x01binary"
        assert 'attachment; filename="data.bin"' in file.headers["content-disposition"]
        other = c.get("/e/shaped", params={"kind": "json"})
        assert (other.status_code, other.json()) == (202, {"made": True})


def test_falsy_results_come_back_as_they_are(stack: Stack) -> None:
    publish(stack, "falsy", function="demo.falsy")
    with stack.client() as c:
        for kind, value in [("zero", 0), ("false", False), ("empty", ""), ("list", [])]:
            assert c.get("/e/falsy", params={"kind": kind}).json() == value


def test_async_endpoint(stack: Stack) -> None:
    publish(stack, "add-async", function="demo.add", mode="async")
    with stack.client() as c:
        r = c.post("/e/add-async", json={"a": 2, "b": 3})
    assert r.status_code == 202
    with stack.admin() as c:
        done = c.get(f"/api/v1/tasks/{r.json()['id']}", params={"wait": 10}).json()
    assert (done["status"], done["result"], done["origin"], done["origin_id"]) == (
        "success",
        5,
        "endpoint",
        "add-async",
    )


def test_async_endpoint_callers_poll_with_the_endpoints_own_auth(stack: Stack) -> None:
    token = {"type": "token", "token": "poll-token"}
    publish(stack, "add-polled", function="demo.add", mode="async", auth=token)
    publish(stack, "other-polled", function="demo.add", mode="async")
    good = {"X-Token": "poll-token"}
    with stack.client() as c:
        queued = c.post("/e/add-polled", json={"a": 4, "b": 5}, headers=good)
        assert queued.status_code == 202
        url = queued.json()["url"]
        assert queued.headers["location"] == url == f"/e/add-polled/tasks/{queued.json()['id']}"
        assert c.get(url).status_code == 401  # no token: the endpoint's auth applies
        assert c.get(url, headers={"X-Token": "wrong"}).status_code == 401
        done = c.get(url, params={"wait": 10}, headers=good).json()
        assert (done["status"], done["result"]) == ("success", 9)
        # another endpoint's credentials (here: none needed) do not reach this task
        task_id = queued.json()["id"]
        assert c.get(f"/e/other-polled/tasks/{task_id}").status_code == 404
        unknown = "/e/add-polled/tasks/0123456789abcdef01234567"
        assert c.get(unknown, headers=good).status_code == 404


def test_token_and_basic_auth(stack: Stack) -> None:
    spec = publish(
        stack, "tok", function="demo.echo", auth={"type": "token", "token": "s3cret-token"}
    )
    assert spec["auth"]["token"] == "********"
    publish(
        stack,
        "tokq",
        function="demo.echo",
        kwargs={},
        auth={"type": "token", "location": "query", "field": "key", "token": "query-token"},
    )
    publish(
        stack,
        "basic",
        function="demo.echo",
        auth={"type": "basic", "username": "u", "password": "p"},
    )
    with stack.client() as c:
        assert c.get("/e/tok").status_code == 401
        wrong = c.get("/e/tok", headers={"X-Token": "nope-nope"})
        assert (
            wrong.status_code == 401 and wrong.json()["error"]["message"] == "authentication failed"
        )
        assert c.get("/e/tok", headers={"X-Token": "s3cret-token"}).status_code == 200
        # the token field is the credential, not a kwarg: an endpoint taking none accepts it
        accepted = c.get("/e/tokq", params={"key": "query-token"})
        assert (accepted.status_code, accepted.json()) == (200, {})
        # ...and other query parameters are still kwargs it refuses
        assert c.get("/e/tokq", params={"key": "query-token", "x": "1"}).status_code == 422
        assert c.get("/e/tokq", params={"key": "wrong"}).status_code == 401
        assert c.get("/e/basic", auth=("u", "wrong")).status_code == 401
        assert c.get("/e/basic").headers["www-authenticate"].startswith("Basic")
        assert c.get("/e/basic", auth=("u", "p")).status_code == 200
    # re-saving with the mask keeps the secret
    publish(stack, "tok", function="demo.echo", auth={"type": "token", "token": "********"})
    time.sleep(0.05)
    with stack.client() as c:
        assert c.get("/e/tok", headers={"X-Token": "s3cret-token"}).status_code == 200


def _signed(secret: str, method: str, target: str, body: bytes, ts: int | None = None) -> dict:
    ts_text = str(ts if ts is not None else int(time.time()))
    nonce = uuid.uuid4().hex
    return {
        "X-Fnhub-Timestamp": ts_text,
        "X-Fnhub-Nonce": nonce,
        "X-Fnhub-Signature": signature(secret, method, target, ts_text, nonce, body),
        "content-type": "application/json",
    }


def test_hmac_auth_rejects_replays_and_tampering(stack: Stack) -> None:
    secret = "a-long-hmac-secret-value"
    publish(stack, "signed", function="demo.echo", auth={"type": "hmac", "secret": secret})
    body = b'{"x": 1}'
    with stack.client() as c:
        headers = _signed(secret, "POST", "/e/signed?y=2", body)
        ok = c.post("/e/signed?y=2", content=body, headers=headers)
        assert ok.status_code == 200 and ok.json() == {"x": 1, "y": "2"}
        replay = c.post("/e/signed?y=2", content=body, headers=headers)
        assert replay.status_code == 401
        tampered = _signed(secret, "POST", "/e/signed", body)
        assert c.post("/e/signed", content=b'{"x": 2}', headers=tampered).status_code == 401
        old = _signed(secret, "POST", "/e/signed", body, ts=int(time.time()) - 3600)
        assert c.post("/e/signed", content=body, headers=old).status_code == 401
        assert c.post("/e/signed", content=body).status_code == 401


def test_an_hmac_endpoint_saved_again_with_its_masked_secret_keeps_it(stack: Stack) -> None:
    """The console sends an unchanged secret back as the mask it got: that must save (the
    mask is shorter than an hmac secret may be) and keep the secret; a short new one is not."""
    secret = "another-long-hmac-secret"
    hmac = {"type": "hmac", "secret": secret}
    shown = publish(stack, "resigned", function="demo.echo", auth=hmac)
    assert shown["auth"]["secret"] == "********"
    again = publish(stack, "resigned", function="demo.echo", auth=shown["auth"] | {"max_skew": 60})
    assert again["auth"] == {"type": "hmac", "secret": "********", "max_skew": 60}
    body = b'{"x": 3}'
    with stack.client() as c:
        headers = _signed(secret, "POST", "/e/resigned", body)
        assert c.post("/e/resigned", content=body, headers=headers).json() == {"x": 3}
    with stack.admin() as c:
        short = {"function": "demo.echo", "auth": {"type": "hmac", "secret": "too-short"}}
        refused = c.put("/api/v1/endpoints/resigned", json=short)
        assert refused.status_code == 422 and "16 characters" in refused.text


def test_function_auth(stack: Stack) -> None:
    publish(
        stack, "guarded", function="demo.echo", auth={"type": "function", "function": "demo.allow"}
    )
    with stack.client() as c:
        assert c.get("/e/guarded").status_code == 403
        assert c.get("/e/guarded", headers={"X-Let-In": "yes"}).json() == {}


def test_throttling(stack: Stack) -> None:
    publish(stack, "limited", function="demo.echo", throttle={"minute": 3})
    with stack.client() as c:
        codes = [c.get("/e/limited").status_code for _ in range(5)]
        last = c.get("/e/limited")
    assert codes == [200, 200, 200, 429, 429]
    assert last.status_code == 429 and 1 <= int(last.headers["retry-after"]) <= 60


def test_cached_results(stack: Stack) -> None:
    publish(stack, "cached", function="demo.counted", cache_result=30)
    with stack.client() as c:
        first = c.get("/e/cached", params={"key": "c1"})
        second = c.get("/e/cached", params={"key": "c1"})
        other = c.get("/e/cached", params={"key": "c2"})
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
    assert first.json() == second.json() == 1 and other.json() == 1
    with stack.admin() as c:
        listed = c.get("/api/v1/cache/endpoint.cached").json()["items"]
        assert len(listed) == 2
        key = listed[0]["key"]
        assert c.get(f"/api/v1/cache/endpoint.cached/{key}").json()["value"] == 1
        assert c.delete(f"/api/v1/cache/endpoint.cached/{key}").json() == {"deleted": True}
        assert c.get(f"/api/v1/cache/endpoint.cached/{key}").status_code == 404


def test_disabled_and_expired(stack: Stack) -> None:
    publish(stack, "off", function="demo.echo", enabled=False)
    publish(stack, "old", function="demo.echo", expires_at=time.time() - 1)
    with stack.client() as c:
        assert c.get("/e/off").status_code == 403
        assert c.get("/e/old").status_code == 410
    with stack.admin() as c:
        assert c.delete("/api/v1/endpoints/off").json() == {"deleted": True}
        assert httpx.get(f"{stack.url}/e/off").status_code == 404
