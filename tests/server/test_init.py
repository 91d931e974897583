"""`fnhub init` makes the first admin user: its password is shown once, kept in a 0600 file, and
signs in on a real server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis
from tests.conftest import free_port

from .conftest import _cli, stop


def test_init_creates_the_first_admin_who_can_sign_in(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    port = free_port()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "FNHUB_REDIS_URL": "redis://127.0.0.1:6379/0",
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_PORT": str(port),
        "FNHUB_ACCESS_LOG": "false",
    }
    env.pop("FNHUB_DB_URL", None)
    env.pop("FNHUB_DATA_DIR", None)

    def init() -> str:
        done = subprocess.run(
            [sys.executable, "-c", "from fnhub.cli import main; main()", "init", str(project)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return " ".join(done.stdout.split())  # rich wraps long lines

    output = init()
    password_file = project / ".fnhub" / "admin_password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((project / ".fnhub" / "api_key").stat().st_mode) == 0o600
    assert f"http://127.0.0.1:{port}/" in output
    assert password in output
    assert str(password_file) in "".join(output.split())  # rich may fold a long path
    assert len(password) >= 16

    again = init()  # users exist: nothing new, the file stays
    assert password not in again and password_file.read_text().strip() == password

    server_log = tmp_path / "server.log"
    server = _cli("server", "-p", str(project), env=env, log=server_log)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server_log.read_text()
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server not up in 60 s"
                time.sleep(0.1)
        with httpx.Client(base_url=url) as c:
            wrong = c.post("/api/v1/session", json={"username": "admin", "password": "nope"})
            assert wrong.status_code == 401
            r = c.post("/api/v1/session", json={"username": "admin", "password": password})
            assert r.status_code == 200, r.text
            assert r.json()["user"] == {"username": "admin", "role": "admin"}
            assert c.get("/api/v1/users").json()["items"][0]["username"] == "admin"
            audit = c.get("/api/v1/audit", params={"actor": "cli"}).json()["items"]
            assert {e["action"] for e in audit} == {"key.create", "user.create"}
    finally:
        stop(server)
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
