"""JSON bodies sent without `Content-Type: application/json` (curl -d labels them as a form; many
libraries send no type): the call routes and endpoints take them, every other route says which
header to send."""

from __future__ import annotations

import orjson

from .conftest import Stack

FORM = {"content-type": "application/x-www-form-urlencoded"}  # what curl -d sends


def test_call_routes_take_json_under_any_content_type(stack: Stack) -> None:
    body = orjson.dumps({"kwargs": {"a": 1, "b": 2}})
    with stack.admin() as c:
        for headers in (FORM, {}, {"content-type": "text/plain"}):
            r = c.post("/api/v1/functions/demo.add/call", content=body, headers=headers)
            assert (r.status_code, r.json()["result"]) == (200, 3), (headers, r.text)
        r = c.post("/api/v1/functions/demo.add/tasks", content=body, headers=FORM)
        assert r.status_code == 202, r.text
        done = c.get(f"/api/v1/tasks/{r.json()['id']}", params={"wait": 10}).json()
        assert (done["status"], done["result"]) == ("success", 3)


def test_call_routes_name_the_header_for_a_body_that_is_not_json(stack: Stack) -> None:
    with stack.admin() as c:
        r = c.post("/api/v1/functions/demo.add/call", content=b"a=1&b=2", headers=FORM)
        assert r.status_code == 415, r.text
        error = r.json()["error"]
        assert error["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error["message"]
        assert "application/x-www-form-urlencoded" in error["message"]
        # a JSON type with broken JSON is still a parse error
        r = c.post(
            "/api/v1/functions/demo.add/call",
            content=b'{"kwargs": ',
            headers={"content-type": "application/json"},
        )
        assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")


def test_other_routes_name_the_header_and_change_nothing(stack: Stack) -> None:
    body = orjson.dumps({"code": "import fnhub\n"})
    with stack.admin() as c:
        for headers, said in ((FORM, "'application/x-www-form-urlencoded'"), ({}, "no Content")):
            r = c.put("/api/v1/scripts/typeless", content=body, headers=headers)
            assert r.status_code == 415, r.text
            message = r.json()["error"]["message"]
            assert "Content-Type: application/json" in message and said in message, message
        assert c.get("/api/v1/scripts/typeless/versions").status_code == 404
        # a JSON body that does not fit is still told what does not fit
        r = c.put("/api/v1/scripts/typeless", json={"cod": "x"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_endpoints_take_a_json_object_sent_as_a_form_or_without_type(stack: Stack) -> None:
    with stack.admin() as c:
        r = c.put("/api/v1/endpoints/typeless", json={"function": "demo.echo"})
        assert r.status_code == 200, r.text
    with stack.client() as c:
        body = orjson.dumps({"n": 2, "s": "x"})
        for headers in (FORM, {}):
            r = c.post("/e/typeless?q=1", content=body, headers=headers)
            assert r.json() == {"q": "1", "n": 2, "s": "x"}, (headers, r.text)
        # a real form and an untyped body that is not a JSON object keep their meaning
        assert c.post("/e/typeless", data={"f": "{v}"}).json() == {"f": "{v}"}
        raw = c.post("/e/typeless", content=b"[1, 2]").json()["body"]
        assert raw["content_type"] == "application/octet-stream" and raw["size"] == 6
