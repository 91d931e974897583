"""The Baetyl guide's whole scenario with both runtimes: Python and Node rules, SQL, the route.

NEEDS THE NODE RUNTIME (issue 21: src/fnhub/node/ and the lead's plumbing — `.js` scripts
published by `fnhub apply`, worker dispatch to Node). Written beside that work on branch
h26-baetyl-node, where it could not pass: there the Python, SQL and route outputs came as asserted
and the Node rules published `unknown_function` errors (no `.js` publishing yet). Expected to pass
once the runtime is merged. Node ≥ 18 on the PATH; skipped without it.

- the example as shipped (examples/baetyl-sayhi: `sayhi.py` + `sayjs.js`);
- the guide's files converted by `fnhub import baetyl` (tests/rules/baetyl_seed), applied and run
  as they come out: the Python 2 and 3 rules, the Node rule through its generated wrapper
  (`node85_sayhi.js` requiring `index_js.js`, the guide's `index.js` renamed beside `index.py`).
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import orjson
import pytest
import yaml
from tests.conftest import wait_for
from tests.rules.conftest import wait_connected

from fnhub.baetyl.importer import convert, write_project

EXAMPLE = Path(__file__).parents[2] / "examples" / "baetyl-sayhi"
SEED = Path(__file__).parent / "baetyl_seed"
KEYS = [  # the order both handlers build their output in
    "id",
    "messageQOS",
    "messageTopic",
    "messageTimestamp",
    "functionName",
    "functionInvokeID",
    "Say",
]

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="node not on PATH")


def _said_hi(payload: bytes, function: str, before: int) -> None:
    out = orjson.loads(payload)
    assert list(out) == KEYS
    assert before <= out.pop("messageTimestamp") <= time.time()
    uuid.UUID(out.pop("functionInvokeID"))
    assert out == {
        "id": 1,
        "messageQOS": 0,
        "messageTopic": "t",
        "functionName": function,
        "Say": "Hello Baetyl",
    }


def _unique_client_ids(project_dir: Path) -> None:
    """Client ids unique per run: the rules' MQTT sessions are persistent."""
    path = project_dir / "fnhub.yaml"
    project = yaml.safe_load(path.read_text())
    suffix = uuid.uuid4().hex[:6]
    for sub in project["subscriptions"].values():
        if "client_id" in sub.get("options", {}):
            sub["options"]["client_id"] += f"-{suffix}"
    path.write_text(yaml.safe_dump(project))


@pytest.mark.timeout(120)
def test_sayhi_example_with_python_and_node(tmp_path, mosquitto, listen, project_cluster):
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    project = yaml.safe_load((tmp_path / "fnhub.yaml").read_text())
    project["connectors"]["baetyl"]["settings"]["port"] = mosquitto.port
    (tmp_path / "fnhub.yaml").write_text(yaml.safe_dump(project))
    _unique_client_ids(tmp_path)
    cluster = project_cluster()
    cluster.start_worker(processes=2)
    cluster.start_server()
    names = ("func-python36-sayhi-1", "func-node85-sayhi-1", "func-sql-filter-1")
    wait_connected(cluster, *names, "route-t-to-t_topic")
    listener = listen()
    before = int(time.time())
    listener.publish("t", b'{"id":1}', qos=0)
    topics = ("t/py3hi", "t/node8hi", "t/sqlfilter", "t/topic")
    wait_for(lambda: all(listener.on(t) for t in topics), timeout=30)
    time.sleep(0.5)  # nothing more may come

    [py] = listener.on("t/py3hi")
    _said_hi(py, "sayhi.handler", before)
    [js] = listener.on("t/node8hi")
    _said_hi(js, "sayjs.handler", before)  # callback(null, event): compact JSON of the object
    assert listener.qos_on("t/node8hi") == [0]
    assert listener.on("t/topic") == [b'{"id":1}']
    assert [orjson.loads(m) for m in listener.on("t/sqlfilter")] == [
        {"id": 1, "qos": 0, "topic": "t"}
    ]

    # not JSON: Python gets bytes, Node a Buffer; both answer {"bytes": ...}
    listener.publish("t", b"raw text", qos=0)
    wait_for(lambda: len(listener.on("t/py3hi")) == 2 and len(listener.on("t/node8hi")) == 2)
    for topic in ("t/py3hi", "t/node8hi"):
        out = orjson.loads(listener.on(topic)[1])
        assert out["bytes"] == "raw text" and out["Say"] == "Hello Baetyl"

    # callback(new TypeError(...)): a failure, retried (retries: 2), then the error is published
    listener.publish("t", b'{"err":"boom"}', qos=0)
    wait_for(lambda: len(listener.on("t/node8hi")) == 3, timeout=30)
    error = orjson.loads(listener.on("t/node8hi")[2])
    assert error["status"] == "failure"
    assert error["function"] == "sayjs.handler"
    assert error["error"]["type"] == "TypeError"
    assert error["error"]["message"] == "boom"


@pytest.mark.timeout(120)
def test_imported_guide_runs_with_python_and_node(tmp_path, mosquitto, listen, project_cluster):
    seed = tmp_path / "baetyl"
    shutil.copytree(SEED, seed)
    out = convert(sorted(seed.glob("**/*.yml")), broker=f"127.0.0.1:{mosquitto.port}")
    assert {"node85_sayhi.js", "index_js.js", "index.py"} <= set(out.scripts)
    write_project(tmp_path, out)
    _unique_client_ids(tmp_path)
    cluster = project_cluster()
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_connected(cluster, *out.subscriptions)
    listener = listen()
    before = int(time.time())
    listener.publish("t", b'{"id":1}', qos=0)
    topics = ("t/py2hi", "t/py3hi", "t/node8hi", "t/sqlfilter", "t/topic")
    wait_for(lambda: all(listener.on(t) for t in topics), timeout=30)
    time.sleep(0.5)

    for topic, function in (
        ("t/py2hi", "python27_sayhi.handler"),
        ("t/py3hi", "python36_sayhi.handler"),
        ("t/node8hi", "node85_sayhi.handler"),
    ):
        [payload] = listener.on(topic)
        _said_hi(payload, function, before)
    assert listener.on("t/topic") == [b'{"id":1}']
    [sql] = listener.on("t/sqlfilter")
    assert orjson.loads(sql) == {"id": 1, "qos": 0, "topic": "t"}
    assert listener.qos_on("t/sqlfilter") == [1]
