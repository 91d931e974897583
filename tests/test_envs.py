"""Env variables: the typed values, sealed passwords, audit entries without values, the
`envs:` section of fnhub.yaml (with `${NAME}`) and `fnhub env` through the real CLI, and
`fnhub.env` in a real worker (each type, the cache following changes, masking)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import pytest
from sqlalchemy import select
from tests.conftest import call_ok, wait_for
from tests.project_cli import drop_keys, fnhub, shared_redis_env
from tests.test_apply import make_project

from fnhub import audit
from fnhub.envs.models import EnvVar
from fnhub.envs.repo import delete_env, env_out, save_env, spec_of, sync_provisioned
from fnhub.envs.values import InvalidEnv, check_name, check_type, parse
from fnhub.revisions import bump
from fnhub.secret_box import SecretBox
from fnhub.store.db import Database

SECRET = "hunter2-Sëcret'\"pw"


def test_each_type_reads_its_values():
    assert parse(" text ", "string") == " text "
    assert parse("p@ss", "password") == "p@ss"
    assert parse(" -42 ", "integer") == -42 and parse("+7", "integer") == 7
    assert parse("1.5", "float") == 1.5 and parse("3", "float") == 3.0
    assert parse("1e3", "float") == 1000.0
    for text in ("true", "Yes", "ON", "1"):
        assert parse(text, "boolean") is True
    for text in ("false", "no", "Off", "0"):
        assert parse(text, "boolean") is False
    assert parse('{"a": [1, 2.5, null]}', "json") == {"a": [1, 2.5, None]}
    assert parse("42", "json") == 42
    assert parse("a, b ,c", "list") == ["a", "b", "c"]
    assert parse("", "list") == [] and parse("solo", "list") == ["solo"]
    assert check_type("commaArray") == "list"  # DataFlux Func's name


@pytest.mark.parametrize(
    ("text", "type_", "reason"),
    [
        ("1.5", "integer", "'1.5' is not an integer"),
        ("ten", "integer", "'ten' is not an integer"),
        ("", "integer", "'' is not an integer"),
        ("1_000", "integer", "is not an integer"),
        ("abc", "float", "'abc' is not a number"),
        ("nan", "float", "'nan' is not a finite number"),
        ("inf", "float", "is not a finite number"),
        ("maybe", "boolean", "'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)"),
        ("{'a': 1}", "json", "not valid JSON: "),
        ('{"a": 1', "json", "not valid JSON: "),
        ("nul\x00", "string", "NUL character"),
    ],
)
def test_bad_values_are_refused_with_the_reason(text, type_, reason):
    with pytest.raises(InvalidEnv, match=None) as raised:
        parse(text, type_)
    assert reason in str(raised.value)


def test_unknown_type_and_bad_names_are_refused():
    with pytest.raises(InvalidEnv, match=r"unknown env type 'secret' \(known: string, password"):
        check_type("secret")
    with pytest.raises(InvalidEnv, match="use 1-128 letters"):
        check_name("has space")
    with pytest.raises(InvalidEnv, match="use 1-128 letters"):
        check_name("")


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'envs.db'}")
    database.migrate()
    yield database
    database.dispose()


def test_passwords_are_sealed_and_audit_entries_hold_no_values(db):
    box = SecretBox("test key")
    with db.session() as session, session.begin():
        _row, change = save_env(session, box, "DB_PW", spec_of("password", SECRET), actor="cli")
        assert change == "created"
        save_env(session, box, "PORT", spec_of("integer", "5432"), actor="cli")
    with db.session() as session:
        row = session.get(EnvVar, "DB_PW")
        assert row is not None and row.value.startswith("enc:v1:") and SECRET not in row.value
        assert box.decrypt(row.value) == SECRET
        assert env_out(row)["value"] == "*****"
    with db.session() as session, session.begin():
        # the mask keeps the stored password; the same value again changes nothing
        _row, change = save_env(session, box, "DB_PW", spec_of("password", "*****"), actor="cli")
        assert change == "unchanged"
        _row, change = save_env(session, box, "DB_PW", spec_of("password", SECRET), actor="cli")
        assert change == "unchanged"
        _row, change = save_env(session, box, "DB_PW", spec_of("password", "new"), actor="cli")
        assert change == "updated"
        _row, change = save_env(session, box, "PORT", spec_of("integer", "6543"), actor="cli")
        assert change == "updated"
        assert delete_env(session, "PORT", actor="cli") is True
        assert delete_env(session, "PORT", actor="cli") is False
    with (
        pytest.raises(InvalidEnv, match="keeps a stored password; there is none"),
        db.session() as session,
        session.begin(),
    ):
        save_env(session, box, "OTHER", spec_of("password", "*****"), actor="cli")
    with db.session() as session:
        entries = [audit.entry_json(e) for e in session.scalars(select(audit.AuditEntry))]
    text = json.dumps(entries)
    assert SECRET not in text and "5432" not in text and "6543" not in text and "new" not in text
    shown = [(e["action"], e["resource"], e["before"], e["after"]) for e in entries]
    assert shown == [
        ("env.create", "env:DB_PW", None,
         {"type": "password", "description": "", "value": "*****"}),
        ("env.create", "env:PORT", None,
         {"type": "integer", "description": "", "value": "*****"}),
        ("env.update", "env:DB_PW", {"type": "password", "description": "", "value": "*****"},
         {"type": "password", "description": "", "value": "***** (changed)"}),
        ("env.update", "env:PORT", {"type": "integer", "description": "", "value": "*****"},
         {"type": "integer", "description": "", "value": "***** (changed)"}),
        ("env.delete", "env:PORT", {"type": "integer", "description": "", "value": "*****"},
         None),
    ]  # fmt: skip


def test_the_last_change_says_who_made_it_and_a_no_op_keeps_it(db):
    box = SecretBox("k")
    with db.session() as session, session.begin():
        row, _ = save_env(session, box, "REGION", spec_of("string", "eu"), actor="user:ann")
        assert env_out(row)["updated_by"] == "user:ann"
        row, change = save_env(session, box, "REGION", spec_of("string", "eu"), actor="cli")
        assert change == "unchanged" and env_out(row)["updated_by"] == "user:ann"
        row, _ = save_env(session, box, "REGION", spec_of("string", "us"), actor="key:k1")
    with db.session() as session:
        row = session.get(EnvVar, "REGION")
        assert row is not None and env_out(row)["updated_by"] == "key:k1"


def test_provisioned_envs_become_exactly_the_declared_ones(db):
    box = SecretBox("k")
    with db.session() as session, session.begin():
        save_env(session, box, "MANUAL", spec_of("string", "by hand"), actor="cli")
        changes = sync_provisioned(
            session, box, {"A": spec_of("string", "1"), "B": spec_of("integer", 2)}, actor="p"
        )
    assert changes == {"created": ["A", "B"], "updated": [], "removed": [], "unchanged": []}
    with db.session() as session, session.begin():
        changes = sync_provisioned(session, box, {"A": spec_of("string", "1")}, actor="p")
    assert changes == {"created": [], "updated": [], "removed": ["B"], "unchanged": ["A"]}
    with db.session() as session:
        assert sorted(session.scalars(select(EnvVar.name))) == ["A", "MANUAL"]


PROJECT_ENVS = """
envs:
  REGION: eu-west
  BATCH: {type: integer, value: 500, description: rows per batch}
  RATIO: {type: float, value: 0.25}
  DRY_RUN: {type: boolean, value: yes}
  LIMITS: {type: json, value: {max: 3, names: [a, b]}}
  HOSTS: {type: list, value: "h1, h2,h3"}
  DB_PASSWORD: {type: password, value: "${TEST_DB_PASSWORD}"}
