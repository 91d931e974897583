"""`fnhub apply` through the real CLI: every section reported, endpoints declared in fnhub.yaml
(secrets from the environment), bad ones refused by name and field, servers' pick-up, and what
it says when no server runs."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.project_cli import (
    drop_keys,
    embedded_env,
    fnhub,
    shared_redis_env,
    start_serve,
    stop,
    url,
    wait_ready,
)

from fnhub.bootstrap import open_services
from fnhub.config import Settings, load_settings
from fnhub.features import FEATURES
from fnhub.project import apply_project
from fnhub.server.models import Endpoint
from fnhub.server.presence import wait_for_pickup
from fnhub.store.db import Database

SHOP = """
import fnhub


@fnhub.api("Echo kwargs")
def echo(**kwargs):
    return kwargs


@fnhub.api("Take an order")
def order(item: str, qty: int = 1):
    return {"item": item, "qty": int(qty)}
"""

OLD = """
import fnhub


@fnhub.api("Soon gone")
def gone():
    return 1
"""

PROJECT = """
connectors:
  bus: {type: redis, settings: {url: "redis://127.0.0.1:6379/0"}}
subscriptions:
  orders-in: {connector: bus, topics: ["t-orders-in"], function: shop.order, enabled: false}
cron_jobs:
  - {id: nightly, function: shop.echo, expr: "0 3 * * *"}
endpoints:
  orders:
    function: shop.order
    mode: sync
    auth: {type: token, token: "${ORDERS_TOKEN}"}
    throttle: {minute: 600}
    kwargs: {item: $caller, qty: 1}
    timeout: 5
  echo: {function: shop.echo, mode: async, show_logs: true}
"""


def make_project(root: Path, yaml_text: str = PROJECT) -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "shop.py").write_text(SHOP)
    (root / "fnhub.yaml").write_text(yaml_text)
    return root


@pytest.fixture
def shared(tmp_path):
    """A project on the machine's Redis (unique prefix): apply works with no server running."""
    project = make_project(tmp_path / "proj")
    env = shared_redis_env(project)
    env["ORDERS_TOKEN"] = "orders-secret-1"
    yield project, env
    drop_keys(env)


def endpoint_rows(project: Path) -> dict[str, Endpoint]:
    db = Database(f"sqlite:///{project / 'fnhub.db'}")
    with db.session() as session:
        rows = {r.name: r for r in session.scalars(select(Endpoint))}
    db.dispose()
    return rows


def test_apply_reports_every_section_and_says_no_server_picked_it_up(shared):
    project, env = shared
    (project / "scripts" / "old.py").write_text(OLD)
    first = fnhub("apply", cwd=project, env=env)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "scripts: 2 published" in out
    assert re.search(r"^  shop v1 published: echo, order$", out, re.M)
    assert "connectors: 1 created (bus)" in out
    assert "subscriptions: 1 created (orders-in)" in out
    assert "cron jobs: 1 created (nightly)" in out
    assert "endpoints: 2 created (orders, echo)" in out
    assert "no running server picked it up" in out and "fnhub serve" in out

    again = fnhub("apply", cwd=project, env=env)
    assert again.returncode == 0, again.stderr
    for line in (
        "scripts: 2 unchanged",
        "connectors: 1 unchanged (bus)",
        "subscriptions: 1 unchanged (orders-in)",
        "cron jobs: 1 unchanged (nightly)",
        "endpoints: 2 unchanged (orders, echo)",
    ):
        assert line in again.stdout, again.stdout

    (project / "scripts" / "old.py").unlink()
    (project / "scripts" / "shop.py").write_text(SHOP + "\n# v2\n")
    changed = PROJECT.replace("minute: 600", "minute: 60").replace('"0 3 * * *"', '"0 4 * * *"')
    changed = changed.replace(
        "  echo: {function: shop.echo, mode: async, show_logs: true}",
        "  status: {function: shop.echo}",
    )
    (project / "fnhub.yaml").write_text(changed)
    third = fnhub("apply", cwd=project, env=env)
    assert third.returncode == 0, third.stderr
    out = third.stdout
    assert "scripts: 1 published, 1 removed" in out
    assert "shop v2 published" in out and "old removed" in out
    assert "cron jobs: 1 updated (nightly)" in out
    assert "endpoints: 1 created (status), 1 updated (orders), 1 removed (echo)" in out
    assert "connectors: 1 unchanged (bus)" in out

    rows = endpoint_rows(project)
    assert set(rows) == {"orders", "status"}
    assert all(r.provisioned for r in rows.values())
    assert rows["orders"].throttle == {"minute": 60}
    # the token came from the environment and is stored sealed, never in clear
    assert rows["orders"].auth["token"].startswith("enc:v1:")
    assert "orders-secret-1" not in json.dumps(rows["orders"].auth)


