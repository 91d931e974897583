"""The cluster: infrastructure and fnhub roles on their test hosts, and the project they run.

Hosts (last octet of each address): Redis primary and replica, three Sentinels, PostgreSQL,
Mosquitto, a Redis that serves as the Redis Streams broker (the `redis` connector takes no
Sentinel URL), Tansu (Kafka; with `tansu_s3` its log in S3, a moto server beside it), two
`fnhub server`, three
`fnhub worker`, two `fnhub beat`, a WebSub subscriber, and `ctl`, where this tool itself and its
load run."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from bench.clusterlib.net import Net
from bench.clusterlib.procs import Proc, Supervisor

HOSTS = {
    "ctl": 2,
    "redis1": 11,
    "redis2": 12,
    "sentinel1": 21,
    "sentinel2": 22,
    "sentinel3": 23,
    "pg": 31,
    "mqtt": 41,
    "kafka": 42,
    "streams": 43,
    "server1": 51,
    "server2": 52,
    "worker1": 61,
    "worker2": 62,
    "worker3": 63,
    "beat1": 71,
    "beat2": 72,
    "subscriber": 81,  # the WebSub subscriber (`subscriber.py`)
}
SERVICE = "fnhub"
PREFIX = "fnc"
PORT = 8090
WEBSUB_PORT = 8099  # the WebSub subscriber's, on host subscriber
S3_PORT = 9000  # the S3 endpoint (moto) that keeps Tansu's log, on host kafka
CLI = [sys.executable, "-c", "from fnhub.cli import main; main()"]

SCRIPT = """
import time
import fnhub

MARKS = {marks!r}
WORK = {work!r}


def _mark(kind, ident):
    time.sleep(WORK)  # a function that takes a moment: a kill finds some of them running
    # one short O_APPEND write per run: what ran is known apart from Redis, whatever it lost
    with open(MARKS, "a") as out:
        out.write(f"{{kind}} {{ident}} {{time.time():.3f}}\\n")


@fnhub.api("an asynchronous HTTP call's work")
def job(n: str):
    _mark("http", n)
    return n


@fnhub.api("a synchronous HTTP call")
def add(a: float, b: float) -> float:
    return a + b


@fnhub.api("an MQTT QoS 1 message")
def on_mqtt(topic, message):
    _mark("mqtt", message)


@fnhub.api("a Redis Streams entry")
def on_stream(topic, message):
    _mark("stream", message)


@fnhub.api("a Kafka message")
def on_kafka(topic, message):
    _mark("kafka", message)


@fnhub.api("a cron tick, every second")
def tick():
    _mark("cron", fnhub.context.meta["cron"]["tick"])
"""


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def tansu_on_s3(host: str, port: int, s3_port: int) -> tuple[list[str], list[str], dict[str, str]]:
    """An S3 endpoint (moto server, in memory) on `host`:`s3_port` and a Tansu on `host`:`port`
    keeping its log in its bucket `tansu`: the endpoint's argv, Tansu's argv and environment.
    Tansu's topics, records and committed offsets outlive Tansu (not the endpoint)."""
    from tests.connectors.conftest import tansu_argv

    env = dict(
        os.environ,
        AWS_ENDPOINT=f"http://{host}:{s3_port}",
        AWS_ACCESS_KEY_ID="fnhub",
        AWS_SECRET_ACCESS_KEY="fnhub",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
    s3_argv = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(s3_port)]
    return s3_argv, tansu_argv(port, host, storage="s3://tansu/"), env


def create_bucket(endpoint: str) -> None:
    """Tansu's bucket (moto takes an unsigned PUT)."""
    httpx.put(f"{endpoint}/tansu", timeout=10).raise_for_status()


def wait_port(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host}:{port} not listening after {timeout}s") from None
            time.sleep(0.1)


