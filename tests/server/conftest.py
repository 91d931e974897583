"""A real fnhub stack per test module: Redis on 6379 (unique key prefix), SQLite in a temp dir,
a worker supervisor and an HTTP server (uvicorn, random port) as subprocesses, driven by httpx.
"""

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
from tests.conftest import free_port

from fnhub.bootstrap import open_services
from fnhub.config import load_settings
from fnhub.features import FEATURES
from fnhub.project import apply_project
from fnhub.redis_client import sync_redis
from fnhub.server.auth import create_key

SCRIPT = """
import time
import fnhub


@fnhub.api("Echo kwargs back")
def echo(**kwargs):
    return kwargs


@fnhub.api("Add")
def add(a: float, b: float) -> float:
    return a + b


@fnhub.api("Raise")
def fail(message: str = "boom"):
    raise ValueError(message)


@fnhub.api("Sleep", timeout=1)
def slow(seconds: float = 5):
    time.sleep(seconds)
    return seconds


@fnhub.api("Falsy values")
def falsy(kind: str):
    return {"zero": 0, "false": False, "empty": "", "list": [], "none": None}[kind]


@fnhub.api("Count calls")
def counted(key: str = "n"):
    return fnhub.cache.incr(key)


@fnhub.api("Shape the HTTP answer")
def shaped(kind: str = "text"):
    if kind == "text":
        return fnhub.Response("hi there", status=201, headers={"X-Extra": "1"})
    if kind == "file":
        return fnhub.Response(b"\\x00\\x01binary", filename="data.bin",
                              content_type="application/octet-stream")
    return fnhub.Response({"made": True}, status=202)


@fnhub.api("Size of an upload")
def upload(file, note: str = ""):
    import base64
    return {"name": file["filename"], "size": len(base64.b64decode(file["base64"])),
            "type": file["content_type"], "note": note}


@fnhub.api("Let requests with header X-Let-In: yes pass")
def allow(request):
    return request["headers"].get("x-let-in") == "yes"
"""


#: functions that fail in the ways task records and dead letters care about (script "rec")
RECORDS_SCRIPT = """
import time
import fnhub


@fnhub.api("Fails on every attempt", retries=1, retry_delay=0.1)
def flaky(order: str):
    print(f"attempt {fnhub.context.attempt} for {order}")
    raise ValueError(f"order {order} broke on attempt {fnhub.context.attempt}")


@fnhub.api("Dead-lettered failure", dead_letter=True)
def brittle(x: int):
    raise KeyError(x)


@fnhub.api("Another dead-lettered failure", dead_letter=True)
def cracked(x: int):
    raise RuntimeError(f"cracked {x}")


@fnhub.api("Dead-lettered timeout", dead_letter=True, timeout=0.5)
def sleepy():
    time.sleep(5)
"""


def _cli(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A CLI process whose stderr goes to `log`: a pipe nobody reads would fill up with a
    busy test's log lines and then block the process."""
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", "from fnhub.cli import main; main()", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Stack:
    dir: Path
    env: dict[str, str]
    prefix: str
    url: str
    token: str
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None
    redis: redis.Redis
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def admin(self) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {self.token}"})


def make_stack(
    tmp: Path,
    *,
    workers: bool = True,
    script: str = SCRIPT,
    redis_url: str = "redis://127.0.0.1:6379/0",
    **settings: str,
) -> Stack:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    (tmp / "scripts").mkdir(parents=True)
    (tmp / "scripts" / "demo.py").write_text(script)
    port = free_port()
    env = {
        **os.environ,
        "FNHUB_REDIS_URL": redis_url,
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_DATA_DIR": str(tmp / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp / 'fnhub.db'}",
        "FNHUB_PROCESSES": "2",
        "FNHUB_PORT": str(port),
        "FNHUB_ACCESS_LOG": "false",
        **{f"FNHUB_{k.upper()}": v for k, v in settings.items()},
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        conf = load_settings(tmp)
        services = open_services(conf)
        apply_project(conf, services.scripts, FEATURES)
        _row, token = create_key(services.db, "tests")
        services.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    worker = _cli("worker", "-p", str(tmp), env=env, log=tmp / "worker.log") if workers else None
    server = _cli("server", "-p", str(tmp), env=env, log=tmp / "server.log")
    stack = Stack(
        tmp,
        env,
        prefix,
        f"http://127.0.0.1:{port}",
        token,
        server,
        worker,
        sync_redis(conf),  # a redis+sentinel:// URL too
    )
    deadline = time.monotonic() + 90  # generous: CI machines can be slow to spawn
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {(tmp / 'server.log').read_text()[-3000:]}")
        try:
            answer = httpx.get(f"{stack.url}/readyz", timeout=2)
            if answer.status_code == 200 or (not workers and answer.status_code == 503):
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("server not ready in 90 s")
        time.sleep(0.1)
    return stack


def close_stack(stack: Stack) -> None:
    stop(stack.server)
    for p in [*stack.extra, *([stack.worker] if stack.worker else [])]:
        stop(p)
    keys = list(stack.redis.scan_iter(match=f"{stack.prefix}:*", count=1000))
    if keys:
        stack.redis.delete(*keys)
    stack.redis.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("stack"), queue_max_length="50", body_max_bytes="200000")
    try:
        yield s
    finally:
        close_stack(s)