def test_what_the_file_no_longer_declares_is_removed_and_a_used_connector_is_kept(shared):
    project, env = shared
    assert fnhub("apply", cwd=project, env=env).returncode == 0
    with_api_made = open_services(_settings_of(project, env))
    try:
        from fnhub.subscriptions.area import save_subscription

        # made through the API (not provisioned): it keeps `bus` in use
        save_subscription(
            with_api_made.db,
            with_api_made.settings,
            "by-hand",
            {"connector": "bus", "topics": ["t-by-hand"], "function": "shop.echo"},
            actor="test",
        )
    finally:
        with_api_made.close()

    # connectors and subscriptions dropped, cron jobs' section left out altogether
    (project / "fnhub.yaml").write_text(
        PROJECT.split("cron_jobs:")[0].split("connectors:")[0]
        + "endpoints:"
        + PROJECT.split("endpoints:")[1]
    )
    refused = fnhub("apply", cwd=project, env=env)
    assert refused.returncode == 1
    assert "connector 'bus' is no longer declared, but subscription 'by-hand'" in refused.stderr
    # its section was refused whole; sections are applied one by one, and the output says
    # which were: the cron jobs' removal, applied before it, holds
    assert "cron jobs: 1 removed (nightly)" in refused.stderr
    assert "not applied: connectors, subscriptions" in refused.stderr
    assert _names(project, "cron_jobs") == set()
    assert _names(project, "subscriptions") == {"orders-in", "by-hand"}
    assert _names(project, "connectors") == {"bus"}

    services = open_services(_settings_of(project, env))
    try:
        from fnhub.subscriptions.area import remove_subscription

        remove_subscription(services.db, "by-hand", actor="test")
    finally:
        services.close()
    done = fnhub("apply", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    assert "connectors: 1 removed (bus)" in done.stdout
    assert "subscriptions: 1 removed (orders-in)" in done.stdout
    assert "envs:" not in done.stdout  # never declared, nothing removed: no line
    assert _names(project, "connectors") == set()
    assert _names(project, "subscriptions") == set()
    assert _names(project, "cron_jobs") == set()


def _settings_of(project: Path, env: dict[str, str]) -> Settings:
    """The settings `fnhub apply` sees with `env` (shared_redis_env's variables)."""
    return load_settings(
        project,
        redis_url=env["FNHUB_REDIS_URL"],
        key_prefix=env["FNHUB_KEY_PREFIX"],
        db_url=env["FNHUB_DB_URL"],
    )


def _names(project: Path, table: str) -> set[str]:
    from sqlalchemy import text

    db = Database(f"sqlite:///{project / 'fnhub.db'}")
    column = "id" if table == "cron_jobs" else "name"
    with db.session() as session:
        names = {r[0] for r in session.execute(text(f"SELECT {column} FROM {table}"))}
    db.dispose()
    return names


def test_a_secret_from_an_unset_variable_is_refused_naming_where(shared):
    project, env = shared
    del env["ORDERS_TOKEN"]
    result = fnhub("apply", cwd=project, env=env)
    assert result.returncode == 1
    assert "endpoints.orders.auth.token: environment variable ORDERS_TOKEN is not set" in (
        result.stderr
    )
    assert endpoint_rows(project) == {}


DIRECT_ON_MQTT = """
connectors:
  plant: {type: mqtt, settings: {host: 127.0.0.1, port: 1883, clean_start: CLEAN}}
subscriptions:
  on-plant:
    {connector: plant, topics: ["apply/#"], function: shop.echo, path: PATH, enabled: false}
"""


def test_connector_settings_a_direct_subscription_cannot_run_on_are_refused(shared):
    """Checked against the subscriptions as the file leaves them: the same file may move the
    subscription to the queued path and change the connector at once."""
    project, env = shared

    def apply(clean: str, path: str):
        text = DIRECT_ON_MQTT.replace("CLEAN", clean).replace("PATH", path)
        (project / "fnhub.yaml").write_text(text)
        return fnhub("apply", cwd=project, env=env)

    assert apply("false", "direct").returncode == 0
    refused = apply("true", "direct")
    assert refused.returncode == 1
    assert (
        "connector 'plant': subscription 'on-plant' reads this connector on path: direct, which"
        " these settings refuse (path: direct on MQTT needs protocol 5 with a persistent session"
    ) in " ".join(refused.stderr.split())
    both = apply("true", "queued")
    assert both.returncode == 0, both.stderr
    assert "connectors: 1 updated (plant)" in both.stdout


BAD_ENDPOINTS = [
    (("throttle: {minute: 600}", "thottle: {minute: 600}"), "thottle: unknown option"),
    (("mode: sync", "mode: fast"), "mode: Input should be 'sync' or 'async'"),
    (("function: shop.order", "function: shop.ordr"), "function: unknown function 'shop.ordr'"),
    (("timeout: 5", "timeout: -1"), "timeout: Input should be greater than 0"),
    (("throttle: {minute: 600}", "throttle: {minute: 600, week: 3}"), "throttle.week: unknown"),
]


def test_a_bad_endpoint_is_refused_naming_it_and_the_field(shared):
    project, env = shared
    assert fnhub("apply", cwd=project, env=env).returncode == 0
    before = {name: row.updated_at for name, row in endpoint_rows(project).items()}
    for change, message in BAD_ENDPOINTS:
        broken = PROJECT.replace(*change).replace(
            "  echo: {function: shop.echo, mode: async, show_logs: true}",
            "  echo: {function: shop.echo, mode: sync}\n  extra: {function: shop.echo}",
        )
        (project / "fnhub.yaml").write_text(broken)
        result = fnhub("apply", cwd=project, env=env)
        assert result.returncode == 1, change
        assert f"fnhub.yaml: endpoint 'orders': {message}" in result.stderr, result.stderr
        # one bad endpoint changes none of them
        after = endpoint_rows(project)
        assert {name: row.updated_at for name, row in after.items()} == before
        assert after["echo"].mode == "async"


def test_a_misspelt_option_gets_the_nearest_known_name(shared):
    project, env = shared
    (project / "fnhub.yaml").write_text(
        "endpoints:\n  orders: {function: shop.order, cache_results: 5}\n"
    )
    result = fnhub("apply", cwd=project, env=env)
    assert result.returncode == 1
    assert "cache_results: unknown option (did you mean 'cache_result'?)" in result.stderr


def test_apply_without_a_running_serve_says_how_to_start_it_and_changes_nothing(tmp_path):
    project = make_project(tmp_path / "proj", "endpoints:\n  echo: {function: shop.echo}\n")
    result = fnhub("apply", cwd=project, env=embedded_env())
    assert result.returncode == 3
    text = " ".join(result.stderr.split())
    assert "no `fnhub serve` is running for the project" in text
    assert "nothing was applied" in text and "Start it with `fnhub serve`" in text
    assert not (project / ".fnhub" / "fnhub.db").exists()


def test_endpoints_declared_in_yaml_are_served_after_apply_and_picked_up(tmp_path):
    project = make_project(tmp_path / "proj", "endpoints:\n  echo: {function: shop.echo}\n")
    env = embedded_env()
    serve = start_serve(project, env)
    try:
        wait_ready(serve, env)
        assert httpx.get(f"{url(env)}/e/echo", params={"a": "1"}).json() == {"a": "1"}
        apply_env = {**env, "ORDERS_TOKEN": "orders-secret-2"}
        (project / "fnhub.yaml").write_text(
            "endpoints:\n"
            "  echo: {function: shop.echo}\n"
            "  orders: {function: shop.order, auth: {type: token, token: '${ORDERS_TOKEN}'}}\n"
        )
        result = fnhub("apply", cwd=project, env=apply_env)
        assert result.returncode == 0, result.stderr
        assert "endpoints: 1 created (orders), 1 unchanged (echo)" in result.stdout
        picked = re.search(r"picked up by 1 server within ([\d.]+) s: (\S+)", result.stdout)
        assert picked, result.stdout
        assert float(picked.group(1)) < 5 and picked.group(2) == url(env)
        # served at once: the server acknowledged only after reloading its endpoints
        answer = httpx.get(
            f"{url(env)}/e/orders", params={"item": "tea"}, headers={"X-Token": "orders-secret-2"}
        )
        assert answer.status_code == 200 and answer.json() == {"item": "tea", "qty": 1}
        assert httpx.get(f"{url(env)}/e/orders", params={"item": "tea"}).status_code == 401

        key = fnhub("keys", "create", "t", "--role", "viewer", cwd=project, env=env)
        token = key.stdout.strip()
        listed = httpx.get(
            f"{url(env)}/api/v1/endpoints", headers={"Authorization": f"Bearer {token}"}
        ).json()["items"]
        assert {e["name"]: e["provisioned"] for e in listed} == {"echo": True, "orders": True}
        assert {e["name"]: e["auth"].get("token") for e in listed}["orders"] == "********"

        removed = fnhub("endpoints", "remove", "orders", cwd=project, env=env)
        assert removed.returncode == 0
        assert "declared in fnhub.yaml" in removed.stderr
        assert httpx.get(f"{url(env)}/e/orders").status_code == 404 or _gone_soon(env)
        back = fnhub("apply", cwd=project, env=apply_env)
        assert "endpoints: 1 created (orders), 1 unchanged (echo)" in back.stdout
        answer = httpx.get(
            f"{url(env)}/e/orders", params={"item": "jam"}, headers={"X-Token": "orders-secret-2"}
        )
        assert answer.json() == {"item": "jam", "qty": 1}
    finally:
        stop(serve)
    assert serve.returncode == 0


@contextlib.contextmanager
def _busy(env: dict[str, str], path: str) -> Iterator[None]:
    """Calls `path` all along, so the server's endpoints were checked well under a second ago
    when apply returns: only a reload on the server's acknowledgement serves the new endpoint
    at once (its periodic check would come up to a second later)."""
    done = threading.Event()

    def call() -> None:
        with httpx.Client(base_url=url(env)) as http:
            while not done.is_set():
                http.get(path)
                time.sleep(0.05)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)


