"""`fnhub import baetyl` on the Baetyl guide's files (tests/rules/baetyl_seed, Baetyl's layout)."""

from __future__ import annotations

import json
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


def _node_project(tmp_path: Path, runtime_yml: str, manager_extra: str = "") -> list[Path]:
    """A function manager with one Node rule, and its runtime file in Baetyl's layout."""
    (tmp_path / "fm-conf").mkdir()
    manager = tmp_path / "fm-conf" / "service.yml"
    manager.write_text(
        "hub: {address: 'tcp://127.0.0.1:1883'}\n"
        "rules: [{clientid: js-1, subscribe: {topic: a, qos: 1}, function: {name: js},"
        f" publish: {{topic: b, qos: 1}}{manager_extra}}}]\n"
        "functions: [{name: js, service: function-node85-js, timeout: 5s,"
        " instance: {max: 4}}]\n"
    )
    (tmp_path / "js-conf").mkdir()
    conf = tmp_path / "js-conf" / "service.yml"
    conf.write_text(runtime_yml)
    return [manager, conf]


def test_node_rule_alone_keeps_file_names_and_maps_options(tmp_path):
    files = _node_project(
        tmp_path,
        "functions: [{name: js, handler: main.onMessage, codedir: var/db/baetyl/js}]\n",
        manager_extra=", retry: {max: 1}",
    )
    code = tmp_path / "js-code"  # Baetyl's layout: <x>-conf beside <x>-code
    code.mkdir()
    (code / "main.js").write_text(
        "const u = require('./util');\n"
        "exports.onMessage = (event, context, callback) => callback(null, u.tag(event));\n"
    )
    (code / "util.js").write_text("exports.tag = (e) => ({ ...e, tagged: true });\n")
    (code / "notes.txt").write_text("not code\n")
    out = convert(files)
    assert out.subscriptions["js-1"]["function"] == "js.handler"
    assert out.subscriptions["js-1"]["options"] == {"qos": 1, "client_id": "js-1"}
    assert sorted(out.scripts) == ["js.js", "main.js", "util.js"]
    assert out.scripts["main.js"] == (code / "main.js").read_text()
    assert out.scripts["util.js"] == (code / "util.js").read_text()
    wrapper = out.scripts["js.js"]
    assert "const _code = require('./main');" in wrapper
    assert "_code.onMessage(event, context, callback)" in wrapper
    # retry.max 1 = one attempt: no retries; timeout and instance.max as fnhub.api options
    assert '{"title": "js (Baetyl)", "timeout": 5.0, "concurrency": 4}' in wrapper
    assert out.notes == []


def test_node_code_not_found_is_a_note_and_code_folder_option(tmp_path):
    files = _node_project(
        tmp_path, "functions: [{name: js, handler: index.handler, codedir: var/db/baetyl/x}]\n"
    )
    out = convert(files)
    assert sorted(out.scripts) == ["js.js"]
    assert "require('./index')" in out.scripts["js.js"]
    assert out.notes == [
        "js: code of index.js not found (codedir 'var/db/baetyl/x'): copy it to "
        "scripts/index.js, or re-run with --code <folder holding index.js>"
    ]
    out = convert(files, code_dirs=[NODE_CODE.parent])
    assert out.scripts["index.js"] == NODE_CODE.read_text()
    assert out.notes == []
    # --code may also name the folder above one named like the codedir
    (tmp_path / "above" / "x").mkdir(parents=True)
    shutil.copy(NODE_CODE, tmp_path / "above" / "x" / "index.js")
    assert "index.js" in convert(files, code_dirs=[tmp_path / "above"]).scripts


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("index.handler", ("index", "handler", None)),
        ("index.$run", ("index", "$run", None)),
        ("lib/index.handler", ("lib/index", "handler", "is in a subfolder: copy it by hand")),
        ("index", None),
        ("index.1st", None),
        (".handler", None),
    ],
)
def test_node_handler_forms(tmp_path, handler, expected):
    files = _node_project(tmp_path, f"functions: [{{name: js, handler: '{handler}'}}]\n")
    if expected is None:
        with pytest.raises(BaetylImportError, match=r"handler must be 'module\.function'"):
            convert(files)
        return
    module, attr, note = expected
    out = convert(files)
    assert f"const _code = require('./{module}');" in out.scripts["js.js"]
    assert f"_code.{attr}(event, context, callback)" in out.scripts["js.js"]
    if note:
        assert any(note in n for n in out.notes)


def test_node_file_names_that_cannot_be_script_names_are_renamed(tmp_path):
    files = _node_project(
        tmp_path, "functions: [{name: js, handler: my-handler.handler, codedir: c}]\n"
    )
    code = tmp_path / "js-code"
    code.mkdir()
    (code / "my-handler.js").write_text("exports.handler = (e, c, cb) => cb(null, e);\n")
    (code / "json.js").write_text("exports.x = 1;\n")  # a Python stdlib name: not a script name
    (code / "js.js").write_text("exports.y = 2;\n")  # the wrapper's name
    out = convert(files)
    assert sorted(out.scripts) == ["js.js", "js_js.js", "json_js.js", "my_handler.js"]
    assert "require('./my_handler')" in out.scripts["js.js"]
    assert out.scripts["js_js.js"] == "exports.y = 2;\n"
    assert len(out.notes) == 3 and all("must require" in n for n in out.notes)