"""


def test_fnhub_yaml_envs_and_the_env_commands(tmp_path):
    project = make_project(tmp_path / "proj", PROJECT_ENVS)
    env = {**shared_redis_env(project), "TEST_DB_PASSWORD": SECRET}
    try:
        applied = fnhub("apply", cwd=project, env=env)
        assert applied.returncode == 0, applied.stderr
        assert "envs" in applied.stdout and SECRET not in applied.stdout + applied.stderr
        listed = fnhub("env", "list", "--json", cwd=project, env=env)
        assert listed.returncode == 0, listed.stderr
        rows = {r["name"]: r for r in json.loads(listed.stdout)}
        assert {n: (r["type"], r["value"]) for n, r in rows.items()} == {
            "BATCH": ("integer", "500"),
            "DB_PASSWORD": ("password", "*****"),
            "DRY_RUN": ("boolean", "true"),
            "HOSTS": ("list", "h1, h2,h3"),
            "LIMITS": ("json", '{"max":3,"names":["a","b"]}'),
            "RATIO": ("float", "0.25"),
            "REGION": ("string", "eu-west"),
        }
        assert rows["BATCH"]["description"] == "rows per batch"
        assert all(r["provisioned"] for r in rows.values())
        table = fnhub("env", "list", cwd=project, env=env)
        assert "DB_PASSWORD" in table.stdout and "*****" in table.stdout
        got = fnhub("env", "get", "DB_PASSWORD", cwd=project, env=env)
        assert got.returncode == 0 and got.stdout == "*****\n"
        assert fnhub("env", "get", "BATCH", cwd=project, env=env).stdout == "500\n"
        missing = fnhub("env", "get", "NOPE", cwd=project, env=env)
        assert missing.returncode == 1 and "no env variable 'NOPE'" in missing.stderr

        made = fnhub("env", "set", "TIMEOUT", "30", "--type", "integer", cwd=project, env=env)
        assert made.returncode == 0 and "env TIMEOUT (integer) created" in made.stdout
        outputs = [applied, listed, table, got, made]
        secret = subprocess.run(
            [sys.executable, "-m", "fnhub.cli", "env", "set", "API_KEY", "--type", "password",
             "--stdin", "--json"],
            cwd=project, env=env, input=SECRET + "\n", capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert secret.returncode == 0, secret.stderr
        assert json.loads(secret.stdout)["value"] == "*****"
        outputs.append(secret)
        for args, reason in [
            (("N", "abc", "--type", "integer"), "'abc' is not an integer"),
            (("N", "x", "--type", "secret"), "unknown env type 'secret'"),
            (("N", "{bad", "--type", "json"), "not valid JSON"),
            (("N", "perhaps", "--type", "boolean"), "'perhaps' is not a boolean"),
            (("bad name", "x"), "use 1-128 letters"),
            (("N",), "give the value as an argument or with --stdin"),
        ]:
            refused = fnhub("env", "set", *args, cwd=project, env=env)
            assert refused.returncode == 2 and reason in refused.stderr, (args, refused.stderr)
        declared = fnhub("env", "set", "REGION", "us-east", cwd=project, env=env)
        assert declared.returncode == 0 and "declared in fnhub.yaml" in declared.stderr
        deleted = fnhub("env", "delete", "TIMEOUT", "--json", cwd=project, env=env)
        assert deleted.returncode == 0 and json.loads(deleted.stdout) == {"deleted": True}
        again = fnhub("env", "delete", "TIMEOUT", cwd=project, env=env)
        assert again.returncode == 1 and "no env variable 'TIMEOUT'" in again.stderr
        outputs.append(fnhub("env", "list", "--json", cwd=project, env=env))
        for done in outputs:
            assert SECRET not in done.stdout + done.stderr

        db = Database(env["FNHUB_DB_URL"])
        with db.session() as session:
            stored = {r.name: r.value for r in session.scalars(select(EnvVar))}
        db.dispose()
        assert "NOPE" not in stored and "N" not in stored
        assert stored["API_KEY"].startswith("enc:v1:") and stored["REGION"] == "us-east"
        assert SECRET not in json.dumps(stored)

        # the next apply puts REGION back; a variable the file names must be set
        assert fnhub("apply", cwd=project, env=env).returncode == 0
        assert fnhub("env", "get", "REGION", cwd=project, env=env).stdout == "eu-west\n"
        unset = {k: v for k, v in env.items() if k != "TEST_DB_PASSWORD"}
        failed = fnhub("apply", cwd=project, env=unset)
        assert failed.returncode != 0
        assert "environment variable TEST_DB_PASSWORD is not set" in failed.stderr
        (project / "fnhub.yaml").write_text("envs:\n  BATCH: {type: integer, value: many}\n")
        bad = fnhub("apply", cwd=project, env=env)
        assert bad.returncode != 0 and "env 'BATCH': 'many' is not an integer" in bad.stderr
        (project / "fnhub.yaml").write_text("envs:\n  BATCH: {type: number, value: 1}\n")
        bad = fnhub("apply", cwd=project, env=env)
        assert bad.returncode != 0 and "unknown env type 'number'" in bad.stderr
    finally:
        drop_keys(env)


ENV_SCRIPT = """
import fnhub

