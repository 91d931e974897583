"""A Redis server of a test's own, on a free port in a temp dir, that the test can take down
and bring back (its data saved on the way down, so a restart finds what the stack left)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
from tests.conftest import free_port


class OwnRedis:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Shut down, saving the data set (`--save ''` alone would lose it)."""
        if self.process is None or self.process.poll() is not None:
            return
        client = redis.Redis(port=self.port)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # it went away while shutting down, as it should
        finally:
            client.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
