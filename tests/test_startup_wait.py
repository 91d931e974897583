"""Roles started before Redis or the database wait for them, saying so, then serve: a cluster's
processes come up in any order (machines reboot together, containers start in parallel)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from tests.conftest import POSTGRES_URL, REDIS_URL, call_ok, free_port, wait_for
from tests.private_redis import PrivateRedis

from fnhub.bootstrap import open_services
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings
from fnhub.keys import Keys

SCRIPT = """
import fnhub


@fnhub.api("echo")
def echo(value=None):
    return value
"""


class Roles:
    """`fnhub <role>` processes of one test, their logs in files."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{role}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", "from fnhub.cli import main; main()", role, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[role] = process
        return process

    def log(self, role: str) -> str:
        return (self.folder / f"{role}.log").read_text()

    def waiting(self, role: str, what: str) -> bool:
        """The role is up, and has said at least twice that it waits for `what`."""
        process = self.processes[role]
        assert process.poll() is None, (process.returncode, self.log(role)[-3000:])
        return self.log(role).count(f"waiting for {what}") >= 2

    def settings(self) -> Settings:
        """The roles' settings, for the test's own clients."""
        env = self.env
        return Settings(
            project_dir=self.folder,
            data_dir=Path(env["FNHUB_DATA_DIR"]),
            redis_url=env["FNHUB_REDIS_URL"],
            db_url=env["FNHUB_DB_URL"],
            key_prefix=env["FNHUB_KEY_PREFIX"],
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[Roles]:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "demo.py").write_text(SCRIPT)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        "FNHUB_KEY_PREFIX": f"wait-{uuid.uuid4().hex[:10]}",
        "FNHUB_DATA_DIR": str(tmp_path / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp_path / 'fnhub.db'}",
        "FNHUB_REDIS_URL": REDIS_URL,
        "FNHUB_PROCESSES": "1",
        "FNHUB_HEARTBEAT_SECONDS": "0.5",
        "FNHUB_PORT": str(free_port()),
        "FNHUB_ACCESS_LOG": "false",
    }
    r = Roles(tmp_path, env)
    yield r
    r.stop()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{env['FNHUB_KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _healthy(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_worker_server_and_beat_wait_for_redis_then_serve(roles: Roles, tmp_path: Path) -> None:
    late = PrivateRedis(tmp_path / "redis")
    roles.env["FNHUB_REDIS_URL"] = late.url
    try:
        for role in ("worker", "server", "beat"):
            roles.start(role, "-p", str(roles.folder))
        for role in ("worker", "server", "beat"):
            wait_for(lambda r=role: roles.waiting(r, f"Redis at {late.url}"), timeout=60)
        assert "Connection refused" in roles.log("worker")
        late.start()
        settings = roles.settings()
        keys = Keys(settings.key_prefix)
        client = redis.Redis.from_url(late.url)
        wait_for(lambda: client.hlen(keys.workers), timeout=30)  # the worker is on
        wait_for(lambda: client.get(keys.beat_leader), timeout=30)  # the beat leads
        wait_for(lambda: _healthy(roles.env["FNHUB_PORT"]), timeout=30)  # the server serves
        services = open_services(settings)
        services.scripts.publish({"demo": SCRIPT})
        services.close()
        caller = QueueClient(settings)
        assert call_ok(caller, "demo.echo", {"value": "up"}).result == "up"
        caller.close()
        client.close()
        for role in ("worker", "server", "beat"):
            assert f"Redis at {late.url} is up" in roles.log(role)
    finally:
        roles.stop()
        late.close()


def test_server_and_beat_wait_for_a_database_created_later(roles: Roles) -> None:
    name = f"fnhub_wait_{uuid.uuid4().hex[:10]}"
    roles.env["FNHUB_DB_URL"] = f"{POSTGRES_URL}/{name}"
    admin = psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True)
    try:
        roles.start("server", "-p", str(roles.folder))
        roles.start("beat", "-p", str(roles.folder))
        roles.start("worker", "-p", str(roles.folder))
        for role in ("server", "beat"):
            wait_for(lambda r=role: roles.waiting(r, "the database at postgresql://"), timeout=60)
            assert f'database "{name}" does not exist' in roles.log(role)
        admin.execute(f'CREATE DATABASE "{name}"')
        wait_for(lambda: _healthy(roles.env["FNHUB_PORT"]), timeout=60)
        settings = roles.settings()
        keys = Keys(settings.key_prefix)
        client = redis.Redis.from_url(REDIS_URL)
        wait_for(lambda: client.get(keys.beat_leader), timeout=30)
        client.close()
        services = open_services(settings)
        services.scripts.publish({"demo": SCRIPT})
        services.close()
        caller = QueueClient(settings)
        assert call_ok(caller, "demo.echo", {"value": 1}).result == 1
        caller.close()
    finally:
        roles.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_waiting_role_stops_at_once_on_sigterm(roles: Roles, tmp_path: Path) -> None:
    late = PrivateRedis(tmp_path / "redis")
    roles.env["FNHUB_REDIS_URL"] = late.url
    for role in ("worker", "server"):
        roles.start(role, "-p", str(roles.folder))
    for role in ("worker", "server"):
        wait_for(lambda r=role: roles.waiting(r, "Redis at"), timeout=60)
    started = time.monotonic()
    for process in roles.processes.values():
        process.send_signal(signal.SIGTERM)
    for process in roles.processes.values():
        process.wait(10)
    assert time.monotonic() - started < 5
