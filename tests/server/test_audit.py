"""The audit log through the real server, the CLI and `fnhub apply`: who changed what, before →
after, secrets masked, newest first with keyset pages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import closing
from typing import Any

import sqlalchemy as sa

from .conftest import Stack

API = "/api/v1"
PASSWORD = "audit password 1"
SECRETS = ["hunter2-secret", "s3cret-number-2", "apply-secret-3", "endpoint-token-4", PASSWORD]
CODE = "import fnhub\n\n@fnhub.api()\ndef hi():\n    return {}\n"


def entries(stack: Stack, **filters: Any) -> list[dict[str, Any]]:
    """Every matching entry, newest first, read page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    with stack.admin() as c:
        while True:
            params = {**filters, "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"{API}/audit", params=params)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items


def fnhub_cli(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", "from fnhub.cli import main; main()", *args, "-p", str(stack.dir)],
        env=stack.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def audit_table_text(stack: Stack) -> str:
    engine = sa.create_engine(stack.env["FNHUB_DB_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_log")).all()
    engine.dispose()
    return "\n".join(repr(tuple(r)) for r in rows)


def signed_in(stack: Stack, username: str, role: str) -> tuple[Any, dict[str, str]]:
    with stack.admin() as c:
        body = {"username": username, "password": PASSWORD, "role": role}
        assert c.post(f"{API}/users", json=body).status_code == 201
    client = stack.client(headers={"X-Forwarded-For": "10.9.9.9"})
    r = client.post(f"{API}/session", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client, {"X-CSRF-Token": r.json()["csrf_token"]}


def test_api_changes_of_a_user_are_logged_before_to_after(stack: Stack) -> None:
    client, csrf = signed_in(stack, "ada", "developer")
    with closing(client):
        assert client.put(f"{API}/scripts/aud", json={"code": CODE}, headers=csrf).is_success
        v2 = {"code": CODE + "# v2\n"}
        assert client.put(f"{API}/scripts/aud", json=v2, headers=csrf).is_success
        assert client.put(f"{API}/scripts/aud", json=v2, headers=csrf).is_success  # unchanged
        back = client.post(f"{API}/scripts/aud/rollback", json={"version": 1}, headers=csrf)
        assert back.is_success
        assert client.delete(f"{API}/scripts/aud", headers=csrf).is_success
        job = {
            "id": "aud-job",
            "function": "demo.add",
            "expr": "0 0 1 1 *",
            "kwargs": {"a": 1, "b": 2},
        }
        assert client.post(f"{API}/cron-jobs", json=job, headers=csrf).status_code == 201
        changed = {**job, "expr": "0 0 2 1 *"}
        assert client.put(f"{API}/cron-jobs/aud-job", json=changed, headers=csrf).is_success
        for action in ("pause", "resume"):
            assert client.post(f"{API}/cron-jobs/aud-job/{action}", headers=csrf).is_success
        assert client.post(f"{API}/cron-jobs/aud-job/run", headers=csrf).status_code == 202
        assert client.delete(f"{API}/cron-jobs/aud-job", headers=csrf).status_code == 204
        stack.redis.set(f"{stack.prefix}:cache:demo:k1", "1")
        assert client.delete(f"{API}/cache/demo/k1", headers=csrf).is_success
        endpoint = {"function": "demo.add", "auth": {"type": "token", "token": SECRETS[3]}}
        assert client.put(f"{API}/endpoints/aud-e", json=endpoint, headers=csrf).is_success
        assert client.delete(f"{API}/endpoints/aud-e", headers=csrf).is_success

    mine = entries(stack, actor="user:ada")
    assert [(e["action"], e["resource"]) for e in reversed(mine)] == [
        ("user.sign_in", "user:ada"),
        ("script.publish", "script:aud"),
        ("script.publish", "script:aud"),
        ("script.rollback", "script:aud"),
        ("script.delete", "script:aud"),
        ("cron_job.create", "cron_job:aud-job"),
        ("cron_job.update", "cron_job:aud-job"),
        ("cron_job.pause", "cron_job:aud-job"),
        ("cron_job.resume", "cron_job:aud-job"),
        ("cron_job.run", "cron_job:aud-job"),
        ("cron_job.delete", "cron_job:aud-job"),
        ("cache.delete", "cache:demo/k1"),
        ("endpoint.create", "endpoint:aud-e"),
        ("endpoint.delete", "endpoint:aud-e"),
    ]
    by_step = list(reversed(mine))
    first, second, rollback = by_step[1], by_step[2], by_step[3]
    assert first["before"] is None and first["after"]["version"] == 1
    assert first["after"]["functions"] == ["hi"]
    assert second["before"]["version"] == 1 and second["after"]["version"] == 2
    assert rollback["before"]["version"] == 2 and rollback["after"]["version"] == 1
    update = by_step[6]
    assert (update["before"]["expr"], update["after"]["expr"]) == ("0 0 1 1 *", "0 0 2 1 *")
    assert by_step[9]["after"]["task_id"]
    assert by_step[12]["after"]["auth"]["token"] == "*****"
    assert all(e["at"] <= time.time() for e in mine)


def test_connector_secrets_are_masked_and_their_changes_told(stack: Stack) -> None:
    spec = {
        "type": "mqtt",
        "description": "one",
        "settings": {"host": "127.0.0.1", "port": 1883, "username": "u", "password": SECRETS[0]},
    }
    with stack.admin() as c:
        key_id = c.get(f"{API}/me").json()["key"]["id"]
        assert c.put(f"{API}/connectors/aud-c", json=spec).is_success
        same = {**spec, "description": "two", "settings": {**spec["settings"]}}
        same["settings"]["password"] = "********"  # sent back masked: the stored one stays
        assert c.put(f"{API}/connectors/aud-c", json=same).is_success
        new = {**same, "settings": {**same["settings"], "password": SECRETS[1]}}
        assert c.put(f"{API}/connectors/aud-c", json=new).is_success
        assert c.delete(f"{API}/connectors/aud-c").is_success
    log = list(reversed(entries(stack, resource="connector:aud-c")))
    assert [e["action"] for e in log] == [
        "connector.create",
        "connector.update",
        "connector.update",
        "connector.delete",
    ]
    assert {e["actor"] for e in log} == {f"key:{key_id}"}
    created, kept, changed, deleted = log
    assert created["after"]["settings"]["password"] == "*****"
    assert created["after"]["settings"]["host"] == "127.0.0.1"
    assert kept["before"]["description"] == "one" and kept["after"]["description"] == "two"
    assert kept["after"]["settings"]["password"] == "*****"
    assert changed["after"]["settings"]["password"] == "***** (changed)"
    assert deleted["before"]["settings"]["password"] == "*****" and deleted["after"] is None
    text = audit_table_text(stack)
    assert "enc:v1:" not in text
    for secret in SECRETS:
        assert secret not in text


def test_keys_and_users_through_the_api_never_log_tokens_or_passwords(stack: Stack) -> None:
    with stack.admin() as c:
        created = c.post(f"{API}/keys", json={"name": "ci", "role": "developer"}).json()
        body = {"username": "bea", "password": SECRETS[2], "role": "viewer"}
        assert c.post(f"{API}/users", json=body).status_code == 201
        patch = {"password": SECRETS[1], "role": "developer"}
        assert c.patch(f"{API}/users/bea", json=patch).is_success
        assert c.delete(f"{API}/users/bea").is_success
        assert c.delete(f"{API}/keys/{created['id']}").is_success
    key_log = list(reversed(entries(stack, resource=f"key:{created['id']}")))
    assert [e["action"] for e in key_log] == ["key.create", "key.revoke"]
    assert key_log[0]["after"]["role"] == "developer" and "token" not in key_log[0]["after"]
    user_log = list(reversed(entries(stack, resource="user:bea")))
    assert [e["action"] for e in user_log] == ["user.create", "user.update", "user.remove"]
    update = user_log[1]
    assert (update["before"]["role"], update["after"]["role"]) == ("viewer", "developer")
    assert update["after"]["password"] == "***** (changed)"
    text = audit_table_text(stack)
    assert created["token"] not in text and created["token"].split("_")[-1] not in text
    assert "argon2" not in text  # no password hash either
    for secret in SECRETS:
        assert secret not in text


def test_cli_changes_are_logged_as_cli(stack: Stack) -> None:
    fnhub_cli(
        stack,
        "users",
        "create",
        "cleo",
        "--role",
        "developer",
        "--password-stdin",
        stdin=SECRETS[2] + "\n",
    )
    listed = json.loads(fnhub_cli(stack, "users", "list", "--json").stdout)
    assert {"username": "cleo", "role": "developer", "disabled": False}.items() <= next(
        u for u in listed if u["username"] == "cleo"
    ).items()
    fnhub_cli(stack, "users", "passwd", "cleo", "--password-stdin", stdin=SECRETS[1] + "\n")
    fnhub_cli(stack, "users", "set", "cleo", "--role", "viewer", "--disabled")
    fnhub_cli(stack, "users", "remove", "cleo")
    token = fnhub_cli(stack, "keys", "create", "cli-key", "--role", "viewer").stdout.strip()
    keys = json.loads(fnhub_cli(stack, "keys", "list", "--json").stdout)
    key = next(k for k in keys if k["name"] == "cli-key")
    assert key["role"] == "viewer"
    with stack.client(headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(f"{API}/me").json()["role"] == "viewer"
    fnhub_cli(stack, "keys", "revoke", key["id"])
    fnhub_cli(
        stack, "cron", "add", "cli-job", "demo.add", "0 0 1 1 *", "--kwargs", '{"a": 1, "b": 2}'
    )
    fnhub_cli(stack, "cron", "pause", "cli-job", "--seconds", "60")
    fnhub_cli(stack, "cron", "resume", "cli-job")
    fnhub_cli(stack, "cron", "run", "cli-job")
    fnhub_cli(stack, "cron", "remove", "cli-job")

    log = [(e["action"], e["resource"]) for e in reversed(entries(stack, actor="cli"))]
    assert log == [
        ("user.create", "user:cleo"),
        ("user.update", "user:cleo"),
        ("user.update", "user:cleo"),
        ("user.remove", "user:cleo"),
        ("key.create", f"key:{key['id']}"),
        ("key.revoke", f"key:{key['id']}"),
        ("cron_job.create", "cron_job:cli-job"),
        ("cron_job.pause", "cron_job:cli-job"),
        ("cron_job.resume", "cron_job:cli-job"),
        ("cron_job.run", "cron_job:cli-job"),
        ("cron_job.delete", "cron_job:cli-job"),
    ]
    text = audit_table_text(stack)
    assert token not in text
    for secret in SECRETS:
        assert secret not in text


PROJECT = """
connectors:
  plant: {type: mqtt, settings: {host: 127.0.0.1, port: 1883, password: %s}}
subscriptions:
  plant-in: {connector: plant, topics: [audit/in], function: applied.hi, enabled: false}
cron_jobs:
  - {id: nightly, function: applied.hi, expr: "%s"}
"""


def test_apply_changes_are_logged_as_project_and_a_no_op_apply_logs_nothing(
    stack: Stack,
) -> None:
    (stack.dir / "scripts" / "applied.py").write_text(CODE)
    project_file = stack.dir / "fnhub.yaml"
    try:
        project_file.write_text(PROJECT % (SECRETS[2], "0 3 * * *"))
        before = {e["id"] for e in entries(stack, actor="project")}
        fnhub_cli(stack, "apply")
        applied = [e for e in reversed(entries(stack, actor="project")) if e["id"] not in before]
        assert [(e["action"], e["resource"]) for e in applied] == [
            ("script.publish", "script:applied"),
            ("connector.create", "connector:plant"),
            ("subscription.create", "subscription:plant-in"),
            ("cron_job.create", "cron_job:nightly"),
        ]
        assert applied[1]["after"]["settings"]["password"] == "*****"
        assert applied[2]["after"]["provisioned"] is True
        assert applied[3]["after"]["provisioned"] is True

        seen = {e["id"] for e in entries(stack)}
        fnhub_cli(stack, "apply")  # nothing changed: nothing logged
        assert {e["id"] for e in entries(stack)} == seen

        project_file.write_text(PROJECT % (SECRETS[2], "0 4 * * *"))
        fnhub_cli(stack, "apply")
        [update] = [e for e in entries(stack) if e["id"] not in seen]
        assert (update["actor"], update["action"]) == ("project", "cron_job.update")
        assert (update["before"]["expr"], update["after"]["expr"]) == ("0 3 * * *", "0 4 * * *")
        text = audit_table_text(stack)
        for secret in SECRETS:
            assert secret not in text
    finally:
        project_file.unlink(missing_ok=True)


def test_subscriptions_and_websub_admin_changes_are_logged(stack: Stack) -> None:
    connector = {"type": "redis", "settings": {"host": "127.0.0.1", "port": 6379}}
    sub = {"connector": "aud-redis", "topics": [f"{stack.prefix}-in"], "function": "demo.echo"}
    topic = "https://example.com/audit-feed"
    with stack.admin() as c:
        assert c.put(f"{API}/connectors/aud-redis", json=connector).is_success
        assert c.put(f"{API}/subscriptions/aud-sub", json=sub).is_success, "put subscription"
        assert c.put(f"{API}/subscriptions/aud-sub", json={**sub, "window": 7}).is_success
        assert c.delete(f"{API}/subscriptions/aud-sub").is_success
        assert c.delete(f"{API}/connectors/aud-redis").is_success
        registered = c.post(f"{API}/websub/topics", json={"url": topic})
        assert registered.status_code == 201, registered.text
        topic_hash = registered.json()["hash"]
        published = c.post(f"{API}/websub/publish", json={"topic": topic, "content": {"n": 1}})
        assert published.status_code == 202, published.text
        assert c.delete(f"{API}/websub/topics/{topic_hash}").status_code == 204
    subs = list(reversed(entries(stack, resource="subscription:aud-sub")))
    assert [e["action"] for e in subs] == [
        "subscription.create",
        "subscription.update",
        "subscription.delete",
    ]
    assert (subs[1]["before"]["window"], subs[1]["after"]["window"]) == (100, 7)
    hub = list(reversed(entries(stack, resource=f"websub_topic:{topic_hash}")))
    assert [e["action"] for e in hub] == [
        "websub_topic.register",
        "websub_topic.publish",
        "websub_topic.deregister",
    ]
    assert hub[0]["after"] == {"url": topic, "registered": True}


def test_audit_pages_and_filters(stack: Stack) -> None:
    with stack.admin() as c:
        start = time.time()
        for i in range(5):
            code = CODE + f"# {i}\n"
            assert c.put(f"{API}/scripts/paged", json={"code": code}).is_success
        end = time.time()
        everything = entries(stack)
        ids = [e["id"] for e in everything]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        paged = entries(stack, resource="script:paged")
        assert [e["after"]["version"] for e in paged] == [5, 4, 3, 2, 1]
        window = c.get(f"{API}/audit", params={"since": start, "until": end + 0.001}).json()
        assert [e["resource"] for e in window["items"]] == ["script:paged"] * 5
        assert window["next_cursor"] is None
        none = c.get(f"{API}/audit", params={"action": "script.publish", "until": start - 3600})
        assert none.json() == {"items": [], "next_cursor": None}
        assert c.get(f"{API}/audit", params={"limit": 0}).status_code == 422
        assert c.get(f"{API}/audit", params={"cursor": "abc"}).status_code == 422
