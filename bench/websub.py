"""WebSub fan-out benchmark: one topic, N local subscriber endpoints, M notifications.

Runs the hub (tests/websub/hubproc.py) in its own process against the machine's Redis and a
temporary SQLite file, and the subscribers as one uvicorn server in this process with N callback
URLs. Reports deliveries/s and publish-to-delivery latency (p50/p99), measured at the subscriber
from the publish time carried in each body.

    python bench/websub.py --subscribers 500 --notifications 20
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from urllib.parse import parse_qs

import httpx
import redis
import uvicorn

from fnhub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
HUBPROC = ROOT / "tests" / "websub" / "hubproc.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receivers:
    """A bare ASGI app: GET echoes the challenge, POST records (callback, latency)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.verified = 0
        self.first: float | None = None
        self.last = 0.0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        answer = b""
        if scope["method"] == "GET":
            answer = parse_qs(scope["query_string"].decode()).get("hub.challenge", [""])[0].encode()
            self.verified += 1
        else:
            now = time.time()
            self.latencies.append(now - json.loads(body)["t"])
            self.first = self.first or now
            self.last = now
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(n_subs: int, n_notes: int, redis_url: str) -> None:
    tmp = Path(tempfile.mkdtemp())
    hub_port, sub_port = free_port(), free_port()
    settings = Settings(
        data_dir=tmp,
        redis_url=redis_url,
        db_url=f"sqlite:///{tmp / 'bench.db'}",
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        port=hub_port,
        websub_hub_url=f"http://127.0.0.1:{hub_port}/websub/hub",
        websub_deny_private=False,
        websub_concurrency=int(os.environ.get("BENCH_CONCURRENCY", "64")),
    )
    receivers = Receivers()
    server = uvicorn.Server(
        uvicorn.Config(receivers, host="127.0.0.1", port=sub_port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    hub = subprocess.Popen([sys.executable, str(HUBPROC), settings.model_dump_json()], env=env)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub_port}", timeout=30)
    try:
        for _ in range(200):
            try:
                if (await http.get("/websub/hub")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        topic = "https://bench.example/topic"
        started = time.monotonic()
        for i in range(n_subs):
            await http.post(
                "/websub/hub",
                data={
                    "hub.mode": "subscribe",
                    "hub.topic": topic,
                    "hub.callback": f"http://127.0.0.1:{sub_port}/cb/{i}",
                    "hub.secret": "bench-secret",
                },
            )
        while True:
            subs = (await http.get("/api/v1/websub/subscriptions")).json()
            if sum(1 for s in subs if s["owner"]) == n_subs:
                break
            await asyncio.sleep(0.2)
        print(f"{n_subs} subscriptions verified in {time.monotonic() - started:.1f}s")
        t0 = time.time()
        for i in range(n_notes):
            await http.post(
                "/websub/hub",
                params={"hub.mode": "publish", "hub.url": topic},
                content=json.dumps({"i": i, "t": time.time()}),
                headers={"content-type": "application/json"},
            )
        expected = n_subs * n_notes
        while len(receivers.latencies) < expected and time.time() - t0 < 120:
            await asyncio.sleep(0.05)
        got = len(receivers.latencies)
        span = receivers.last - t0
        print(
            json.dumps(
                {
                    "subscribers": n_subs,
                    "notifications": n_notes,
                    "deliveries": got,
                    "expected": expected,
                    "seconds": round(span, 2),
                    "deliveries_per_s": round(got / span, 1),
                    "latency_ms_p50": round(pct(receivers.latencies, 0.5), 1),
                    "latency_ms_p99": round(pct(receivers.latencies, 0.99), 1),
                },
                indent=2,
            )
        )
    finally:
        await http.aclose()
        hub.terminate()
        hub.wait(15)
        server.should_exit = True
        await serving
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--notifications", type=int, default=20)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(main(args.subscribers, args.notifications, args.redis_url))