def test_node_package_json_is_a_note(tmp_path):
    files = _node_project(tmp_path, "functions: [{name: js, handler: index.handler}]\n")
    code = tmp_path / "js-code"
    code.mkdir()
    shutil.copy(NODE_CODE, code / "index.js")
    (code / "node_modules" / "lodash").mkdir(parents=True)
    out = convert(files)
    assert "index.js" in out.scripts
    assert out.notes == [
        f"js: {code / 'node_modules'} holds npm packages: `npm install` them in the project "
        "folder (it writes package.json and package-lock.json; fnhub installs them with `npm ci` "
        "at apply)"
    ]
    (code / "package.json").write_text('{"dependencies": {"lodash": "^4"}}\n')
    [note] = convert(files).notes
    assert note.startswith(f"js: {code / 'package.json'} lists npm packages: copy package.json ")
    assert "run `npm install` there once to make package-lock.json" in note
    (code / "package-lock.json").write_text("{}\n")
    [note] = convert(files).notes
    assert "copy package.json and package-lock.json into the project folder" in note
    assert "`npm ci` at apply" in note


def test_two_node_functions_sharing_code_copy_it_once(tmp_path):
    files = _node_project(
        tmp_path,
        "functions: [{name: js, handler: index.handler}, {name: js2, handler: index.handler}]\n",
    )
    files[0].write_text(
        "hub: {address: 'tcp://127.0.0.1:1883'}\n"
        "rules:\n"
        "  - {clientid: js-1, subscribe: {topic: a}, function: {name: js}, publish: {topic: b}}\n"
        "  - {clientid: js-2, subscribe: {topic: c}, function: {name: js2}, publish: {topic: d}}\n"
        "functions: [{name: js, service: function-node85-js},"
        " {name: js2, service: function-node85-js}]\n"
    )
    code = tmp_path / "js-code"
    code.mkdir()
    shutil.copy(NODE_CODE, code / "index.js")
    (code / "js2.js").write_text("exports.x = 1;\n")  # the second function's wrapper name
    out = convert(files)
    assert sorted(out.scripts) == ["index.js", "js.js", "js2.js", "js2_js.js"]
    assert out.subscriptions["js-2"]["function"] == "js2.handler"
    assert "_code.handler(event, context, callback)" in out.scripts["js2.js"]
    assert out.scripts["js2_js.js"] == "exports.x = 1;\n"


def test_node_wrapper_name_taken_by_python_code_is_refused(tmp_path):
    files = _node_project(tmp_path, "functions: [{name: js, handler: index.handler}]\n")
    text = files[0].read_text()
    files[0].write_text(
        text.replace(
            "rules: [",
            "rules: [{subscribe: {topic: p}, function: {name: py}, publish: {topic: q}}, ",
        ).replace("functions: [", "functions: [{name: py, service: function-python3}, ")
    )
    py = tmp_path / "py.yml"
    py.write_text("functions: [{name: py, handler: js.handler}]\n")  # its code: js.py
    pycode = tmp_path / "pycode"
    pycode.mkdir()
    (pycode / "js.py").write_text("def handler(event, context):\n    return event\n")
    with pytest.raises(BaetylImportError, match=r"scripts/js\.js would share its name with"):
        convert([*files, py], code_dirs=[pycode])


def test_write_project_refuses_a_js_beside_a_py_of_the_same_name(tmp_path):
    files = _node_project(tmp_path, "functions: [{name: js, handler: index.handler}]\n")
    code = tmp_path / "js-code"
    code.mkdir()
    shutil.copy(NODE_CODE, code / "index.js")
    out = convert(files)
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "index.py").write_text("x = 1\n")
    with pytest.raises(BaetylImportError, match=r"scripts/index.js would share its name with"):
        write_project(project, out)
    assert not (project / "fnhub.yaml").exists()
    (project / "scripts" / "index.py").unlink()
    assert "scripts/index.js written" in write_project(project, out)


@pytest.mark.skipif(not shutil.which("node"), reason="node not on PATH")
def test_node_wrapper_is_valid_javascript_calling_the_handler(tmp_path):
    """The generated wrapper loads in Node and calls the guide's handler with its callback.
    `fnhub` here is a stand-in returning the function (only the wrapper's own code is checked;
    the real SDK is tests/node's)."""
    out = convert([MANAGER, SQL, PY, NODE, APP], broker="127.0.0.1:1883")
    for filename, code in out.scripts.items():
        if filename.endswith(".js"):
            (tmp_path / filename).write_text(code)
    sdk = tmp_path / "node_modules" / "fnhub"
    sdk.mkdir(parents=True)
    (sdk / "index.js").write_text(
        "exports.api = (options, fn) => { fn.options = options; return fn; };\n"
    )
    run = subprocess.run(
        [
            "node",
            "-e",
            "const m = require('./node85_sayhi');"
            "m.handler({id: 1}, {messageQOS: 0, messageTopic: 't'}, (err, value) =>"
            " console.log(JSON.stringify([err, value, m.handler.options, m.handler.length])));",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        None,
        {"id": 1, "messageQOS": 0, "messageTopic": "t", "Say": "Hello Baetyl"},
        {"title": "node85-sayhi (Baetyl)", "retries": 2, "retryDelay": 0.1},
        3,  # (event, context, callback): fnhub picks Baetyl's callback convention
    ]


def test_node_rule_before_the_python_rule_still_leaves_index_to_python(tmp_path):
    """Node functions are written after every Python one, whatever the rule order."""
    seed = tmp_path / "seed"
    shutil.copytree(SEED, seed)
    manager = seed / "function-manager-conf" / "service.yml"
    data = yaml.safe_load(manager.read_text())
    data["rules"].reverse()
    manager.write_text(yaml.safe_dump(data))
    out = convert([manager, seed / "function-sayjs-conf" / "service.yml", PY, SQL], broker="h:1")
    assert next(iter(out.subscriptions)) == "func-node85-sayhi-1"
    assert out.scripts["index.py"] == (SEED / "function-sayhi-code" / "index.py").read_text()
    assert out.scripts["index_js.js"] == NODE_CODE.read_text()
    assert "index.js" not in out.scripts
