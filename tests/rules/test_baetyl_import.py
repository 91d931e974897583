"""`fnhub import baetyl` on the Baetyl guide's files (tests/rules/baetyl_seed, Baetyl's layout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
import yaml
from tests.conftest import REDIS_URL
from tests.rules.conftest import fnhub_cmd

from fnhub.baetyl.importer import BaetylImportError, convert, write_project

SEED = Path(__file__).parent / "baetyl_seed"
MANAGER = SEED / "function-manager-conf" / "service.yml"
SQL = SEED / "function-filter-conf" / "service.yml"
PY = SEED / "function-sayhi-conf" / "service.yml"
NODE = SEED / "function-sayjs-conf" / "service.yml"
NODE_CODE = SEED / "function-sayjs-code" / "index.js"
HUB = SEED / "localhub-conf" / "service.yml"
APP = SEED / "application.yml"


def test_guide_files_become_connector_rules_route_and_scripts():
    out = convert([MANAGER, SQL, PY, NODE, HUB, APP])
    assert out.connectors == {
        "baetyl": {
            "type": "mqtt",
            "settings": {
                "protocol": "3.1.1",
                "host": "localhub",
                "port": 1883,
                "username": "test",
                "password": "hahaha",
            },
        }
    }
    subs = out.subscriptions
    assert list(subs) == [
        "func-python27-sayhi-1",
        "func-sql-filter-1",
        "func-python36-sayhi-1",
        "func-node85-sayhi-1",
        "route-t-to-t_topic",
    ]
    assert subs["func-sql-filter-1"] == {
        "connector": "baetyl",
        "topics": ["t"],
        "sql": "select qos() as qos, topic() as topic, * where id < 10",
        "options": {"qos": 1, "client_id": "func-sql-filter-1"},
        "publish": {"topic": "t/sqlfilter", "qos": 1},
    }
    assert subs["func-python36-sayhi-1"]["function"] == "python36_sayhi.handler"
    assert subs["func-python36-sayhi-1"]["options"] == {
        "qos": 0,
        "client_id": "func-python36-sayhi-1",
    }
    assert subs["func-python36-sayhi-1"]["publish"] == {"topic": "t/py3hi", "qos": 0}
    assert subs["route-t-to-t_topic"] == {
        "connector": "baetyl",
        "topics": ["t"],
        "options": {"qos": 0},
        "publish": {"topic": "t/topic", "qos": 0},
    }
    assert subs["func-node85-sayhi-1"] == {
        "connector": "baetyl",
        "topics": ["t"],
        "function": "node85_sayhi.handler",
        "options": {"qos": 0, "client_id": "func-node85-sayhi-1"},
        "publish": {"topic": "t/node8hi", "qos": 0},
    }
    # the code found through Baetyl's volume layout, once; one wrapper per function
    assert sorted(out.scripts) == [
        "index.py",
        "index_js.js",
        "node85_sayhi.js",
        "python27_sayhi.py",
        "python36_sayhi.py",
    ]
    assert out.scripts["index.py"] == (SEED / "function-sayhi-code" / "index.py").read_text()
    # the guide mounts function-sayjs-code at the same codedir as the Python code; index.js
    # cannot keep the name index (index.py has it), so it is renamed and the wrapper says so
    assert out.scripts["index_js.js"] == NODE_CODE.read_text()
    assert "require('./index_js')" in out.scripts["node85_sayhi.js"]
    assert "concurrency=10" in out.scripts["python27_sayhi.py"]  # instance.max
    assert "concurrency" not in out.scripts["python36_sayhi.py"]
    assert "def handler(event, context):" in out.scripts["python36_sayhi.py"]
    notes = "\n".join(out.notes)
    assert "not supported" not in notes
    assert (
        "node85-sayhi: index.js written as scripts/index_js.js (scripts/index.py is Python code "
        "of the same name); a file that requires './index' must require './index_js'"
    ) in out.notes
    assert "Python 2" in notes and "localhub:1883" in notes


def test_runtime_from_service_names_without_application_yml(tmp_path):
    out = convert([MANAGER, SQL, PY, NODE], broker="127.0.0.1:18830")
    assert out.connectors["baetyl"]["settings"]["port"] == 18830
    assert "route-t-to-t_topic" not in out.subscriptions  # no hub file given
    assert not any("localhub" in n for n in out.notes)


def test_missing_code_is_a_note_and_code_folder_option(tmp_path):
    manager = tmp_path / "fm.yml"
    manager.write_text(MANAGER.read_text())
    conf = tmp_path / "rt.yml"
    conf.write_text(PY.read_text())
    out = convert([manager, conf, SQL, NODE])
    assert "index.py" not in out.scripts
    assert any("copy it to scripts/index.py" in n for n in out.notes)
    out = convert([manager, conf, SQL, NODE], code_dirs=[SEED / "function-sayhi-code"])
    assert "index.py" in out.scripts


def test_merges_into_an_existing_project_and_is_idempotent(tmp_path):
    (tmp_path / "fnhub.yaml").write_text(
        yaml.safe_dump({"settings": {"processes": 2}, "subscriptions": {"mine": {"x": 1}}})
    )
    out = convert([MANAGER, SQL, PY, NODE, HUB, APP], broker="127.0.0.1:1883")
    done = write_project(tmp_path, out)
    assert "subscription func-sql-filter-1 added" in done
    assert "scripts/index.py written" in done
    data = yaml.safe_load((tmp_path / "fnhub.yaml").read_text())
    assert data["settings"] == {"processes": 2}
    assert data["subscriptions"]["mine"] == {"x": 1}
    assert "route-t-to-t_topic" in data["subscriptions"]
    assert write_project(tmp_path, out) == []  # a second run changes nothing
    (tmp_path / "scripts" / "index.py").write_text("# mine\n")
    with pytest.raises(BaetylImportError, match="exists with other content"):
        write_project(tmp_path, out)
    assert "scripts/index.py written" in write_project(tmp_path, out, force=True)


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"a.yml": "rules: [\n"}, "not valid YAML"),
        ({"a.yml": "- 1\n"}, "expected a YAML mapping"),
        ({"a.yml": "logger: {}\n"}, "not a Baetyl function-manager"),
        ({"rt.yml": "functions: [{name: f, handler: a.b}]\n"}, "give the function manager"),
        (
            {
                "fm.yml": "hub: {address: 'tcp://h:1883'}\n"
                "rules: [{subscribe: {topic: a}, function: {name: f}, publish: {topic: b}}]\n"
                "functions: [{name: f, service: my-runtime}]\n"
            },
            "unknown runtime",
        ),
        (
            {
                "fm.yml": "hub: {address: 'tcp://h:1883'}\n"
                "rules: [{subscribe: {topic: a}, function: {name: g}, publish: {topic: b}}]\n"
                "functions: [{name: f, service: function-python3}]\n"
            },
            "missing from `functions`",
        ),
        (
            {
                "fm.yml": "hub: {address: 'tcp://h:1883'}\n"
                "rules: [{subscribe: {topic: a}, function: {name: f}, publish: {topic: b}}]\n"
                "functions: [{name: f, service: function-sql}]\n"
            },
            "SQL runtime without its statement",
        ),
        (
            {
                "fm.yml": "hub: {address: 'tcp://h:1883'}\n"
                "rules: [{subscribe: {topic: a, qos: 2}, function: {name: f},"
                " publish: {topic: b}}]\n"
                "functions: [{name: f, service: function-sql}]\n",
                "sql.yml": "functions: [{name: f, handler: 'select *'}]\n",
            },
            "qos must be 0 or 1",
        ),
        (
            {
                "hub.yml": "listen: ['tcp://0.0.0.0:1883']\nsubscriptions:\n"
                "  - {source: {topic: 'a/#'}, target: {topic: b}}\n"
                "  - {source: {topic: b}, target: {topic: a/x}}\n"
            },
            "would loop forever: route-a-to-b → route-b-to-a_x → route-a-to-b",
        ),
    ],
)
def test_bad_input_is_refused_clearly(tmp_path, files, error):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(BaetylImportError, match=error):
        convert([tmp_path / n for n in files])


def test_unreadable_file(tmp_path):
    with pytest.raises(BaetylImportError, match="cannot read"):
        convert([tmp_path / "missing.yml"])


def test_cli_import_then_fnhub_apply_accepts_the_project(tmp_path):
    """The written project is valid for `fnhub apply`: scripts publish, subscriptions store."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        "FNHUB_REDIS_URL": REDIS_URL,
        "FNHUB_KEY_PREFIX": f"timp{uuid.uuid4().hex[:10]}",
        "FNHUB_DATA_DIR": str(tmp_path / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp_path / 'fnhub.db'}",
    }
    seed = tmp_path / "baetyl"
    shutil.copytree(SEED, seed)
    files = [str(p) for p in sorted(seed.glob("**/*.yml"))]
    done = fnhub_cmd(env, tmp_path, "import", "baetyl", *files, "--broker", "127.0.0.1:1883")
    assert done.returncode == 0, done.stderr
    assert "manual:" in done.stdout and "scripts/index_js.js" in done.stdout
    assert (tmp_path / "scripts" / "node85_sayhi.js").is_file()
    bad = fnhub_cmd(env, tmp_path, "import", "baetyl", str(tmp_path / "nope.yml"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr
    applied = fnhub_cmd(env, tmp_path, "apply")
    try:
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "python36_sayhi" in applied.stdout and "index" in applied.stdout
        listed = subprocess.run(
            [sys.executable, "-c", "from fnhub.cli import main; main()", "--help"],
            capture_output=True,
            text=True,
        )
        assert "import" in listed.stdout
    finally:
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{env['FNHUB_KEY_PREFIX']}:*"))
        if keys:
            r.delete(*keys)
        r.close()
