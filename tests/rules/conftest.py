"""Rules end to end: an own mosquitto per test, a project folder applied with `fnhub apply`, real
`fnhub worker` and `fnhub server` processes (the subscriptions harness), and an MQTT listener."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import redis
from tests.conftest import REDIS_URL, wait_for
from tests.connectors.conftest import conn_broker_factory  # noqa: F401  (fixture)
from tests.subscriptions.conftest import Cluster


class Listener:
    """A plain MQTT 3.1.1 client subscribed to `#`, keeping what arrives (topic, payload, qos)."""

    def __init__(self, port: int, topic: str = "#") -> None:
        self.messages: list[tuple[str, bytes, int]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"listener-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "listener did not subscribe"

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.qos))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def qos_on(self, topic: str) -> list[int]:
        with self.lock:
            return [q for t, _, q in self.messages if t == topic]

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def mosquitto(conn_broker_factory):  # noqa: F811
    if not shutil.which("mosquitto"):
        pytest.skip("mosquitto not installed")
    return conn_broker_factory("mosquitto")


@pytest.fixture
def listen(mosquitto) -> Iterator[Callable[..., Listener]]:
    listeners: list[Listener] = []

    def make(topic: str = "#") -> Listener:
        listener = Listener(mosquitto.port, topic)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


def fnhub_cmd(env: dict[str, str], project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from fnhub.cli import main; main()", *args, "-p", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def project_cluster(tmp_path: Path) -> Iterator[Callable[[], Cluster]]:
    """A Cluster over the project already written in tmp_path (fnhub.yaml + scripts/)."""
    clusters: list[Cluster] = []

    def make() -> Cluster:
        prefix = f"trule{uuid.uuid4().hex[:10]}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
            "FNHUB_REDIS_URL": REDIS_URL,
            "FNHUB_KEY_PREFIX": prefix,
            "FNHUB_DATA_DIR": str(tmp_path / ".fnhub"),
            "FNHUB_DB_URL": f"sqlite:///{tmp_path / 'fnhub.db'}",
            "FNHUB_HEARTBEAT_SECONDS": "0.5",
            "FNHUB_ACCESS_LOG": "false",
        }
        cluster = Cluster(tmp_path, env, prefix, redis.Redis.from_url(REDIS_URL))
        clusters.append(cluster)
        applied = fnhub_cmd(env, tmp_path, "apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()


def wait_connected(cluster: Cluster, *names: str, timeout: float = 20) -> None:
    """Until every named subscription is subscribed on its broker (status written each second)."""

    def ready() -> bool:
        return all(
            any(s.get("source", {}).get("state") == "connected" for s in cluster.status(n))
            for n in names
        )

    try:
        wait_for(ready, timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(
            f"not connected: {[(n, cluster.status(n)) for n in names]}\n"
            + cluster.log("server-n1.log")
        ) from None
    time.sleep(0.2)  # the SUBACK came before 'connected'; a little slack for the broker
