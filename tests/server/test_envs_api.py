"""Env variables and the store through a real server and worker: `envs:` in fnhub.yaml with
`${NAME}`, `/api/v1/envs` (pages, admin-only writes, refusals with the reason), scripts
reading every type and using `fnhub.store`, and a password that a script prints, logs, returns
and raises never appearing in a task record, an API answer, a CLI line or a server or worker
log line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tests.conftest import wait_for
from tests.server.conftest import Stack, close_stack, make_stack

from fnhub.bootstrap import open_services
from fnhub.config import load_settings
from fnhub.server.auth import create_key

API = "/api/v1"
SECRET = "Tr0ub4dor&3-horse-battery"
ROTATED = "correct-staple-2"

SCRIPT = """
import sys

import fnhub

# top-level code runs as the script loads, outside any task: straight to the worker's stderr
print("loading with", fnhub.env("DB_PASSWORD", "unset"), file=sys.stderr)


@fnhub.api("Every env variable, typed")
def read_all():
    names = ["REGION", "BATCH", "RATIO", "DRY_RUN", "LIMITS", "HOSTS", "DB_PASSWORD"]
    return {n: [fnhub.env(n), type(fnhub.env(n)).__name__] for n in names}


@fnhub.api("One env variable")
def one(name: str):
    return fnhub.env(name)


@fnhub.api("Use the password every way a script might show it")
def leak(how: str = "raise"):
    pw = fnhub.env("DB_PASSWORD")
    print("connecting with", pw)
    fnhub.log.warning("password in a log line: %s", pw)
    if how == "return":
        return {"password": pw, "nested": [f"pw={pw}"], pw: "as a key"}
    raise ConnectionError(f"login refused for password {pw!r}")


@fnhub.api("The store, per script and shared")
def store_ops(step: str):
    if step == "write":
        fnhub.store.set("count", 1)
        fnhub.store.mset({"user:1": {"n": "ann"}, "user:2": {"n": "bo"}, "other": 0})
        fnhub.store.set("short", "gone soon", expires=0.5)
        fnhub.store.set("shared", "for all", scope="team")
        return fnhub.store.set("count", 2, not_exists=True)
    return {
        "get": fnhub.store.get("count"),
        "mget": fnhub.store.mget(["count", "nope"]),
        "keys": fnhub.store.keys("user:*"),
        "pattern": fnhub.store.get_pattern("user:*"),
        "all": sorted(fnhub.store.getall()),
        "short": fnhub.store.get("short", "expired"),
        "shared": fnhub.store.get("shared", scope="team"),
        "shared_here": fnhub.store.get("shared"),
        "deleted": fnhub.store.delete_pattern("user:*"),
        "after": sorted(fnhub.store.getall()),
    }
