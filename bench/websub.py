"""WebSub fan-out benchmark: one topic, N local subscriber endpoints, M notifications, next to the
practical ceiling measured in the same run.

Three processes: the receivers (one uvicorn server, uvloop + httptools, N callback URLs that
record publish-to-delivery latency from the publish time carried in each body), the hub (a real
fnhub server, `tests/websub/hubproc.py`, machine's Redis, temporary SQLite) and this driver.

- baseline: this process POSTs every notification to every callback with a raw pooled
  `httpx.AsyncClient` (same concurrency limit, same signature and Link headers, one task per
  subscriber so per-subscriber order holds as in the hub): the ceiling for an httpx-based hub.
- hub: N verified subscriptions; M notifications published to `/websub/hub`.

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
from typing import Any
from urllib.parse import parse_qs

import httpx
import redis
import uvicorn
import uvloop

from fnhub.config import Settings
from fnhub.websub.hub import HTTP_SHARD_CONNECTIONS
from fnhub.websub.signing import link_header, signature

ROOT = Path(__file__).resolve().parent.parent
HUBPROC = ROOT / "tests" / "websub" / "hubproc.py"
RESULTS = ROOT / "bench" / "results" / "websub.json"
SECRET = "bench-secret"
TOPIC = "https://bench.example/topic"

sys.path.insert(0, str(ROOT / "tests" / "websub"))
from harness import prepare_server  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receivers:
    """A bare ASGI app: GET echoes the challenge, POST records the latency, /stats reports."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        answer = b""
        if scope["path"] == "/stats":
            answer = json.dumps({"latencies": self.latencies, "last": self.last}).encode()
        elif scope["path"] == "/reset":
            self.latencies, self.last = [], 0.0
        elif scope["method"] == "GET":
            answer = parse_qs(scope["query_string"].decode()).get("hub.challenge", [""])[0].encode()
        else:
            now = time.time()
            self.latencies.append(now - json.loads(body)["t"])
            self.last = now
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def serve_receivers(port: int) -> None:
    uvicorn.run(
        Receivers(),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


def hub_settings(data_dir: Path, redis_url: str, db_url: str, concurrency: int) -> Settings:
    """A benchmark hub's settings: an open hub on a free loopback port, with a key prefix of
    its own, that may reach the local receivers and takes any number of requests."""
    port = free_port()
    return Settings(
        data_dir=data_dir,
        redis_url=redis_url,
        db_url=db_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        port=port,
        access_log=False,
        websub_hub_url=f"http://127.0.0.1:{port}/websub/hub",
        websub_allow_networks=["127.0.0.0/8"],  # the receivers are local
        websub_open=True,  # anonymous publishes
        websub_subscribe_per_minute=0,  # 500 subscriptions from one address
        websub_publish_per_minute=0,
        websub_concurrency=concurrency,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (load-independent cost, unlike wall-clock rates)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


async def collect(http: httpx.AsyncClient, expected: int, t0: float, limit: float) -> dict:
    """Wait until the receivers have `expected` deliveries (or `limit` s), then summarise."""
    while True:
        stats = (await http.get("/stats")).json()
        if len(stats["latencies"]) >= expected or time.time() - t0 > limit:
            break
        await asyncio.sleep(0.25)
    got, span = len(stats["latencies"]), stats["last"] - t0
    return {
        "deliveries": got,
        "expected": expected,
        "seconds": round(span, 2),
        "deliveries_per_s": round(got / span, 1) if span > 0 else None,
        "latency_ms_p50": pct(stats["latencies"], 0.5) if got else None,
        "latency_ms_p99": pct(stats["latencies"], 0.99) if got else None,
    }


async def raw_baseline(
    receivers: str, n_subs: int, n_notes: int, concurrency: int, pool: int
) -> dict:
    """Every notification to every callback with pooled httpx clients of `pool` connections
    each (one pool of `concurrency`, or the hub's layout): the ceiling."""
    limit = asyncio.Semaphore(concurrency)
    clients = [
        httpx.AsyncClient(
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool), timeout=30
        )
        for _ in range(max(1, concurrency // pool))
    ]
    link = link_header("http://127.0.0.1/websub/hub", TOPIC)
    cpu0 = cpu_seconds(os.getpid())
    t0 = time.time()
    notes = [json.dumps({"i": i, "t": time.time()}).encode() for i in range(n_notes)]

    async def subscriber(i: int) -> None:
        for body in notes:
            headers = {
                "Content-Type": "application/json",
                "Link": link,
                "X-Hub-Signature": signature(SECRET, body, "sha256"),
            }
            async with limit:
                r = await clients[i % len(clients)].post(
                    f"{receivers}/cb/{i}", content=body, headers=headers
                )
            r.raise_for_status()

    await asyncio.gather(*(subscriber(i) for i in range(n_subs)))
    cpu = cpu_seconds(os.getpid()) - cpu0
    for client in clients:
        await client.aclose()
    async with httpx.AsyncClient(base_url=receivers) as http:
        result = await collect(http, n_subs * n_notes, t0, 10)
    result["sender_cpu_us_per_delivery"] = round(cpu / max(result["deliveries"], 1) * 1e6)
    return result


async def hub_run(
    receivers: str, n_subs: int, n_notes: int, concurrency: int, redis_url: str, profile: bool
) -> dict:
    tmp = Path(tempfile.mkdtemp())
    settings = hub_settings(tmp, redis_url, f"sqlite:///{tmp / 'bench.db'}", concurrency)
    hub_port = settings.port
    token = prepare_server(settings)
    src = os.environ.get("BENCH_HUB_SRC", str(ROOT / "src"))  # e.g. an older checkout's src
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *sys.path])}
    hub = subprocess.Popen([sys.executable, str(HUBPROC), settings.model_dump_json()], env=env)
    spy = None
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub_port}", timeout=30)
    admin = {"Authorization": f"Bearer {token}"}
    rec = httpx.AsyncClient(base_url=receivers, timeout=30)
    try:
        for _ in range(400):
            try:
                if (await http.get("/websub/hub")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        started = time.monotonic()
        for i in range(n_subs):
            await http.post(
                "/websub/hub",
                data={
                    "hub.mode": "subscribe",
                    "hub.topic": TOPIC,
                    "hub.callback": f"{receivers}/cb/{i}",
                    "hub.secret": SECRET,
                },
            )
        while True:
            r = await http.get("/api/v1/websub/subscriptions", headers=admin)
            r.raise_for_status()
            if sum(1 for s in r.json() if s["owner"]) == n_subs:
                break
            await asyncio.sleep(0.2)
        print(f"{n_subs} subscriptions verified in {time.monotonic() - started:.1f}s")
        await asyncio.sleep(1.0)  # let the deliverers reach their idle wait
        await rec.post("/reset")
        if profile:
            out = Path(tempfile.gettempdir()) / "websub-hub-profile.txt"  # collapsed stacks
            print(f"profiling the hub into {out}")
            spy = subprocess.Popen(
                ["py-spy", "record", "-p", str(hub.pid), "-o", str(out), "-r", "50", "-f", "raw"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)
        cpu0 = cpu_seconds(hub.pid)
        t0 = time.time()
        for i in range(n_notes):
            await http.post(
                "/websub/hub",
                params={"hub.mode": "publish", "hub.url": TOPIC},
                content=json.dumps({"i": i, "t": time.time()}),
                headers={"content-type": "application/json"},
            )
        result = await collect(rec, n_subs * n_notes, t0, 180)
        cpu = cpu_seconds(hub.pid) - cpu0
        result["sender_cpu_us_per_delivery"] = round(cpu / max(result["deliveries"], 1) * 1e6)
        return result
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
        await http.aclose()
        await rec.aclose()
        hub.terminate()
        hub.wait(20)
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()


def ratio(hub: dict, base: dict, field: str) -> float | None:
    return round(hub[field] / base[field], 2) if hub.get(field) and base.get(field) else None


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    receivers = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, __file__, "--receivers", str(port)])
    try:
        async with httpx.AsyncClient(base_url=receivers) as http:
            for _ in range(400):
                try:
                    await http.post("/reset")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        n, m, c = args.subscribers, args.notifications, args.concurrency
        baseline = await raw_baseline(receivers, n, m, c, c)
        print("raw httpx baseline, one pool", json.dumps(baseline))
        await httpx.AsyncClient(base_url=receivers).post("/reset")
        sharded = await raw_baseline(receivers, n, m, c, HTTP_SHARD_CONNECTIONS)
        print(f"raw httpx baseline, pools of {HTTP_SHARD_CONNECTIONS}", json.dumps(sharded))
        hub = await hub_run(receivers, n, m, c, args.redis_url, args.profile)
        print("hub", json.dumps(hub))
    finally:
        proc.terminate()
        proc.wait(10)
    result = {
        "subscribers": n,
        "notifications": m,
        "concurrency": c,
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "hub": hub,
        "raw_httpx_baseline": baseline,
        "raw_httpx_baseline_hub_pools": sharded,
        "ratios": {
            name: {
                "deliveries_per_s": ratio(hub, base, "deliveries_per_s"),
                "cpu_per_delivery": ratio(hub, base, "sender_cpu_us_per_delivery"),
            }
            for name, base in (("one_pool", baseline), ("hub_pools", sharded))
        },
    }
    print(json.dumps(result, indent=2))
    if args.save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--notifications", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graph of the hub")
    parser.add_argument("--save", action="store_true", help=f"write {RESULTS.name}")
    parser.add_argument("--receivers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receivers:
        serve_receivers(args.receivers)
    else:
        uvloop.run(main(args))