@dataclass
class Cluster:
    net: Net
    dir: Path
    kafka: bool = True
    tansu_s3: bool = False  # Tansu's log in S3 (moto) beside it, not in its memory
    worker_processes: int = 2
    work: float = 0.01  # seconds each load function takes
    procs: dict[str, Proc] = field(default_factory=dict)
    token: str = ""
    supervisor: Supervisor | None = None

    # -- addresses -------------------------------------------------------------------------
    def addr(self, host: str) -> str:
        return self.net.addr(HOSTS[host])

    @property
    def redis_url(self) -> str:
        hosts = ",".join(f"{self.addr(f'sentinel{i}')}:26379" for i in (1, 2, 3))
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    @property
    def db_url(self) -> str:
        return f"postgresql://postgres@{self.addr('pg')}:5432/postgres"

    @property
    def marks(self) -> Path:
        return self.dir / "marks.txt"

    @property
    def websub_topic(self) -> str:
        return f"http://{self.addr('subscriber')}:{WEBSUB_PORT}/topic"

    @property
    def websub_callback(self) -> str:
        return f"http://{self.addr('subscriber')}:{WEBSUB_PORT}/callback"

    def server_urls(self) -> list[str]:
        return [f"http://{self.addr(h)}:{PORT}" for h in ("server1", "server2")]

    def sentinel(self) -> redis.Redis:
        return redis.Redis(self.addr("sentinel1"), 26379, socket_timeout=2, decode_responses=True)

    def primary(self) -> str:
        """The host Sentinels name as primary."""
        with self.sentinel() as s:
            host, _port = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return next(h for h in ("redis1", "redis2") if self.addr(h) == host)

    def redundant(self) -> bool:
        """Redis has its replica again: the primary Sentinels name lists one online, and the
        other host follows it with its link up (a restarted primary comes back empty and alone
        until Sentinels turn it into a replica, ~10 s: a primary killed before then would hand
        the Sentinels a replica with nothing in it)."""
        try:
            primary = self.primary()
            replica = "redis2" if primary == "redis1" else "redis1"
            with redis.Redis(self.addr(primary), 6379, socket_timeout=2) as p:
                lead = p.info("replication")
            with redis.Redis(self.addr(replica), 6379, socket_timeout=2) as r:
                follow = r.info("replication")
        except (redis.RedisError, StopIteration):
            return False
        online = any(
            isinstance(v, dict) and v.get("state") == "online"
            for k, v in lead.items()
            if k.startswith("slave")
        )
        return (
            lead.get("role") == "master"
            and online
            and follow.get("role") == "slave"
            and follow.get("master_link_status") == "up"
        )

    def wait_redundant(self, timeout: float = 60.0) -> float:
        """Wait until `redundant`; the seconds it took (the next fault starts on a whole
        cluster, not on the last one's half-mended Redis)."""
        started = time.monotonic()
        while not self.redundant() and time.monotonic() - started < timeout:
            time.sleep(0.2)
        return round(time.monotonic() - started, 2)

    def data_redis(self) -> redis.Redis:
        """fnhub's Redis as its roles see it (through the Sentinels)."""
        from redis.sentinel import Sentinel

        sentinels = [(self.addr(f"sentinel{i}"), 26379) for i in (1, 2, 3)]
        return Sentinel(sentinels, socket_timeout=2).master_for(SERVICE, socket_timeout=2)

    # -- processes ---------------------------------------------------------------------------
    def _proc(
        self,
        name: str,
        host: str,
        argv: list[str],
        *,
        supervised: bool = False,
        env: dict[str, str] | None = None,
    ) -> Proc:
        proc = Proc(
            name, self.net.ns(host), argv, self.dir / "logs" / f"{name}.log", env, supervised
        )
        self.procs[name] = proc
        return proc.start()

    def start_infrastructure(self) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self._start_redis()
        self._start_postgres()
        self._start_mosquitto()
        self._start_streams_broker()
        if self.kafka:
            self._start_kafka()

    def _start_redis(self) -> None:
        rdir = self.dir / "redis"
        rdir.mkdir()
        for host in ("redis1", "redis2"):
            # a file, not flags: Sentinel rewrites it (CONFIG REWRITE) when it turns a node into
            # a replica, so a node restarted later comes back following the primary, as in a
            # real deployment; started from flags it would come back a primary of nothing
            conf = rdir / f"{host}.conf"
            lines = [
                "port 6379",
                f"bind {self.addr(host)}",
                f"dir {rdir}",
                f"dbfilename {host}.rdb",
                'save ""',
                "appendonly no",
                "protected-mode no",
                # a replica's full resync starts at once instead of after Redis's default 5 s
                # wait for more replicas: with enqueue_replicas 1 that wait is a refusal window
                "repl-diskless-sync-delay 0",
            ]
            if host == "redis2":
                lines.append(f"replicaof {self.addr('redis1')} 6379")
            conf.write_text("\n".join(lines) + "\n")
            self._proc(host, host, ["redis-server", str(conf)])
        for host in ("redis1", "redis2"):
            wait_port(self.addr(host), 6379)
        for i in (1, 2, 3):
            host = f"sentinel{i}"
            conf = rdir / f"{host}.conf"
            conf.write_text(
                f"port 26379\nbind {self.addr(host)}\nprotected-mode no\ndir {rdir}\n"
                f"sentinel monitor {SERVICE} {self.addr('redis1')} 6379 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._proc(host, host, ["redis-server", str(conf), "--sentinel"])
        for i in (1, 2, 3):
            wait_port(self.addr(f"sentinel{i}"), 26379)
        deadline = time.monotonic() + 30
        while not self._replica_synced():
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.2)

    def _replica_synced(self) -> bool:
        try:
            with self.sentinel() as s:
                replicas = s.execute_command("SENTINEL", "REPLICAS", SERVICE)
            replica = redis.Redis(self.addr("redis2"), 6379, decode_responses=True)
            with replica:
                up = replica.info("replication").get("master_link_status") == "up"
            return bool(replicas) and up
        except redis.RedisError:
            return False

    def _start_postgres(self) -> None:
        data = self.dir / "pg"
        data.mkdir()
        os.chown(data, *_ids("postgres"))
        as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]
        initdb = Proc(
            "initdb",
            self.net.ns("pg"),
            [*as_pg, str(pg_bin() / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            self.dir / "logs" / "initdb.log",
        ).start()
        assert initdb.popen is not None
        if initdb.popen.wait(120) != 0:
            raise RuntimeError((self.dir / "logs" / "initdb.log").read_text()[-2000:])
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.net.subnet}.0/24 trust\n")
        self._proc(
            "postgres",
            "pg",
            [
                *as_pg,
                str(pg_bin() / "postgres"),
                "-D",
                str(data),
                "-p",
                "5432",
                "-c",
                f"listen_addresses={self.addr('pg')}",
                "-k",
                str(data),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
            ],
        )
        wait_port(self.addr("pg"), 5432)

    def restart_postgres(self) -> None:
        """A fast shutdown (SIGINT: connections closed, clean checkpoint), then start again."""
        proc = self.procs["postgres"]
        proc.held = True
        proc.signal(2)
        assert proc.popen is not None
        proc.popen.wait(60)
        proc.start()
        wait_port(self.addr("pg"), 5432)

    def _start_mosquitto(self) -> None:
        mdir = self.dir / "mosquitto"
        mdir.mkdir()
        os.chmod(mdir, 0o777)
        conf = mdir / "mosquitto.conf"
        conf.write_text(
            f"listener 1883 {self.addr('mqtt')}\nallow_anonymous true\n"
            f"persistence true\npersistence_location {mdir}/\nautosave_interval 1\n"
            "max_queued_messages 100000\nmax_inflight_messages 1000\n"
            f"log_dest file {mdir}/mosquitto.log\n"
        )
        self._proc("mosquitto", "mqtt", ["mosquitto", "-c", str(conf)])
        wait_port(self.addr("mqtt"), 1883)

    def _start_streams_broker(self) -> None:
        sdir = self.dir / "streams"
        sdir.mkdir()
        self._proc(
            "streams",
            "streams",
            [
                "redis-server",
                "--port",
                "6379",
                "--bind",
                self.addr("streams"),
                "--dir",
                str(sdir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--protected-mode",
                "no",
            ],
        )
        wait_port(self.addr("streams"), 6379)

    def _start_kafka(self) -> None:
        """Tansu, its log in memory (a restart loses every topic and offset: its faults measure
        Tansu) or, with `tansu_s3`, in S3: a moto server on the same host (`tansu_on_s3`),
        which costs ~0.7 of a core at the Kafka flow's 40 msg/s and slows as objects pile up,
        so not the default (docs/operations.md, "Tansu on S3")."""
        from tests.connectors.conftest import tansu_argv

        if not self.tansu_s3:
            self._proc("tansu", "kafka", tansu_argv(9092, self.addr("kafka")))
            wait_port(self.addr("kafka"), 9092)
            return
        s3_argv, argv, env = tansu_on_s3(self.addr("kafka"), 9092, S3_PORT)
        self._proc("s3", "kafka", s3_argv)
        wait_port(self.addr("kafka"), S3_PORT)
        create_bucket(env["AWS_ENDPOINT"])
        self._proc("tansu", "kafka", argv, env=env)
        wait_port(self.addr("kafka"), 9092)

    def restart(
        self, name: str, *, port: tuple[str, int] | None = None, crash: bool = False
    ) -> None:
        """SIGTERM a service (or, with `crash`, kill -9 its process group and wait 1 s, as
        systemd's `RestartSec=1` would), start it again and wait for its port."""
        proc = self.procs[name]
        if crash:
            proc.crash()
            time.sleep(1.0)
        else:
            proc.stop()
        proc.start()
        if port:
            wait_port(*port)

    # -- the project -----------------------------------------------------------------------
    def write_project(self) -> Path:
        project = self.dir / "project"
        (project / "scripts").mkdir(parents=True)
        self.marks.touch()
        os.chmod(self.marks, 0o666)
        script = SCRIPT.format(marks=str(self.marks), work=self.work)
        (project / "scripts" / "load.py").write_text(script)
        connectors: dict[str, Any] = {
            "mq": {"type": "mqtt", "settings": {"host": self.addr("mqtt"), "port": 1883}},
            "rs": {"type": "redis", "settings": {"url": f"redis://{self.addr('streams')}:6379/0"}},
        }
        subscriptions: dict[str, Any] = {
            "mqtt-load": {
                "connector": "mq",
                "topics": ["load/#"],
                "function": "load.on_mqtt",
                "window": 100,
                "options": {"qos": 1},
                "record_limit": 100000,
            },
            "stream-load": {
                "connector": "rs",
                "topics": ["load"],
                "function": "load.on_stream",
                "window": 100,
                "options": {"kind": "stream", "start": "0"},
                "record_limit": 100000,
            },
        }
        if self.kafka:
            connectors["kf"] = {
                "type": "kafka",
                "settings": {"bootstrap_servers": f"{self.addr('kafka')}:9092"},
            }
            subscriptions["kafka-load"] = {
                "connector": "kf",
                "topics": ["load"],
                "function": "load.on_kafka",
                "window": 100,
                "options": {"start": "earliest"},
                "record_limit": 100000,
            }
        (project / "fnhub.yaml").write_text(
            yaml.safe_dump(
                {
                    "connectors": connectors,
                    "subscriptions": subscriptions,
                    "cron_jobs": [
                        {
                            "id": "every-second",
                            "function": "load.tick",
                            "expr": "* * * * * *",
                            "overlap": "allow",
                            "record_limit": 100000,
                        }
                    ],
                }
            )
        )
        return project

    def env(self, host: str) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
            "FNHUB_REDIS_URL": self.redis_url,
            "FNHUB_DB_URL": self.db_url,
            "FNHUB_KEY_PREFIX": PREFIX,
            "FNHUB_SECRET_KEY": "cluster-test-secret-key-not-for-production",
            "FNHUB_DATA_DIR": str(self.dir / host / ".fnhub"),
            "FNHUB_NODE_NAME": host,
            "FNHUB_HOST": self.addr(host),
            "FNHUB_PORT": str(PORT),
            "FNHUB_ACCESS_LOG": "false",
            "FNHUB_PROCESSES": str(self.worker_processes),
            "FNHUB_RECORDS_KEEP_PER_ORIGIN": "1000000",  # every task's record, to explain a loss
            # the WebSub load: any topic, a subscriber on host ctl (a private address), and no
            # rate limit on the load's publishes
            "FNHUB_WEBSUB_OPEN": "true",
            "FNHUB_WEBSUB_ALLOW_NETWORKS": f"{self.net.subnet}.0/24",
            "FNHUB_WEBSUB_PUBLISH_PER_MINUTE": "0",
        }

    def apply(self, project: Path) -> None:
        """Migrate, apply the project and make an API key, in this process (host `ctl`)."""
        from fnhub.bootstrap import open_services
        from fnhub.config import load_settings
        from fnhub.features import FEATURES
        from fnhub.project import apply_project
        from fnhub.server.auth import create_key

        saved = dict(os.environ)
        os.environ.update(self.env("ctl"))
        try:
            conf = load_settings(project)
            services = open_services(conf)
            apply_project(conf, services.scripts, FEATURES)
            _row, self.token = create_key(services.db, "cluster")
            services.close()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start_roles(self, project: Path) -> None:
        p = ["-p", str(project)]
        for host in ("worker1", "worker2", "worker3"):
            self._proc(host, host, [*CLI, "worker", *p], supervised=True, env=self.env(host))
        for host in ("server1", "server2"):
            self._proc(host, host, [*CLI, "server", *p], supervised=True, env=self.env(host))
        for host in ("beat1", "beat2"):
            self._proc(host, host, [*CLI, "beat", *p], supervised=True, env=self.env(host))
        self.supervisor = Supervisor(list(self.procs.values()))
        self.supervisor.start()
        for url in self.server_urls():
            self.wait_ready(url)
        self._start_websub_subscriber()

    def _start_websub_subscriber(self) -> None:
        from bench.clusterlib import subscriber

        argv = [sys.executable, subscriber.__file__, self.addr("subscriber"), str(WEBSUB_PORT)]
        self._proc("subscriber", "subscriber", [*argv, str(self.marks)])
        wait_port(self.addr("subscriber"), WEBSUB_PORT)
        subscriber.subscribe(
            self.server_urls()[0], self.token, self.websub_topic, self.websub_callback
        )

    def wait_ready(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout}s")
            time.sleep(0.2)

    def roles(self, kind: str) -> list[Proc]:
        return [p for n, p in self.procs.items() if n.startswith(kind) and p.supervised]

    def beat_leader(self) -> str | None:
        """The beat host whose process holds the leader lease (its id names the pid)."""
        try:
            raw = self.data_redis().get(f"{PREFIX}:beat:leader")
        except redis.RedisError:
            return None
        if not raw:
            return None
        owner = raw.decode()
        for proc in self.roles("beat"):
            if proc.alive() and f"-{proc.pid}-" in owner:
                return proc.name
        return None

    def websub_owner(self) -> str | None:
        """The server host whose process holds the claim of the (one) WebSub subscription."""
        try:
            client = self.data_redis()
            keys = list(client.scan_iter(match=f"{PREFIX}:websub:owner:*", count=100))
            owners = [raw.decode() for raw in client.mget(keys) if raw] if keys else []
        except redis.RedisError:
            return None
        for proc in self.roles("server"):
            if proc.alive() and any(f"-{proc.pid}-" in owner for owner in owners):
                return proc.name
        return None

    def subscription_holders(self) -> dict[str, str]:
        """subscription → the server host whose process holds its `single` lease now."""
        try:
            client = self.data_redis()
            names = ("kafka-load", "mqtt-load", "stream-load")
            owners = client.mget([f"{PREFIX}:subs:lease:{n}" for n in names])
        except redis.RedisError:
            return {}
        held = {}
        for name, raw in zip(names, owners, strict=True):
            for proc in self.roles("server"):
                if raw and proc.alive() and f"-{proc.pid}-" in raw.decode():
                    held[name] = proc.name
        return held

    def records_of(self, ident: str) -> list[dict[str, Any]]:
        """The task records whose kwargs hold this load id: what happened to a lost item."""
        import psycopg

        with psycopg.connect(self.db_url, connect_timeout=5) as db:
            rows = db.execute(
                "SELECT id, status, attempt, origin_id, queue, trigger_time, start_time, "
                "end_time, error_type, error_message FROM task_records WHERE kwargs::text "
                "LIKE %s",
                (f'%"{ident}"%',),
            ).fetchall()
        names = (
            "id",
            "status",
            "attempt",
            "origin",
            "queue",
            "trigger",
            "start",
            "end",
            "error_type",
            "error",
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def stop(self) -> None:
        if self.supervisor:
            self.supervisor.stop()
        # the roles first, all at once (each drains within its grace period), then the rest
        roles = [p for p in self.procs.values() if p.supervised]
        for group in (roles, [p for p in self.procs.values() if not p.supervised]):
            for proc in group:
                proc.held = True
                proc.signal(15)
            deadline = time.monotonic() + 12
            for proc in group:
                if proc.popen is not None:
                    try:
                        proc.popen.wait(max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        proc.kill9()


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
