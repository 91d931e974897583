"""examples/baetyl-sayhi: the Baetyl guide's scenario on a real broker, worker and server.

The Python and SQL rules and the route, without the Node rule (its script is left out, so this
runs where no Node is installed): both runtimes together are test_baetyl_sayhi_node.py."""

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

EXAMPLE = Path(__file__).parents[2] / "examples" / "baetyl-sayhi"
NAMES = ("func-python36-sayhi-1", "func-sql-filter-1", "route-t-to-t_topic")


@pytest.mark.timeout(90)
def test_sayhi_python_sql_and_route_outputs(tmp_path, mosquitto, listen, project_cluster):
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "scripts" / "sayjs.js").unlink()
    project = yaml.safe_load((tmp_path / "fnhub.yaml").read_text())
    del project["subscriptions"]["func-node85-sayhi-1"]
    project["connectors"]["baetyl"]["settings"]["port"] = mosquitto.port
    suffix = uuid.uuid4().hex[:6]  # client ids unique per run: the sessions are persistent
    for name in ("func-python36-sayhi-1", "func-sql-filter-1"):
        project["subscriptions"][name]["options"]["client_id"] = f"{name}-{suffix}"
    (tmp_path / "fnhub.yaml").write_text(yaml.safe_dump(project))
    cluster = project_cluster()
    cluster.start_worker(processes=2)
    cluster.start_server()
    wait_connected(cluster, *NAMES)
    listener = listen()
    before = int(time.time())
    listener.publish("t", b'{"id":1}', qos=0)  # MQTTBox's default QoS in the guide
    wait_for(lambda: all(listener.on(t) for t in ("t/py3hi", "t/sqlfilter", "t/topic")), timeout=20)
    time.sleep(0.5)  # nothing more may come

    assert listener.on("t/topic") == [b'{"id":1}']
    [sql] = listener.on("t/sqlfilter")
    assert orjson.loads(sql) == {"id": 1, "qos": 0, "topic": "t"}
    [py] = listener.on("t/py3hi")
    out = orjson.loads(py)
    assert before <= out.pop("messageTimestamp") <= time.time()
    uuid.UUID(out.pop("functionInvokeID"))
    assert out == {
        "id": 1,
        "messageQOS": 0,
        "messageTopic": "t",
        "functionName": "sayhi.handler",
        "Say": "Hello Baetyl",
    }
    assert list(orjson.loads(py)) == [  # the handler's insertion order is kept
        "id",
        "messageQOS",
        "messageTopic",
        "messageTimestamp",
        "functionName",
        "functionInvokeID",
        "Say",
    ]
    # QoS as configured in the rules: 0 for the Python rule and the route, 1 for the SQL rule
    assert listener.qos_on("t/py3hi") == [0]
    assert listener.qos_on("t/topic") == [0]
    assert listener.qos_on("t/sqlfilter") == [1]

    # WHERE false: no output; the other two still answer
    listener.publish("t", b'{"id":10}', qos=0)
    wait_for(lambda: len(listener.on("t/topic")) == 2 and len(listener.on("t/py3hi")) == 2)
    time.sleep(0.5)
    assert len(listener.on("t/sqlfilter")) == 1
