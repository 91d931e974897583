"""A redis-server of a test's own (on a free port, in a temp dir), to start late, stop, restart
or freeze: what the machine's shared Redis cannot be made to do."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis
from tests.conftest import free_port, wait_for


class PrivateRedis:
    def __init__(self, folder: Path, port: int | None = None, *, persist: bool = True) -> None:
        """`persist` False: no snapshot ever, so every restart comes back empty (the machine's
        own Redis, and many operators', keeps nothing on disk)."""
        self.folder = folder
        self.persist = persist
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (again: keys saved at the last stop come back, if `persist`) and wait until it
        answers."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                # a snapshot at shutdown, so a restart keeps the keys
                "3600 1" if self.persist else "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10)

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Shut down, saving a snapshot (as a restarted production Redis would keep its data)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # redis-server saves, then exits
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def freeze(self, seconds: float) -> None:
        """SIGSTOP the server for `seconds`: connections stay open, commands hang."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()
        self.process = None


class SwallowingRedis(aredis.Redis):
    """A client whose calls finish, and return their answer, even when the calling task is
    cancelled meanwhile: what redis-py's calls sometimes did (CI, about one run in ten), leaving
    the task to go on with `cancelling()` 1. `in_flight`: calls under way now."""

    in_flight = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        call = asyncio.ensure_future(super().execute_command(*args, **options))
        self.in_flight += 1
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            return await call  # the cancellation is swallowed
        finally:
            self.in_flight -= 1


async def stops_when_cancelled_mid_call(
    server: PrivateRedis, client: SwallowingRedis, step: Callable[[], Awaitable[object]]
) -> bool:
    """Run `step` in a loop (as a renewal loop would), freeze `server`, cancel the loop while one
    of its calls on `client` hangs, thaw: whether the loop then stopped, cancelled, within 3 s.
    One still running is cancelled again until a cancel lands in a sleep, so the test ends
    either way."""

    async def loop() -> None:
        while True:
            await step()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    freezer = asyncio.create_task(asyncio.to_thread(server.freeze, 1.0))
    async with asyncio.timeout(5):
        while not client.in_flight:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert client.in_flight and not task.done()
    task.cancel()
    await freezer
    await asyncio.wait({task}, timeout=3)
    stopped = task.done() and task.cancelled()
    while not task.done():  # a cancel landing in a call again is swallowed again: repeat
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    return stopped
