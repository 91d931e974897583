"""A real fnhub cluster for subscription tests: `fnhub worker` and `fnhub server` processes
around the machine's Redis (unique key prefix) and brokers started per test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from tests.conftest import REDIS_URL, free_port
from tests.connectors.conftest import conn_broker_factory  # noqa: F401  (fixture)

from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings

HANDLERS = """
import time
import fnhub


@fnhub.api("count a message", timeout=30)
def count(topic, message):
    if isinstance(message, bytes):
        key = "bin:" + message.hex()[:16]
    else:
        key = message
    delay = float(fnhub.cache.get("delay", 0, scope="ctl") or 0)
    if delay:
        time.sleep(delay)
    fnhub.cache.hincr("seen", key, scope="ctl")
    fnhub.cache.set("last_type", type(message).__name__, scope="ctl")
    return {"topic": topic}


@fnhub.api("remember what the task was told about its message")
def meta(topic, message):
    fnhub.cache.hset("metas", message, fnhub.context.meta, scope="ctl")


@fnhub.api("publish to a connector")
def send(connector: str, topic: str, message: str):
    fnhub.connector(connector).publish(topic, message)
    return True
"""


@dataclass
class Cluster:
    dir: Path
    env: dict[str, str]
    prefix: str
    redis: redis.Redis
    servers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def cli(self, *args: str, node: str = "n1") -> subprocess.Popen[bytes]:
        env = {
            **self.env,
            "FNHUB_NODE_NAME": node,
            "FNHUB_PORT": str(self.ports.setdefault(node, free_port())),
        }
        log = open(self.dir / f"{args[0]}-{node}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fnhub.cli import main; main()",
                *args,
                "-p",
                str(self.dir),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return proc

    def start_worker(self, processes: int = 2) -> None:
        self.worker = self.cli("worker", "--processes", str(processes), "--queues", "sub,sync")

    def start_server(self, node: str = "n1") -> subprocess.Popen[bytes]:
        proc = self.cli("server", node=node)
        self.servers[node] = proc
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (proc.returncode, self.log(f"server-{node}.log"))
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.ports[node]}/healthz", timeout=1).status_code
                    == 200
                ):
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill_server(self, node: str = "n1") -> None:
        proc = self.servers.pop(node)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def seen(self) -> dict[str, int]:
        raw = self.redis.hgetall(f"{self.prefix}:cache:ctl:seen")
        return {k.decode(): int(v) for k, v in raw.items()}

    def set_delay(self, seconds: float) -> None:
        self.redis.set(f"{self.prefix}:cache:ctl:delay", str(seconds))

    def status(self, name: str) -> list[dict]:
        import orjson

        raw = self.redis.hgetall(f"{self.prefix}:subs:status:{name}")
        views = [orjson.loads(v) for v in raw.values()]
        return [v for v in views if time.time() - v["at"] < 3]  # live servers only

    def connected(self, name: str) -> int:
        """How many live servers have this subscription's source connected."""
        return sum((s.get("source") or {}).get("state") == "connected" for s in self.status(name))

    def close(self) -> None:
        """Stop every process of the cluster and remove its Redis keys."""
        for proc in list(self.servers.values()):
            _stop(proc)
        _stop(self.worker)
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            self.redis.delete(*keys[i : i + 500])
        self.redis.close()

    def queue_client(self) -> QueueClient:
        """A client on the cluster's queue, once a worker listens on `sync` (close it after)."""
        settings = Settings(
            redis_url=REDIS_URL,
            key_prefix=self.prefix,
            data_dir=self.dir / ".fnhub",
            db_url=f"sqlite:///{self.dir / 'fnhub.db'}",
            project_dir=self.dir,
        )
        client = QueueClient(settings)
        deadline = time.monotonic() + 20
        while not client.queue_has_worker("sync"):
            assert time.monotonic() < deadline, "no worker on the sync queue"
            time.sleep(0.05)
        return client

    def log(self, name: str) -> str:
        path = self.dir / name
        return path.read_text()[-4000:] if path.exists() else ""


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def new_cluster(
    tmp_path: Path, connectors: dict, subscriptions: dict, extra_scripts: dict | None = None
) -> Cluster:
    """A project in `tmp_path` applied to a fresh key prefix; nothing runs yet (close it after)."""
    prefix = f"tsub{uuid.uuid4().hex[:10]}"
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "handlers.py").write_text(HANDLERS)
    for name, code in (extra_scripts or {}).items():
        filename = name if "." in name else f"{name}.py"  # "x.js": a JavaScript script
        (tmp_path / "scripts" / filename).write_text(code)
    (tmp_path / "fnhub.yaml").write_text(
        yaml.safe_dump({"connectors": connectors, "subscriptions": subscriptions})
    )
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
    apply = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fnhub.cli import main; main()",
            "apply",
            "-p",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if apply.returncode != 0:
        cluster.close()
        raise AssertionError(apply.stderr)
    return cluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator:
    clusters: list[Cluster] = []

    def make(connectors: dict, subscriptions: dict, extra_scripts: dict | None = None) -> Cluster:
        cluster = new_cluster(tmp_path, connectors, subscriptions, extra_scripts)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
