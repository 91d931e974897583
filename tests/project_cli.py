"""Driving the real `fnhub` command line in a temp project, as a user would: one-shot commands,
and `fnhub serve` as a process whose console goes to `<project>/serve.log`."""

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
import redis
from tests.conftest import REDIS_URL, free_port, wait_for


def fnhub(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fnhub.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def embedded_env() -> dict[str, str]:
    """A project on embedded defaults (its own Redis under .fnhub/), on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(FNHUB_PORT=str(free_port()), FNHUB_SHUTDOWN_GRACE_SECONDS="0.5")
    return env


def shared_redis_env(project: Path) -> dict[str, str]:
    """A project on the machine's Redis under a unique key prefix (no server needed to apply)."""
    env = embedded_env()
    env.update(
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_KEY_PREFIX=f"t{uuid.uuid4().hex[:10]}",
        FNHUB_DB_URL=f"sqlite:///{project / 'fnhub.db'}",
    )
    return env


def drop_keys(env: dict[str, str]) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{env['FNHUB_KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def start_serve(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    log = open(project / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", "serve", "--processes", "1", *args],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['FNHUB_PORT']}"


def wait_ready(serve: subprocess.Popen[bytes], env: dict[str, str], timeout: float = 60) -> None:
    """Until the server answers /readyz 200 (workers running); fails if serve exits."""

    def ready() -> bool:
        assert serve.poll() is None, "fnhub serve exited"
        try:
            return httpx.get(f"{url(env)}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=timeout, interval=0.2)


def stop(serve: subprocess.Popen[bytes]) -> None:
    if serve.poll() is None:
        serve.send_signal(signal.SIGTERM)
    try:
        serve.wait(40)
    except subprocess.TimeoutExpired:
        serve.kill()
        serve.wait()


def log_lines(project: Path) -> list[str]:
    return (project / "serve.log").read_text(errors="replace").splitlines()


def wait_for_log(project: Path, needle: str, timeout: float = 20) -> list[str]:
    """The log's lines containing `needle`, once there is one."""
    return wait_for(lambda: [x for x in log_lines(project) if needle in x], timeout, 0.1)


def poll_http(
    get: str, env: dict[str, str], expect: str, timeout: float
) -> tuple[float, httpx.Response]:
    """GET until the body contains `expect`; returns (seconds it took, the answer)."""
    started = time.monotonic()
    while True:
        answer = httpx.get(f"{url(env)}{get}", timeout=10)
        if expect in answer.text:
            return time.monotonic() - started, answer
        assert time.monotonic() - started < timeout, f"{get} still answers {answer.text!r}"
        time.sleep(0.05)


def lines_with(text: str, needle: str) -> Iterator[str]:
    return (line for line in text.splitlines() if needle in line)