NAMES = ["S", "P", "I", "F", "B", "J", "L"]


@fnhub.api("Every env variable, typed")
def read_all():
    return {n: [fnhub.env(n), type(fnhub.env(n)).__name__] for n in NAMES}


@fnhub.api("One env variable")
def one(name: str, default: str = "<none>"):
    return fnhub.env(name) if default == "<none>" else fnhub.env(name, default)


@fnhub.api("Change what fnhub.env returned")
def mutate():
    fnhub.env("J")["added"] = True
    fnhub.env("L").append("z")
    return [fnhub.env("J"), fnhub.env("L")]


@fnhub.api("Leak the password every way")
def leak():
    pw = fnhub.env("P")
    print("the password is", pw, repr(pw))
    fnhub.log.warning("logged %s", pw)
    raise RuntimeError(f"failed with {pw} and {pw!r}")


@fnhub.api("Return the password as bytes")
def leak_bytes():
    return b"pw=" + fnhub.env("P").encode() + b";"


@fnhub.api("Names")
def names():
    return fnhub.env.keys()
"""


def _save(db: Database, settings, redis_client, **specs) -> None:
    from fnhub.keys import Keys
    from fnhub.secret_box import resolve_secret_key

    box = SecretBox(resolve_secret_key(settings))
    with db.session() as session, session.begin():
        for name, (type_, value) in specs.items():
            save_env(session, box, name, spec_of(type_, value), actor="cli")
    bump(redis_client, Keys(settings.key_prefix).envs_revision)


def test_fnhub_env_in_a_worker_each_type_cached_and_following_changes(
    settings, services, client, start_worker, publish
):
    _save(
        services.db, settings, services.redis,
        S=("string", "plain"), P=("password", SECRET), I=("integer", "42"), F=("float", "2.5"),
        B=("boolean", "off"), J=("json", '{"a": [1, null]}'), L=("list", "x, y"),
    )  # fmt: skip
    publish({"envs": ENV_SCRIPT})
    start_worker(processes=1)
    got = call_ok(client, "envs.read_all").result
    assert got == {
        "S": ["plain", "str"], "P": ["*****", "str"], "I": [42, "int"], "F": [2.5, "float"],
        "B": [False, "bool"], "J": [{"a": [1, None]}, "dict"], "L": [["x", "y"], "list"],
    }  # fmt: skip
    # what a script does to a value it got does not change the next read
    assert call_ok(client, "envs.mutate").result == [{"a": [1, None]}, ["x", "y"]]
    assert call_ok(client, "envs.one", {"name": "J"}).result == {"a": [1, None]}
    assert call_ok(client, "envs.names").result == ["B", "F", "I", "J", "L", "P", "S"]

    missing = client.call("envs.one", {"name": "NOPE"})
    assert missing.status == "failure" and missing.error_type == "UnknownEnv"
    assert missing.error_message.startswith("no env variable named 'NOPE' (known: B, F, I")
    assert call_ok(client, "envs.one", {"name": "NOPE", "default": "d"}).result == "d"

    # a change reaches the worker within about a second, a new name within 0.1 s
    _save(services.db, settings, services.redis, I=("integer", "43"), NEW=("string", "fresh"))
    started = time.monotonic()
    wait_for(lambda: client.call("envs.one", {"name": "NEW"}).result == "fresh", timeout=5)
    assert time.monotonic() - started < 0.5
    wait_for(lambda: call_ok(client, "envs.one", {"name": "I"}).result == 43, timeout=5)
    assert time.monotonic() - started < 2

    leaked = client.call("envs.leak")
    assert leaked.status == "failure"
    everything = json.dumps(
        [leaked.result, leaked.logs, leaked.error_message, leaked.traceback], ensure_ascii=False
    )
    assert SECRET not in everything and "hunter2" not in everything
    assert "the password is ***** '*****'" in leaked.logs
    assert "logged *****" in leaked.logs
    assert leaked.error_message == "failed with ***** and '*****'"
    as_bytes = call_ok(client, "envs.leak_bytes").result
    assert base64.b64decode(as_bytes["$fnhub_bytes"]) == b"pw=*****;"


def test_values_every_database_refuses_are_refused_first():
    with pytest.raises(InvalidEnv, match="not valid Unicode"):
        spec_of("string", "\ud800")
    with pytest.raises(InvalidEnv, match="the description holds a NUL character"):
        spec_of("string", "ok", "bad\x00")
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    with pytest.raises(InvalidEnv, match="not valid JSON"):
        spec_of("json", deep)
    assert spec_of("json", {"a": [1]}).value == '{"a":[1]}'
    assert spec_of("list", ["a", "b"]).value == "a,b"
    assert spec_of("boolean", True).value == "true"
    assert spec_of("float", 2).value == "2"
    with pytest.raises(InvalidEnv, match="'true' is not an integer"):
        spec_of("integer", True)


def test_the_servers_purge_deletes_expired_store_rows(tmp_path):
    import asyncio
    from types import SimpleNamespace

    from fnhub.envs.api import purge_service
    from fnhub.envs.kv import Store
    from fnhub.envs.models import StoreItem

    database = Database(f"sqlite:///{tmp_path / 'purge.db'}")
    database.migrate()
    store = Store(database)
    store.set("old", 1, expires=0.05, scope="s")
    store.set("kept", 2, scope="s")
    time.sleep(0.1)

    async def run_briefly() -> None:
        with pytest.raises(TimeoutError):  # it runs until cancelled, a pass a minute
            await asyncio.wait_for(purge_service(SimpleNamespace(db=database)), 0.5)

    asyncio.run(run_briefly())
    with database.session() as session:
        assert list(session.scalars(select(StoreItem.key))) == ["kept"]
    database.dispose()


def test_a_reload_that_cannot_reach_the_database_keeps_the_copy_held(settings, services):
    import sqlalchemy.exc

    from fnhub import runtime
    from fnhub.envs.script import Env
    from fnhub.keys import Keys

    saved = runtime._settings, runtime._redis, runtime._database
    runtime.init(settings, services.redis)
    try:
        _save(services.db, settings, services.redis, A=("string", "one"))
        env = Env()
        assert env("A") == "one"
        # the database refuses connections, and a change is announced meanwhile
        runtime._database = Database("postgresql://postgres@127.0.0.1:1/gone")
        bump(services.redis, Keys(settings.key_prefix).envs_revision)
        time.sleep(1.1)
        assert env("A") == "one"  # the copy held, not a failed task
        with pytest.raises(sqlalchemy.exc.OperationalError):
            Env()("A")  # a process that never read them has nothing to fall back on
    finally:
        runtime._settings, runtime._redis, runtime._database = saved


def test_a_password_sealed_with_another_key_can_be_replaced_not_kept(db):
    with db.session() as session, session.begin():
        save_env(session, SecretBox("old key"), "PW", spec_of("password", SECRET), actor="cli")
    new = SecretBox("new key")
    with (
        pytest.raises(InvalidEnv, match="sealed with another secret key; send the password"),
        db.session() as session,
        session.begin(),
    ):
        save_env(session, new, "PW", spec_of("password", "*****"), actor="cli")
    with db.session() as session, session.begin():
        _row, change = save_env(session, new, "PW", spec_of("password", SECRET), actor="cli")
    assert change == "updated"
    with db.session() as session:
        row = session.get(EnvVar, "PW")
        assert row is not None and new.decrypt(row.value) == SECRET
