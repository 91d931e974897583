"""A Redis primary, one replica and three Sentinels of a test's own (free ports, a temp dir):
what a failover needs and the machine's shared Redis cannot do."""

from __future__ import annotations

import functools
import subprocess
import time
from pathlib import Path

import redis
from tests.conftest import free_port, wait_for

SERVICE = "fnhub-test"


class SentinelRedis:
    def __init__(
        self, folder: Path, *, replicas: int = 1, min_replicas: int = 0, sentinels: int = 3
    ) -> None:
        """`min_replicas`: the servers' `min-replicas-to-write` (a primary refuses writes
        with fewer replicas in touch: a demoted one stops taking them at once)."""
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in range(1 + replicas)]  # primary first, at the start
        self.min_replicas = min_replicas
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        for i, port in enumerate(self.ports):
            args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
            args += ["--dbfilename", f"dump-{port}.rdb", "--save", "", "--appendonly", "no"]
            if self.min_replicas:
                args += ["--min-replicas-to-write", str(self.min_replicas)]
                args += ["--min-replicas-max-lag", "10"]
            if i:
                args += ["--replicaof", "127.0.0.1", str(self.ports[0])]
            self._spawn(["redis-server", *args], f"redis-{port}.log")
        for port in self.ports:
            wait_for(functools.partial(self._answers, port), timeout=10)
        quorum = max(1, len(self.sentinel_ports) // 2 + 1)
        for port in self.sentinel_ports:
            conf = self.folder / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.ports[0]} {quorum}\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._spawn(["redis-server", str(conf), "--sentinel"], f"sentinel-{port}.log")
        wait_for(self._replica_known, timeout=20)

    def _spawn(self, argv: list[str], log: str) -> None:
        with (self.folder / log).open("ab") as out:
            self.processes.append(subprocess.Popen(argv, stdout=out, stderr=out))

    @staticmethod
    def _answers(port: int) -> bool:
        client = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def sentinel(self, i: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[i], socket_timeout=2, decode_responses=True)

    def primary_port(self) -> int:
        client = self.sentinel()
        try:
            _host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            return int(port)
        finally:
            client.close()

    @staticmethod
    def role(port: int) -> str:
        server = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        try:
            return str(server.info("replication").get("role"))
        except redis.RedisError as exc:
            return f"error: {exc}"
        finally:
            server.close()

    def _replica_known(self) -> bool:
        """Every Sentinel knows the primary's replica, and it is in sync: a failover can go."""
        for i in range(len(self.sentinel_ports)):
            client = self.sentinel(i)
            try:
                replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
                if not replicas:
                    return False
                flags = replicas[0] if isinstance(replicas[0], dict) else {}
                if flags and "s_down" in str(flags.get("flags", "")):
                    return False
            except redis.RedisError:
                return False
            finally:
                client.close()
        for port in self.ports[1:]:
            replica = redis.Redis(port=port, decode_responses=True)
            try:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
            finally:
                replica.close()
        return True

    def failover(self, timeout: float = 30, *, crash: bool = False) -> tuple[int, float]:
        """`SENTINEL FAILOVER` (or, `crash`, SIGKILL the primary and let the Sentinels find
        it down); returns the new primary's port once Sentinels name it and it answers as
        primary, and the seconds that took."""
        before = self.primary_port()
        started = time.monotonic()
        if crash:
            self.processes[self.ports.index(before)].kill()
        else:
            client = self.sentinel()
            try:
                client.execute_command("SENTINEL", "FAILOVER", SERVICE)
            finally:
                client.close()

        def switched() -> bool:
            port = self.primary_port()
            if port == before:
                return False
            server = redis.Redis(port=port, decode_responses=True)
            try:
                return bool(server.info("replication").get("role") == "master")
            finally:
                server.close()

        wait_for(switched, timeout=timeout)
        return self.primary_port(), time.monotonic() - started

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.processes.clear()