def test_a_server_acknowledges_an_apply_once_it_serves_it(tmp_path):
    """The pick-up `fnhub apply` reports means served: a new endpoint answers right after."""
    project = make_project(tmp_path / "proj", "endpoints:\n  echo: {function: shop.echo}\n")
    env = embedded_env()
    serve = start_serve(project, env)
    try:
        wait_ready(serve, env)
        settings = load_settings(project)
        services = open_services(settings)
        try:
            with _busy(env, "/e/echo"):
                for n in range(3):
                    (project / "fnhub.yaml").write_text(
                        f"endpoints:\n  echo: {{function: shop.echo}}\n"
                        f"  fresh{n}: {{function: shop.echo}}\n"
                    )
                    report = apply_project(settings, services.scripts, FEATURES)
                    pickup = wait_for_pickup(services.redis, services.keys, report.revision, 5)
                    assert len(pickup.picked) == 1 and not pickup.missing
                    answer = httpx.get(f"{url(env)}/e/fresh{n}", params={"n": str(n)})
                    assert answer.status_code == 200, answer.text
                    assert httpx.get(f"{url(env)}/e/fresh{n - 1}").status_code == 404
        finally:
            services.close()
    finally:
        stop(serve)


def _gone_soon(env: dict[str, str]) -> bool:
    """The CLI tells servers through Redis; they reload within a second."""
    from tests.conftest import wait_for

    return wait_for(lambda: httpx.get(f"{url(env)}/e/orders").status_code == 404, timeout=5)
