"""`fnhub import dff` on a DataFlux Func tree (tests/dff/import_seed: two script sets importing
each other, a set file with a Redis and an MQTT connector, env variables with a password, a cron
job, a sync and an async API), then the written project applied and run end to end."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from tests.conftest import wait_for
from tests.project_cli import drop_keys, fnhub, shared_redis_env, start_serve, stop, url, wait_ready
from tests.rules.conftest import Listener

from fnhub.dff.importer import DffImportError, convert, write_project

SEED = Path(__file__).parent / "import_seed"


def test_sample_tree_becomes_scripts_connectors_envs_cron_and_endpoints():
    out = convert(SEED)
    # scripts keep DataFlux Func's script ids, whichever way the file was named
    assert sorted(out.scripts) == [
        "common__settings.py",
        "common__utils.py",
        "shop__handlers.py",
        "shop__orders.py",
        "shop__pricing.py",
    ]
    orders = out.scripts["shop__orders.py"]
    original = (SEED / "shop" / "orders.py").read_text()
    # imports by full id stay; the same-set shorthand names the full id, binding the same names
    assert "import common__utils\nfrom common__settings import CURRENCY\n" in orders
    assert "from shop__pricing import price_of\n" in orders
    assert "    import common__utils as __utils\n" in out.scripts["common__settings.py"]
    # integration= taken out of @DFF.API, the other options kept, line numbers unchanged
    assert "integration" not in orders
    assert '    "Count orders",\n    fixed_cron_expr=None\n\n\n)\ndef nightly_count():' in orders
    assert '@DFF.API("Order total", category="shop", timeout=10, cache_result=30)' in orders
    assert orders.count("\n") == original.count("\n")
    assert out.scripts["shop__pricing.py"] == (SEED / "shop" / "pricing.py").read_text()

    assert out.connectors == {
        "redis_local": {
            "type": "redis",
            "settings": {
                "host": "127.0.0.1",
                "port": 6379,
                "db": 5,
                "password": "${REDIS_LOCAL_PASSWORD}",
            },
            "description": "Local Redis",
        },
        "mqtt_broker": {
            "type": "mqtt",
            "settings": {
                "host": "127.0.0.1",
                "port": 1883,
                "username": "shop",
                "password": "${MQTT_BROKER_PASSWORD}",
            },
            "description": "Shop MQTT - sensors of the shop",
        },
    }
    assert out.subscriptions == {
        "mqtt_broker-shop-sensors": {
            "connector": "mqtt_broker",
            "topics": ["shop/sensors/+"],
            "function": "shop__handlers.on_sensor",
        }
    }
    assert out.envs == {
        "ERP_USER": {"type": "string", "value": "shop-bot", "description": "ERP user"},
        "ERP_PASSWORD": {
            "type": "password",
            "value": "${ERP_PASSWORD}",
            "description": "ERP password",
        },
        "BATCH": {"type": "integer", "value": "50"},
        "HOSTS": {"type": "list", "value": "a.example,b.example"},
        "TEMPLATE": {"type": "string", "value": "Hello $${NAME}"},  # not an env reference
    }
    assert out.cron_jobs == [
        {
            "id": "autorun-shop__orders.nightly_count",
            "function": "shop__orders.nightly_count",
            "expr": "0 3 * * *",
        },
        {
            "id": "cron-tick",
            "function": "shop__orders.tick",
            "expr": "*/5 * * * *",
            "record_limit": 500,
            "title": "counts ticks",
        },
    ]
    assert out.endpoints == {
        "sapi-total": {
            "function": "shop__orders.total",
            "mode": "sync",
            "description": "order total",
            "kwargs": {"item": "$caller", "quantity": "$caller"},
            "throttle": {"second": 20, "minute": 600},
        },
        # an auth fnhub cannot express: never made public, disabled until given one
        "sapi-receipt": {
            "function": "shop__orders.receipt",
            "mode": "sync",
            "kwargs": {"order_id": "$caller"},
            "enabled": False,
        },
        "aapi-place": {
            "function": "shop__orders.place",
            "mode": "async",
            "kwargs": {"item": "$caller", "quantity": 1},
            "record_limit": 100,
        },
    }
    text = "\n".join(out.notes)
    for secret in ("hunter2-erp", "redis-secret", "mqtt-secret"):
        assert secret not in text and secret not in json.dumps(out.__dict__)
    assert "env ERP_PASSWORD: a password; its value is not written: set ERP_PASSWORD" in text
    assert "connector redis_local: its password is not written: set REDIS_LOCAL_PASSWORD" in text
    assert "connector warehouse_db (mysql): not carried over" in text
    assert "shop__orders: `import __pricing` (DataFlux Func's same-set shorthand)" in text
    assert "integration='autoRun' taken out of @DFF.API" in text
    assert "autoRun onSystemLaunch not carried over" in text
    assert "queue=6 runs on fnhub's queue q6" in text
    assert "throttling byMonth not carried over" in text
    assert "cron job cron-tick: tags not carried over" in text
    assert "API auth auth-digest (httpDigest) has no fnhub counterpart" in text


@pytest.mark.parametrize(
    ("decorator", "expected", "note"),
    [
        ('@DFF.API("t", integration="signIn")', '@DFF.API("t")', "console users"),
        (
            '@DFF.API("t", integration="autoRun",\n'
            '         integration_config={"cronExpr": "*/10 * * * *"}, timeout=5)',
            '@DFF.API("t", timeout=5)',
            "its cronExpr became the cron job autorun-s__a.f",
        ),
        ('@dff.api(integration="login")', "@dff.api()", "console users"),
        ('@DFF.API("t", timeout=5, integration=KIND)', '@DFF.API("t", timeout=5)', "integration"),
    ],
)
def test_integration_options_are_taken_out(tmp_path, decorator, expected, note):
    code = f"{decorator}\ndef f(username=None, password=None):\n    return True\n"
    out = convert(_tree(tmp_path, {"s/a.py": code}))
    script = out.scripts["s__a.py"]
    compile(script, "s__a.py", "exec")
    assert script.count("\n") == code.count("\n")
    assert script.replace("\n", "").startswith(expected + "def f(")
    assert any(note in n for n in out.notes), out.notes
    if "autoRun" in decorator:
        assert out.cron_jobs == [
            {"id": "autorun-s__a.f", "function": "s__a.f", "expr": "*/10 * * * *"}
        ]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "dff"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_missing_functions_and_unknown_sets_are_notes_not_guesses(tmp_path):
    root = _tree(
        tmp_path,
        {
            "s/a.py": "import other__lib\n\n@DFF.API('x', retries=2, colour='red')\ndef f():\n"
            "    return 1\n",
            "s/s.json": json.dumps(
                {
                    "cronJobs": [{"id": "c1", "funcId": "s__a.gone", "cronExpr": "* * * * *"}],
                    "syncAPIs": [{"id": "bad id!", "funcId": "s__a.f", "apiAuthId": "nope"}],
                    "envVariables": [
                        {
                            "id": "J",
                            "autoTypeCasting": "json",
                            "valueTEXT": "{}",
                            "createTime": 1700000000,  # DataFlux Func's bookkeeping
                            "sset_title": "joined in by a listing",
                            "colourCode": "red",
                        }
                    ],
                }
            ),
        },
    )
    out = convert(root)
    assert out.cron_jobs == []
    assert out.endpoints == {"bad-id-": {"function": "s__a.f", "mode": "sync", "enabled": False}}
    assert out.envs == {"J": {"type": "json", "value": "{}"}}
    text = "\n".join(out.notes)
    assert "s__a: imports other__lib, whose script set is not in the imported folder" in text
    assert "s__a.f: @DFF.API option `colour` is unknown to fnhub" in text
    assert "retries" not in text  # fnhub's own options are fine under @DFF.API
    assert "env variable J: colourCode not carried over (no fnhub counterpart)" in text
    assert "createTime" not in text and "sset_title" not in text
    assert "cron job c1: function s__a.gone is not a @DFF.API function" in text
    assert "its API auth nope is not in the set file's apiAuths: written disabled" in text


def test_api_auths_fnhub_can_express_become_endpoint_auth(tmp_path):
    root = _tree(
        tmp_path,
        {
            "s/a.py": "@DFF.API('x')\ndef f(a):\n    return a\n",
            "s/s.yaml": yaml.safe_dump(
                {
                    "authLinks": [  # the name before 5.0
                        {"id": "t", "funcId": "s__a.f", "apiAuthId": "tok"},
                        {"id": "b", "funcId": "s__a.f", "apiAuthId": "basic"},
                    ],
                    "apiAuths": [
                        {
                            "id": "tok",
                            "type": "fixedField",
                            "configJSON": json.dumps(
                                {"fields": [{"location": "header", "name": "X-Key", "value": "s"}]}
                            ),
                        },
                        {
                            "id": "basic",
                            "type": "httpBasic",
                            "configJSON": {"users": [{"username": "u", "passwordCipher": "zz"}]},
                        },
                    ],
                }
            ),
        },
    )
    out = convert(root)
    assert out.endpoints["t"]["auth"] == {
        "type": "token",
        "location": "header",
        "field": "X-Key",
        "token": "${T_TOKEN}",
    }
    assert out.endpoints["b"]["auth"] == {
        "type": "basic",
        "username": "u",
        "password": "${B_PASSWORD}",
    }
    assert "enabled" not in out.endpoints["t"]


def test_kafka_connector_and_secrets_encrypted_by_dataflux_func(tmp_path):
    """A database dump has `passwordCipher` (AES with DataFlux Func's SECRET) and JSON text:
    the secret is asked for from the environment, the rest mapped like `DFF.CONN.save`."""
    config = {
        "servers": "127.0.0.1:9092",
        "user": "k",
        "passwordCipher": "q1w2e3",
        "groupId": "dff",
        "multiSubClient": True,
        "topicHandlers": [{"topic": "orders", "funcId": "s__a.f", "isDisabled": True}],
    }
    root = _tree(
        tmp_path,
        {
            "s/a.py": "@DFF.API('x')\ndef f(topic, message):\n    return message\n",
            "s/s.json": json.dumps(
                {
                    "connectors": [
                        {"id": "bus", "type": "kafka", "configJSON": json.dumps(config)}
                    ],
                    "envVariables": [
                        {"id": "no spaces please", "valueTEXT": "x"},
                        {"id": "K", "autoTypeCasting": "password", "valueTEXTCipher": "zz"},
                    ],
                }
            ),
        },
    )
    out = convert(root)
    assert out.connectors["bus"]["settings"] == {
        "bootstrap_servers": "127.0.0.1:9092",
        "sasl_username": "k",
        "client_id": "dff",
        "sasl_password": "${BUS_PASSWORD}",
        "sasl_mechanism": "PLAIN",
        "security_protocol": "SASL_PLAINTEXT",
    }
    assert out.subscriptions == {
        "bus-orders": {
            "connector": "bus",
            "topics": ["orders"],
            "function": "s__a.f",
            "mode": "multiple",
            "enabled": False,
        }
    }
    assert out.envs == {"K": {"type": "password", "value": "${K}"}}
    text = "\n".join(out.notes)
    assert "q1w2e3" not in json.dumps(out.__dict__) and "zz" not in json.dumps(out.__dict__)
    assert "env variable no spaces please: not carried over: env name" in text
    assert "connector bus: its password is not written: set BUS_PASSWORD" in text
    assert "valueTEXTCipher" not in text  # the password's own field: not a leftover


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"a.py": "x = 1\n"}, "holds .py files"),
        ({"s/a.py": "def (:\n"}, r"s__a.py: line 1"),
        ({"s/a.py": "", "s/s.yaml": "cronJobs: [\n"}, "not valid YAML"),
        ({"s/a.py": "", "s/s.json": "{"}, "not valid JSON"),
        ({"s/a.py": "", "s/s.yaml": "scripts: []\n"}, "unknown section 'scripts'"),
        ({"s/a.py": "", "s/s.yaml": "cronJobs: [{funcId: s__a.f}]\n"}, r"cronJobs\[0\] has no"),
        ({"s/a.py": "", "s/x.yaml": "", "s/y.json": ""}, "one set file at most"),
        ({"a__b/c.py": ""}, "a script set id is"),
        ({"s/a.py": "", "s/s__a.py": ""}, "two files are script s__a"),
        ({"empty/readme.txt": ""}, "no script set folders"),
    ],
)
def test_bad_trees_are_refused_clearly(tmp_path, files, error):
    with pytest.raises(DffImportError, match=error):
        convert(_tree(tmp_path, files))


def test_merge_never_overwrites_without_force(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "fnhub.yaml").write_text(
        yaml.safe_dump({"settings": {"processes": 2}, "envs": {"BATCH": "7", "MINE": "x"}})
    )
    out = convert(SEED)
    with pytest.raises(DffImportError, match=r"fnhub.yaml: envs.BATCH"):
        write_project(project, out)
    assert not (project / "scripts").exists()  # nothing written
    done = write_project(project, out, force=True)
    assert "envs BATCH replaced" in done and "endpoints sapi-total added" in done
    data = yaml.safe_load((project / "fnhub.yaml").read_text())
    assert data["settings"] == {"processes": 2}
    assert data["envs"]["MINE"] == "x"
    jobs = [j["id"] for j in data["cron_jobs"]]
    assert jobs == ["autorun-shop__orders.nightly_count", "cron-tick"]
    assert write_project(project, out) == []  # a second run changes nothing
    (project / "scripts" / "shop__pricing.py").write_text("# mine\n")
    with pytest.raises(DffImportError, match=r"shop__pricing\.py"):
        write_project(project, out)
    assert (project / "scripts" / "shop__pricing.py").read_text() == "# mine\n"
    assert "scripts/shop__pricing.py written" in write_project(project, out, force=True)


def test_imported_project_applied_and_served(tmp_path):
    """The CLI imports the tree; `fnhub apply` accepts the project; `fnhub serve` (server,
    worker, beat) runs it: functions called across script sets, the cron job firing, the sync
    API's URL answering, the async API queuing, the password masked, and the MQTT connector's
    topic handler run by a real message, publishing through DFF.CONN."""
    tree = tmp_path / "dff"
    shutil.copytree(SEED, tree)
    # the sample fires every five minutes; this copy every second (fnhub takes 6 fields)
    set_file = tree / "shop" / "shop.yaml"
    set_file.write_text(set_file.read_text().replace('"*/5 * * * *"', '"* * * * * *"'))
    # topics of this test's own on the machine's broker
    topics = f"t{uuid.uuid4().hex[:8]}/shop/"
    for path in (set_file, tree / "shop" / "handlers.py"):
        path.write_text(path.read_text().replace('"shop/', f'"{topics}'))
    project = tmp_path / "proj"
    env = shared_redis_env(project)
    env.update(
        ERP_PASSWORD="hunter2-erp",
        REDIS_LOCAL_PASSWORD="",
        MQTT_BROKER_PASSWORD="mqtt-secret",
        FNHUB_QUEUES="sync,async,cron,sub,q6",
    )
    project.mkdir()
    dry = fnhub("import", "dff", str(tree), "-p", str(project), "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would write scripts/shop__orders.py" in dry.stdout and "sapi-total:" in dry.stdout
    assert not (project / "fnhub.yaml").exists()
    imported = fnhub("import", "dff", str(tree), "-p", str(project), cwd=tmp_path, env=env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "scripts/shop__orders.py written" in imported.stdout
    assert "manual:" in imported.stdout and "hunter2" not in imported.stdout
    again = fnhub("import", "dff", str(tree), "-p", str(project), cwd=tmp_path, env=env)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    serve = None
    try:
        applied = fnhub("apply", cwd=project, env=env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "shop__orders" in applied.stdout
        serve = start_serve(project, env)
        wait_ready(serve, env)

        called = fnhub(
            "call", "shop__orders.total", "--kwargs", '{"item": "apple", "quantity": 3}',
            cwd=project, env=env,
        )  # fmt: skip
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == {"item": "apple", "total": "3.60", "currency": "EUR"}
        currency = fnhub("call", "common__settings.currency", cwd=project, env=env)
        assert json.loads(currency.stdout) == "1.00 EUR"  # `import __utils` rewritten

        secret = fnhub("call", "shop__orders.erp_check", cwd=project, env=env)
        assert secret.returncode == 0, secret.stderr
        assert json.loads(secret.stdout) == {"user": "shop-bot", "batch": 50, "secret": "*****"}
        assert "hunter2" not in secret.stdout + secret.stderr

        def ticked() -> dict | None:
            answer = fnhub("call", "shop__orders.ticks", cwd=project, env=env)
            value = json.loads(answer.stdout)
            return value if value["ticks"] >= 2 else None

        fired = wait_for(ticked, timeout=30, interval=0.5)
        assert fired["last"]["expr"] == "* * * * * *"

        base = url(env)
        total = httpx.get(f"{base}/e/sapi-total", params={"item": "pear"}, timeout=30)
        assert total.status_code == 200, total.text
        assert total.json() == {"item": "pear", "total": "0.95", "currency": "EUR"}
        receipt = httpx.get(f"{base}/e/sapi-receipt", params={"order_id": "1"}, timeout=30)
        assert receipt.status_code == 403, receipt.text  # disabled: its auth was HTTP digest
        assert receipt.json()["error"]["code"] == "endpoint_disabled"

        queued = httpx.post(f"{base}/e/aapi-place", json={"item": "apple"}, timeout=30)
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued"
        state = httpx.get(f"{base}{queued.json()['url']}?wait=20", timeout=30).json()
        assert state["status"] == "success", state
        assert state["result"] == {"placed": "apple", "login": "shop-bot"}

        # the connector's topic handler: an MQTT message runs it; it publishes through
        # DFF.CONN to MQTT and writes through the Redis connector
        listener = Listener(1883, f"{topics}tagged")
        try:
            reading = f"{topics}sensors/s1"
            wait_for(
                lambda: (
                    listener.publish(reading, b'{"temp": 21}', qos=1)
                    or listener.on(f"{topics}tagged")
                ),
                timeout=30,
                interval=1,
            )
            tagged = json.loads(listener.on(f"{topics}tagged")[0])
            assert tagged == {"temp": 21, "seen_by": "common__utils", "topic": reading}
        finally:
            listener.close()
        connector_db = redis.Redis(db=5)  # the sample's Redis connector
        stored = connector_db.getdel("last-sensor")
        connector_db.close()
        assert stored is not None and json.loads(stored)["topic"].startswith(topics)
    finally:
        if serve is not None:
            stop(serve)
        drop_keys(env)
    log = (project / "serve.log").read_text()
    assert "hunter2" not in log