"""

PROJECT = """
envs:
  REGION: eu-west
  BATCH: {type: integer, value: "500"}
  RATIO: {type: float, value: 0.25}
  DRY_RUN: {type: boolean, value: "on"}
  LIMITS: {type: json, value: '{"max": 3}'}
  HOSTS: {type: list, value: "h1,h2"}
  DB_PASSWORD: {type: password, value: "${TEST_ENVS_DB_PASSWORD}"}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("envs")
    (tmp / "fnhub.yaml").write_text(PROJECT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEST_ENVS_DB_PASSWORD", SECRET)
        s = make_stack(tmp, script=SCRIPT)
    try:
        yield s
    finally:
        close_stack(s)


def _key(stack: Stack, role: str) -> str:
    saved = dict(__import__("os").environ)
    __import__("os").environ.update(stack.env)
    try:
        services = open_services(load_settings(stack.dir), migrate=False)
        _row, token = create_key(services.db, f"{role} key", role=role)
        services.close()
    finally:
        __import__("os").environ.clear()
        __import__("os").environ.update(saved)
    return token


def call(stack: Stack, function: str, **kwargs: object) -> dict:
    with stack.admin() as c:
        answer = c.post(f"{API}/functions/demo.{function}/call", json={"kwargs": kwargs})
    return {"status": answer.status_code, "body": answer.json().get("result"), "text": answer.text,
            "task": answer.headers.get("x-task-id")}  # fmt: skip


def test_scripts_read_every_type_declared_in_fnhub_yaml(stack: Stack) -> None:
    answer = call(stack, "read_all")
    assert answer["status"] == 200, answer["text"]
    assert answer["body"] == {
        "REGION": ["eu-west", "str"], "BATCH": [500, "int"], "RATIO": [0.25, "float"],
        "DRY_RUN": [True, "bool"], "LIMITS": [{"max": 3}, "dict"],
        "HOSTS": [["h1", "h2"], "list"], "DB_PASSWORD": ["*****", "str"],
    }  # fmt: skip
    missing = call(stack, "one", name="NOT_THERE")
    assert missing["status"] == 500
    assert "no env variable named 'NOT_THERE'" in missing["text"]
    assert "UnknownEnv" in missing["text"]


def test_envs_api_pages_reads_masked_and_writes_only_for_admins(stack: Stack) -> None:
    with stack.admin() as c:
        page = c.get(f"{API}/envs", params={"limit": 3}).json()
        assert set(page) == {"items", "total", "offset", "limit", "next_cursor"}
        assert page["total"] == 7 and page["limit"] == 3 and page["next_cursor"]
        names = [r["name"] for r in page["items"]]
        while page["next_cursor"]:
            page = c.get(f"{API}/envs", params={"limit": 3, "cursor": page["next_cursor"]}).json()
            names += [r["name"] for r in page["items"]]
        assert names == sorted(["REGION", "BATCH", "RATIO", "DRY_RUN", "LIMITS", "HOSTS",
                                "DB_PASSWORD"])  # fmt: skip
        filtered = c.get(f"{API}/envs", params={"name": "pass"}).json()
        assert [r["name"] for r in filtered["items"]] == ["DB_PASSWORD"]
        password = c.get(f"{API}/envs/DB_PASSWORD").json()
        assert (password["type"], password["value"], password["provisioned"]) == (
            "password", "*****", True,
        )  # fmt: skip
        assert c.get(f"{API}/envs/NOPE").json()["error"]["code"] == "unknown_env"

        made = c.put(f"{API}/envs/TIMEOUT", json={"type": "integer", "value": 30})
        assert made.status_code == 200, made.text
        assert made.json()["value"] == "30" and made.json()["provisioned"] is False
        assert (
            c.put(f"{API}/envs/OPTS", json={"type": "json", "value": {"a": [1]}}).json()["value"]
            == '{"a":[1]}'
        )
        for body, reason in [
            ({"type": "secret", "value": "x"}, "unknown env type 'secret'"),
            ({"type": "integer", "value": "3.5"}, "'3.5' is not an integer"),
            ({"type": "json", "value": "{nope"}, "not valid JSON"),
            ({"type": "boolean", "value": "sometimes"}, "'sometimes' is not a boolean"),
            ({"type": "password", "value": "*****"}, "there is none"),
        ]:
            refused = c.put(f"{API}/envs/BAD", json=body)
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "invalid_env"
            assert reason in refused.json()["error"]["message"], refused.text
        assert c.put(f"{API}/envs/bad name", json={"value": "x"}).status_code in (404, 422)
        assert c.get(f"{API}/envs/BAD").status_code == 404

    # a script sees the new variable; a change reaches it within about a second
    wait_for(lambda: call(stack, "one", name="TIMEOUT")["body"] == 30, timeout=5)
    with stack.admin() as c:
        assert c.put(f"{API}/envs/TIMEOUT", json={"type": "integer", "value": "31"}).is_success
    wait_for(lambda: call(stack, "one", name="TIMEOUT")["body"] == 31, timeout=5)

    developer = stack.client(headers={"Authorization": f"Bearer {_key(stack, 'developer')}"})
    viewer = stack.client(headers={"Authorization": f"Bearer {_key(stack, 'viewer')}"})
    with developer, viewer:
        assert viewer.get(f"{API}/envs/TIMEOUT").json()["value"] == "31"
        denied = developer.put(f"{API}/envs/TIMEOUT", json={"type": "integer", "value": "1"})
        assert denied.status_code == 403 and "admin" in denied.json()["error"]["message"]
        assert developer.delete(f"{API}/envs/TIMEOUT").status_code == 403
        assert viewer.put(f"{API}/envs/X", json={"value": "1"}).status_code == 403
    with stack.admin() as c:
        assert c.delete(f"{API}/envs/TIMEOUT").json() == {"deleted": True}
        assert c.delete(f"{API}/envs/TIMEOUT").status_code == 404
        assert c.delete(f"{API}/envs/OPTS").status_code == 200
    wait_for(lambda: "no env variable named 'TIMEOUT'" in call(stack, "one", name="TIMEOUT")[
        "text"], timeout=5)  # fmt: skip


def test_the_store_per_script_with_scopes_expiry_and_patterns(stack: Stack) -> None:
    assert call(stack, "store_ops", step="write")["body"] is False  # count exists
    wait_for(lambda: call(stack, "store_ops", step="peek")["body"]["short"] == "expired", 5)
    # (peek deleted user:*; write them again and read once more)
    call(stack, "store_ops", step="write")
    read = call(stack, "store_ops", step="read")["body"]
    assert read == {
        "get": 1,
        "mget": {"count": 1, "nope": None},
        "keys": ["user:1", "user:2"],
        "pattern": {"user:1": {"n": "ann"}, "user:2": {"n": "bo"}},
        "all": ["count", "other", "short", "user:1", "user:2"],
        "short": "gone soon",
        "shared": "for all",
        "shared_here": None,
        "deleted": 2,
        "after": ["count", "other", "short"],
    }


def test_a_password_never_leaves_the_worker_in_clear(stack: Stack) -> None:
    with stack.admin() as c:
        # rotate it through the API: the new value must stay hidden as well
        assert c.put(f"{API}/envs/DB_PASSWORD",
                     json={"type": "password", "value": ROTATED}).is_success  # fmt: skip
        assert c.put(f"{API}/envs/DB_PASSWORD",
                     json={"type": "password", "value": SECRET}).is_success  # fmt: skip
    raised = call(stack, "leak", how="raise")
    returned = call(stack, "leak", how="return")
    assert raised["status"] == 500 and returned["status"] == 200
    assert returned["body"] == {"password": "*****", "nested": ["pw=*****"], "*****": "as a key"}
    assert "login refused for password '*****'" in raised["text"]
    submitted = []
    with stack.admin() as c:
        for how in ("raise", "return"):
            answer = c.post(f"{API}/functions/demo.leak/tasks", json={"kwargs": {"how": how}})
            submitted.append(answer.json()["id"])
    seen = [raised["text"], returned["text"]]
    with stack.admin() as c:
        for task_id in [raised["task"], returned["task"], *submitted]:
            record = wait_for(
                lambda t=task_id: (r := c.get(f"{API}/tasks/{t}/record")).status_code == 200
                and r.text,
                timeout=15,
            )  # fmt: skip
            assert "connecting with *****" in record
            assert "password in a log line: *****" in record
            seen.append(record)
            seen.append(c.get(f"{API}/tasks/{task_id}").text)
        seen.append(c.get(f"{API}/tasks", params={"function": "demo.leak"}).text)
        seen.append(c.get(f"{API}/envs").text)
        seen.append(c.get(f"{API}/envs/DB_PASSWORD").text)
        seen.append(c.get(f"{API}/audit", params={"limit": 500}).text)
        assert "env:DB_PASSWORD" in seen[-1]
    cli = subprocess.run(
        [sys.executable, "-m", "fnhub.cli", "env", "list", "--json", "-p", str(stack.dir)],
        env=stack.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0 and "DB_PASSWORD" in cli.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "fnhub.cli", "tasks", "show", raised["task"], "-p", str(stack.dir)],
        env=stack.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    seen += [cli.stdout, cli.stderr, shown.stdout, shown.stderr]
    # the worker logs the script's warning: masked there too
    worker_log = (stack.dir / "worker.log").read_text(errors="replace")
    assert "password in a log line: *****" in worker_log
    assert "loading with *****" in worker_log
    seen += [worker_log, (stack.dir / "server.log").read_text(errors="replace")]
    for text in seen:
        for clear in (SECRET, ROTATED, json.dumps(SECRET)[1:-1], "Tr0ub4dor"):
            assert clear not in text
