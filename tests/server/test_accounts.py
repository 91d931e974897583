"""Console accounts through the real server: sign-in and out, cookies, CSRF, session fixation,
sign-in throttling, and roles of users and API keys on every `/api/v1` route."""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from .conftest import Stack, close_stack, make_stack

PASSWORD = "correct horse battery"
API = "/api/v1"
ADMIN_ONLY = re.compile(r"^/api/v1/(users|keys|audit)(/|$)")


def random_ip() -> str:
    """A client address of its own (the server trusts X-Forwarded-For from 127.0.0.1, uvicorn's
    default), so each test's failed sign-ins count against an address no other test uses."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def add_user(stack: Stack, username: str, role: str, password: str = PASSWORD) -> None:
    with stack.admin() as c:
        r = c.post(f"{API}/users", json={"username": username, "password": password, "role": role})
        assert r.status_code == 201, r.text


def sign_in(
    stack: Stack, username: str, password: str = PASSWORD, ip: str | None = None
) -> tuple[httpx.Client, str]:
    """A client holding the session cookie, and the session's CSRF token."""
    client = stack.client(headers={"X-Forwarded-For": ip or random_ip()})
    r = client.post(f"{API}/session", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


def attempt(stack: Stack, username: str, password: str, ip: str) -> httpx.Response:
    with stack.client(headers={"X-Forwarded-For": ip}) as c:
        return c.post(f"{API}/session", json={"username": username, "password": password})


def test_sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session(stack: Stack) -> None:
    add_user(stack, "alice", "developer")
    with stack.client(headers={"X-Forwarded-For": random_ip()}) as client:
        r = client.post(f"{API}/session", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 200, r.text
        header = r.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age="):
            assert attribute.lower() in header.lower(), header
        assert "secure" not in header.lower()  # plain HTTP here
        assert r.json()["user"] == {"username": "alice", "role": "developer"}
        csrf = r.json()["csrf_token"]
        assert client.get(f"{API}/session").json()["csrf_token"] == csrf
        me = client.get(f"{API}/me").json()
        assert me == {
            "user": {"username": "alice", "role": "developer"},
            "role": "developer",
            "csrf_token": csrf,
        }
        assert client.get(f"{API}/scripts").status_code == 200
        no_token = client.delete(f"{API}/session")
        assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf"
        assert client.get(f"{API}/session").status_code == 200  # still signed in
        signed_in = client.cookies["fnhub_session"]
        out = client.delete(f"{API}/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert "max-age=0" in out.headers["set-cookie"].lower()
    with stack.client(cookies={"fnhub_session": signed_in}) as replay:
        assert replay.get(f"{API}/session").status_code == 401
        assert replay.get(f"{API}/scripts").status_code == 401


def test_wrong_credentials_answer_401_alike(stack: Stack) -> None:
    add_user(stack, "bruno", "viewer")
    ip = random_ip()
    wrong = attempt(stack, "bruno", "not the password", ip)
    unknown = attempt(stack, "nobody-here", PASSWORD, ip)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert attempt(stack, "bruno", PASSWORD, ip).status_code == 200


def test_an_unknown_user_costs_the_same_password_hash(stack: Stack) -> None:
    """Without the dummy hash, an unknown name answers in about a millisecond, a known one after
    an argon2 check (tens of ms): the time would tell which names exist."""
    add_user(stack, "carmen", "viewer")

    def timed(username: str) -> float:
        start = time.perf_counter()
        assert attempt(stack, username, "wrong password!", random_ip()).status_code == 401
        return time.perf_counter() - start

    known = statistics.median(timed("carmen") for _ in range(5))
    unknown = statistics.median(timed(f"ghost{i}") for i in range(5))
    assert unknown > known * 0.5, (known, unknown)


def test_a_fixated_session_id_is_never_honoured(stack: Stack) -> None:
    add_user(stack, "dora", "viewer")
    planted = "A" * 43  # a well-formed id an attacker put into the victim's browser
    with stack.client(cookies={"fnhub_session": planted}) as victim:
        r = victim.post(f"{API}/session", json={"username": "dora", "password": PASSWORD})
        assert r.status_code == 200
        issued = r.cookies["fnhub_session"]
        assert issued != planted
    with stack.client(cookies={"fnhub_session": planted}) as attacker:
        assert attacker.get(f"{API}/session").status_code == 401
        assert attacker.get(f"{API}/scripts").status_code == 401
    # signing in again from a signed-in browser also gives a new id and ends the old one
    with stack.client(cookies={"fnhub_session": issued}) as again:
        r = again.post(f"{API}/session", json={"username": "dora", "password": PASSWORD})
        assert r.status_code == 200 and r.cookies["fnhub_session"] != issued
    with stack.client(cookies={"fnhub_session": issued}) as old:
        assert old.get(f"{API}/session").status_code == 401


def test_csrf_missing_or_wrong_changes_nothing(stack: Stack) -> None:
    add_user(stack, "erin", "admin")
    client, csrf = sign_in(stack, "erin")
    code = "import fnhub\n\n@fnhub.api()\ndef f():\n    return 1\n"
    with closing(client):
        # a token one character off (the first: a 43-character token's last character carries
        # only 4 bits, so replacing it with "A" gave the right token back one time in 16)
        wrong = ("B" if csrf[0] == "A" else "A") + csrf[1:]
        for headers in ({}, {"X-CSRF-Token": "x" * 43}, {"X-CSRF-Token": wrong}):
            r = client.post(
                f"{API}/users",
                json={"username": "mallory", "password": PASSWORD, "role": "admin"},
                headers=headers,
            )
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", r.text
            r = client.put(f"{API}/scripts/csrf_probe", json={"code": code}, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
        users = {u["username"] for u in client.get(f"{API}/users").json()["items"]}
        assert "mallory" not in users
        assert client.get(f"{API}/scripts/csrf_probe/versions").status_code == 404
        # an API key needs no CSRF token (no browser sends it on its own)
        with stack.admin() as key_client:
            assert key_client.get(f"{API}/me").json()["role"] == "admin"
        ok = client.put(
            f"{API}/scripts/csrf_probe", json={"code": code}, headers={"X-CSRF-Token": csrf}
        )
        assert ok.status_code == 200, ok.text


def _operations(stack: Stack) -> list[tuple[str, str]]:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    ops = []
    for path, methods in spec["paths"].items():
        if not path.startswith(API) or path == f"{API}/session":
            continue
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path))
    return ops


def _concrete(path: str) -> str:
    values = {"ref": "demo.add", "version": "1", "dead_id": "1"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x1"), path)


def _status(client: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    with client.stream(method, _concrete(path), **body, **kwargs) as r:  # type: ignore[arg-type]
        if r.status_code in (401, 403):
            r.read()
        return r


@pytest.fixture(scope="module")
def viewers(stack: Stack) -> Iterator[dict[str, tuple[httpx.Client, dict[str, str]]]]:
    """A viewer API key and a signed-in viewer, each with the headers its writes carry."""
    add_user(stack, "victor", "viewer")
    with stack.admin() as c:
        token = c.post(f"{API}/keys", json={"name": "ro", "role": "viewer"}).json()["token"]
    session, csrf = sign_in(stack, "victor")
    key = stack.client(headers={"Authorization": f"Bearer {token}"})
    yield {"key": (key, {}), "session": (session, {"X-CSRF-Token": csrf})}
    key.close()
    session.close()


def test_every_api_route_needs_credentials(stack: Stack) -> None:
    ops = _operations(stack)
    assert len(ops) > 40  # the server's and the areas' routes are all there
    with stack.client() as anonymous:
        for method, path in ops:
            r = _status(anonymous, method, path)
            assert r.status_code == 401, (method, path, r.status_code)


@pytest.mark.parametrize("kind", ["key", "session"])
def test_a_viewer_reads_everything_but_changes_nothing(
    stack: Stack, viewers: dict[str, tuple[httpx.Client, dict[str, str]]], kind: str
) -> None:
    client, headers = viewers[kind]
    with stack.admin() as admin:
        before = admin.get(f"{API}/audit", params={"limit": 500}).json()["items"]
    writes = 0
    for method, path in _operations(stack):
        r = _status(client, method, path, headers=headers)
        if method == "GET" and not ADMIN_ONLY.match(path):
            assert r.status_code not in (401, 403), (method, path, r.status_code)
            continue
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.json()["error"]["code"] == "forbidden", (method, path)
        writes += method != "GET"
    assert writes > 30
    with stack.admin() as admin:
        after = admin.get(f"{API}/audit", params={"limit": 500}).json()["items"]
    assert after == before  # not one change went through
    assert client.get(f"{API}/me").json()["role"] == "viewer"


@pytest.mark.parametrize("kind", ["key", "session"])
def test_a_developer_publishes_but_manages_no_accounts(stack: Stack, kind: str) -> None:
    if kind == "key":
        with stack.admin() as c:
            token = c.post(f"{API}/keys", json={"role": "developer"}).json()["token"]
        client, headers = stack.client(headers={"Authorization": f"Bearer {token}"}), {}
    else:
        add_user(stack, "devon", "developer")
        client, csrf = sign_in(stack, "devon")
        headers = {"X-CSRF-Token": csrf}
    code = "import fnhub\n\n@fnhub.api()\ndef hi():\n    return 'dev'\n"
    with closing(client):
        r = client.put(f"{API}/scripts/dev_{kind}", json={"code": code}, headers=headers)
        assert r.status_code == 200, r.text
        call = client.post(f"{API}/functions/dev_{kind}.hi/call", json={}, headers=headers)
        assert call.status_code == 200 and call.json()["result"] == "dev"
        refused = [
            client.get(f"{API}/users"),
            client.post(
                f"{API}/users",
                json={"username": "x", "password": PASSWORD, "role": "admin"},
                headers=headers,
            ),
            client.patch(f"{API}/users/devon", json={"role": "admin"}, headers=headers),
            client.delete(f"{API}/users/alice", headers=headers),
            client.get(f"{API}/keys"),
            client.post(f"{API}/keys", json={"role": "admin"}, headers=headers),
            client.delete(f"{API}/keys/abc", headers=headers),
            client.get(f"{API}/audit"),
        ]
        for r in refused:
            assert r.status_code == 403, (r.request.method, r.request.url, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    with stack.admin() as admin:
        roles = {u["username"]: u["role"] for u in admin.get(f"{API}/users").json()["items"]}
    assert roles.get("devon", "developer") == "developer" and "x" not in roles


def test_me_for_a_key_and_existing_clients_keep_working(stack: Stack) -> None:
    with stack.admin() as c:
        me = c.get(f"{API}/me").json()
        assert me["role"] == "admin" and set(me) == {"key", "role"}
        roles = {k["id"]: k["role"] for k in c.get(f"{API}/keys").json()["items"]}
        assert roles[me["key"]["id"]] == "admin"  # the key made before roles existed
    with stack.client(headers={"X-Api-Key": stack.token}) as c:
        assert c.get(f"{API}/users").status_code == 200


def test_user_management_rules(stack: Stack) -> None:
    add_user(stack, "frank", "developer")
    frank, frank_csrf = sign_in(stack, "frank")
    with stack.admin() as c:
        assert (
            c.post(
                f"{API}/users", json={"username": "frank", "password": PASSWORD, "role": "viewer"}
            ).status_code
            == 409
        )
        short = c.post(f"{API}/users", json={"username": "g", "password": "short", "role": "x"})
        assert short.status_code == 422
        # a promotion takes effect on the running session at once
        assert c.patch(f"{API}/users/frank", json={"role": "admin"}).json()["role"] == "admin"
        assert frank.get(f"{API}/users").status_code == 200
        # a new password ends the user's sessions
        assert c.patch(f"{API}/users/frank", json={"password": "another password"}).is_success
        assert frank.get(f"{API}/me").status_code == 401
        assert attempt(stack, "frank", "another password", random_ip()).status_code == 200
        frank2, _ = sign_in(stack, "frank", "another password")
        assert c.patch(f"{API}/users/frank", json={"disabled": True}).json()["disabled"] is True
        assert frank2.get(f"{API}/me").status_code == 401
        assert attempt(stack, "frank", "another password", random_ip()).status_code == 401
        assert c.delete(f"{API}/users/frank").json() == {"deleted": True}
        assert c.delete(f"{API}/users/frank").status_code == 404
        # the last enabled admin stays one
        admins = [u for u in c.get(f"{API}/users").json()["items"] if u["role"] == "admin"]
        for user in admins[:-1]:
            assert c.patch(f"{API}/users/{user['username']}", json={"disabled": True}).is_success
        last = admins[-1]["username"]
        for change in ({"role": "viewer"}, {"disabled": True}):
            r = c.patch(f"{API}/users/{last}", json=change)
            assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin"
        assert c.delete(f"{API}/users/{last}").status_code == 409
        for user in admins[:-1]:
            c.patch(f"{API}/users/{user['username']}", json={"disabled": False})
    frank.close()
    frank2.close()
    del frank_csrf


def test_ten_wrong_passwords_throttle_even_the_right_one(tmp_path: Path) -> None:
    """5 failures per username within the window: the 6th attempt and every one after (the right
    password too) get 429 with Retry-After, until the window has moved past the failures."""
    stack = make_stack(tmp_path, workers=False, signin_window_seconds="8")
    try:
        add_user(stack, "gina", "viewer")
        ip = random_ip()
        start = time.monotonic()
        answers = [attempt(stack, "gina", f"wrong {i}", ip) for i in range(10)]
        assert [a.status_code for a in answers] == [401] * 5 + [429] * 5
        assert time.monotonic() - start < 8, "too slow a machine for this window"
        throttled = answers[-1]
        assert throttled.json()["error"]["code"] == "throttled"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 8
        right = attempt(stack, "gina", PASSWORD, ip)
        assert right.status_code == 429
        # per username, not per address: another address is refused as well
        assert attempt(stack, "gina", PASSWORD, random_ip()).status_code == 429
        time.sleep(int(right.headers["Retry-After"]) + 0.2)
        assert attempt(stack, "gina", PASSWORD, ip).status_code == 200
    finally:
        close_stack(stack)


def test_failures_per_address_throttle_every_name_and_a_success_keeps_them(stack: Stack) -> None:
    add_user(stack, "hugo", "viewer")
    ip = random_ip()
    for i in range(19):  # different names: only the address's counter reaches its limit
        assert attempt(stack, f"guess{i}", "wrong password", ip).status_code == 401
    assert attempt(stack, "hugo", PASSWORD, ip).status_code == 200  # does not reset the count
    assert attempt(stack, "guess-last", "wrong password", ip).status_code == 401  # 20th failure
    refused = attempt(stack, "hugo", PASSWORD, ip)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 800
    assert attempt(stack, "hugo", PASSWORD, random_ip()).status_code == 200
