"""A process holding a lease (`lease`) or sharing items (`shares`) as a server would, its Redis
connections named after it, printing what each call found: the other end of the tests that
kill, stop and cut off lease holders (tests/test_lease.py, tests/test_shares.py).

    python -m tests.lease_holder lease URL KEY OWNER TTL
    python -m tests.lease_holder shares URL PREFIX OWNER TTL ITEM...

Prints `ready` once named, then one JSON line per call: `{"held": bool, "holder": ...}` for a
lease, `{"held": [items]}` for shares."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aredis

from fnhub.holders import connection_name, name_connections, process_of
from fnhub.lease import Lease
from fnhub.shares import Shares


def say(line: object) -> None:
    print(line if isinstance(line, str) else json.dumps(line), flush=True)


async def client(url: str, owner: str) -> AsyncIterator[aredis.Redis]:
    c = aredis.Redis.from_url(url, socket_connect_timeout=0.5)
    assert await name_connections(c, connection_name("server", process_of(owner)))
    say("ready")
    yield c


async def hold(url: str, key: str, owner: str, ttl: float) -> None:
    async for c in client(url, owner):
        lease = Lease(c, key, owner, ttl)
        while True:
            held = await lease.hold()
            say({"held": held, "holder": lease.holder, "error": str(lease.error or "")})
            await asyncio.sleep(lease.renew_in() or ttl / 6)


async def share(url: str, prefix: str, owner: str, ttl: float, items: list[str]) -> None:
    async for c in client(url, owner):
        shares = Shares(c, prefix + "members", prefix + "item:", owner, ttl)
        while True:
            wanted = shares.wanted(items)
            gone = shares.held() - wanted
            if gone:
                await shares.release(gone)
            await shares.tick(wanted)
            say({"held": sorted(shares.held())})
            await asyncio.sleep(shares.renew_in())


class HolderProcess:
    """This module run as a process by a test: killed, stopped and resumed by signals."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.lease_holder", *args],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.next(timeout=20) == "ready"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def next(self, timeout: float = 10) -> Any:
        line = self.lines.get(timeout=timeout)
        return line if line == "ready" else json.loads(line)

    def until(self, check: Any, timeout: float = 10) -> Any:
        """The first line from now on that `check` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.next(timeout=max(deadline - time.monotonic(), 0.01))
            if check(report):
                return report

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def close(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait()


async def redis_now_ms(client: aredis.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def lapses_at(client: aredis.Redis, *keys: str) -> int:
    """When (Redis's clock, ms) the first of `keys` lapses if nobody renews it."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.time()
        for key in keys:
            pipe.pttl(key)
        (seconds, micros), *left = await pipe.execute()
    assert all(ms > 0 for ms in left), left
    return int(seconds) * 1000 + int(micros) // 1000 + min(left)


if __name__ == "__main__":
    kind, url, key, owner, ttl, *items = sys.argv[1:]
    if kind == "lease":
        asyncio.run(hold(url, key, owner, float(ttl)))
    else:
        asyncio.run(share(url, key, owner, float(ttl), items))
