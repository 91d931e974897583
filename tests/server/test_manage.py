"""Management API: scripts (publish, versions, rollback), functions, connectors' secrets,
schema migrations on every database, and a schemathesis run against the served OpenAPI."""

from __future__ import annotations

import os
import uuid

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fnhub.store.db import Database

from .conftest import Stack

# no 5xx, and every answer (status, content type, headers, body) is what the schema says;
# semantic refusals (422 for an unknown connector type) are not held against schema-valid data
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

CODE_V1 = "import fnhub\n\n@fnhub.api()\ndef hi():\n    return 'v1'\n"
CODE_V2 = "import fnhub\n\n@fnhub.api()\ndef hi():\n    return 'v2'\n"


def test_scripts_publish_versions_rollback(stack: Stack) -> None:
    with stack.admin() as c:
        assert c.put("/api/v1/scripts/greet", json={"code": CODE_V1}).json()["version"] == 1
        assert c.post("/api/v1/functions/greet.hi/call", json={}).json()["result"] == "v1"
        assert c.put("/api/v1/scripts/greet", json={"code": CODE_V2}).json()["version"] == 2
        assert c.post("/api/v1/functions/greet.hi/call", json={}).json()["result"] == "v2"
        broken = c.put("/api/v1/scripts/greet", json={"code": "def (:"})
        assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_script"
        versions = c.get("/api/v1/scripts/greet/versions").json()
        assert [(v["version"], v["active"]) for v in versions] == [(2, True), (1, False)]
        assert c.get("/api/v1/scripts/greet/versions/1").json()["code"] == CODE_V1
        assert c.post("/api/v1/scripts/greet/rollback", json={"version": 1}).json()["version"] == 1
        assert c.post("/api/v1/functions/greet.hi/call", json={}).json()["result"] == "v1"
        assert c.post("/api/v1/scripts/greet/rollback", json={"version": 9}).status_code == 404
        functions = {f["ref"]: f for f in c.get("/api/v1/functions").json()}
        assert functions["demo.add"]["params"][0] == {
            "name": "a",
            "kind": "positional_or_keyword",
            "required": True,
            "default": None,
            "annotation": "float",
        }
        assert c.delete("/api/v1/scripts/greet").json() == {"deleted": True}
        assert c.post("/api/v1/functions/greet.hi/call", json={}).status_code == 404


def test_a_refused_publish_says_where_in_the_code(stack: Stack) -> None:
    """The console marks the error in its editor: the 422 carries line and column."""
    syntax = "import fnhub\n\n@fnhub.api()\ndef hi(:\n    return 1\n"
    loading = "import fnhub\n\nx = 1\nundefined_name\n"
    one = "@fnhub.api()\ndef f():\n    pass\n"
    duplicate = f"import fnhub\n\n{one}\n{one}"
    with stack.admin() as c:
        cases = [(syntax, 4, 8), (loading, 4, None), (duplicate, 8, 1)]
        for code, line, column in cases:
            error = c.put("/api/v1/scripts/where", json={"code": code}).json()["error"]
            assert error["code"] == "invalid_script", error
            assert (error["script"], error["line"], error.get("column")) == ("where", line, column)
        assert c.get("/api/v1/scripts/where/versions").status_code == 404


def test_connector_secrets_are_encrypted_and_never_returned(stack: Stack) -> None:
    spec = {"type": "redis", "settings": {"url": "redis://127.0.0.1:6379/0", "password": "hunter2"}}
    with stack.admin() as c:
        r = c.put("/api/v1/connectors/cache-redis", json=spec)
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:  # the connectors area validates settings its own way
            spec = {"type": "redis", "settings": {"host": "127.0.0.1", "password": "hunter2"}}
            r = c.put("/api/v1/connectors/cache-redis", json=spec)
        assert r.status_code == 200, r.text
        assert r.json()["settings"]["password"] == "********"
        assert r.json()["provisioned"] is False  # made through the API: apply leaves it alone
        assert "hunter2" not in c.get("/api/v1/connectors").text
    engine = sa.create_engine(stack.env["FNHUB_DB_URL"])
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT settings FROM connectors")).scalar_one()
    engine.dispose()
    assert "hunter2" not in stored and "enc:v1:" in stored


def test_connector_types_describe_their_settings_for_a_form(stack: Stack) -> None:
    """The console builds its connector and subscription forms from these schemas: every
    type the server validates, its secret fields marked, a subscription's options per type."""
    with stack.admin() as c:
        types = {t["type"]: t for t in c.get("/api/v1/connector-types").json()}
    assert set(types) == {"kafka", "mqtt", "nats", "rabbitmq", "redis"}  # not the in-memory one
    mqtt = types["mqtt"]["settings"]
    assert mqtt["required"] == ["host"] and mqtt["properties"]["port"]["default"] == 1883
    assert mqtt["properties"]["password"]["writeOnly"] is True
    assert "writeOnly" not in mqtt["properties"]["username"]
    assert types["kafka"]["settings"]["properties"]["sasl_password"]["writeOnly"] is True
    assert types["mqtt"]["source_options"]["properties"]["qos"]["default"] == 1
    redis_kind = types["redis"]["source_options"]["properties"]["kind"]
    assert redis_kind["enum"] == ["pubsub", "stream"]
    nats = types["nats"]["settings"]["properties"]
    assert nats["password"]["writeOnly"] is True and nats["token"]["writeOnly"] is True
    assert types["nats"]["source_options"]["properties"]["ack_wait"]["default"] == 30.0
    # Kafka's assignment defaults per mode (manual in single, lease in multiple): the form
    # must not offer the model's fallback as if it were the default
    assignment = types["kafka"]["source_options"]["properties"]["assignment"]
    assert assignment["default"] is None and "lease" in assignment["description"]
    rabbitmq = types["rabbitmq"]["settings"]["properties"]
    assert rabbitmq["password"]["writeOnly"] is True and "writeOnly" not in rabbitmq["username"]
    assert types["rabbitmq"]["settings"]["properties"]["exchange"]["default"] == "fnhub"


@pytest.mark.parametrize(
    "server_url",
    ["postgresql://postgres@127.0.0.1:5432", "mysql://root@127.0.0.1:3306"],
)
def test_migrations_on_postgres_and_mariadb(server_url: str) -> None:
    name = f"fnhub_t{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        Database(
            server_url + "/" + ("postgres" if "postgres" in server_url else "mysql")
        ).engine.url,
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        db = Database(f"{server_url}/{name}")
        db.migrate()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"api_keys", "endpoints", "connectors", "task_records"} <= tables
        db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


def test_migrations_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    assert {"api_keys", "endpoints", "connectors"} <= set(sa.inspect(db.engine).get_table_names())
    db.dispose()


def test_openapi_conforms_under_schemathesis(stack: Stack) -> None:
    """Generated requests against the server's own operations: no 5xx, every answer fits the
    schema. Calls of real functions are left out (a function may legitimately fail with 500);
    the areas' routes are tested by their owners."""
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
    own = schema.exclude(path_regex=r"^/api/v1/(websub|cron|subscriptions)|^/websub").exclude(
        path_regex=r"/call$|/tasks$|/rollback$|^/api/v1/scripts/\{name\}$|/test$|/events$"
    )
    headers = {"Authorization": f"Bearer {stack.token}"}
    failures = []
    budget = int(os.environ.get("FNHUB_TEST_SCHEMATHESIS_EXAMPLES", "15"))
    for result in own.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()

        @settings(
            max_examples=budget,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=strategy)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(base_url=stack.url, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect all operations' failures, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
