"""WebSub publish cost, A/B: publishes/s and the server's CPU per publish (its delivery
included), two real hub servers from two source trees, measured in interleaved windows.

Four processes: the receivers (`bench/websub.py --receivers`), hub A and hub B (each a real
fnhub server, `tests/websub/hubproc.py`, with its own fresh database and key prefix in the
machine's Redis; A runs `--a-src`, B `--b-src`) and this driver. Each hub gets `--subscribers`
verified subscriptions to one topic; then, round after round (the order flips each round), each
hub takes `--publishes` fat pings from `--concurrency` clients, as fast as it answers or at
`--rate` per second (a cluster's pace, where how long an answer is kept matters). A window's
CPU is the server's user + system time from its first publish until the receivers have every
delivery of it.

    python bench/websub_publish.py --a-src /work/main/src --rounds 4
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import redis

from fnhub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.websub import HUBPROC, cpu_seconds, free_port, hub_settings  # noqa: E402
from tests.conftest import fresh_database  # noqa: E402
from tests.websub.harness import prepare_server  # noqa: E402

TOPIC = "https://bench.example/publish"


@dataclass
class Hub:
    name: str
    src: str
    settings: Settings
    proc: subprocess.Popen[bytes]
    http: httpx.AsyncClient
    windows: list[dict[str, float]] = field(default_factory=list)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    urls = fresh_database(kind, Path(tempfile.mkdtemp()))
    try:
        yield next(urls)
    finally:
        next(urls, None)


async def start_hub(name: str, src: str, db_url: str, redis_url: str, concurrency: int) -> Hub:
    settings = hub_settings(Path(tempfile.mkdtemp()), redis_url, db_url, concurrency)
    prepare_server(settings)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])}
    env["HUBPROC_LOG_LEVEL"] = "WARNING"
    # only what is set: the older tree's Settings forbids fields it does not know
    proc = subprocess.Popen(
        [sys.executable, str(HUBPROC), settings.model_dump_json(exclude_defaults=True)], env=env
    )
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=30)
    for _ in range(600):
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/websub/hub")).status_code == 200:
                break
        await asyncio.sleep(0.05)
    return Hub(name, src, settings, proc, http)


async def subscribe(hub: Hub, receivers: str, n: int) -> None:
    for i in range(n):
        r = await hub.http.post(
            "/websub/hub",
            data={
                "hub.mode": "subscribe",
                "hub.topic": TOPIC,
                "hub.callback": f"{receivers}/cb/{hub.name}{i}",
            },
        )
        r.raise_for_status()
    while True:  # verified and owned: publishes are stored and delivered
        r = await hub.http.post(
            "/websub/hub",
            data={
                "hub.mode": "publish",
                "hub.url": TOPIC,
                "hub.content": json.dumps({"t": time.time()}),  # what the receivers read
            },
        )
        if "published to 1" in r.text:
            break
        await asyncio.sleep(0.2)


async def deliveries(rec: httpx.AsyncClient) -> int:
    return len((await rec.get("/stats")).json()["latencies"])


async def window(hub: Hub, rec: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, float]:
    publishes, concurrency, subs = args.publishes, args.concurrency, args.subscribers
    await rec.post("/reset")
    queue = iter(range(publishes))
    stored = 0
    start = time.monotonic()

    async def client() -> None:
        nonlocal stored
        for i in queue:
            if args.rate:  # paced: publish i is due at i / rate
                await asyncio.sleep(max(0.0, start + i / args.rate - time.monotonic()))
            r = await hub.http.post(
                "/websub/hub",
                data={
                    "hub.mode": "publish",
                    "hub.url": TOPIC,
                    "hub.content": json.dumps({"i": i, "t": time.time()}),
                    "hub.content_type": "application/json",
                },
            )
            stored += "published to 1" in r.text

    load = os.getloadavg()[0]
    cpu0, t0 = cpu_seconds(hub.proc.pid), start
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.monotonic() - t0
    deadline = time.monotonic() + 60
    while await deliveries(rec) < publishes * subs and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    cpu = cpu_seconds(hub.proc.pid) - cpu0
    got = await deliveries(rec)
    result = {
        "publishes_per_s": round(publishes / seconds, 1),
        "cpu_ms_per_publish": round(cpu / publishes * 1000, 3),
        "stored": stored,
        "delivered": got,
        "load_1m": round(load, 2),
    }
    hub.windows.append(result)
    return result


def median(hub: Hub, key: str) -> float:
    return statistics.median(w[key] for w in hub.windows)


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    receivers = f"http://127.0.0.1:{port}"
    bench_websub = str(ROOT / "bench" / "websub.py")
    rec_proc = subprocess.Popen([sys.executable, bench_websub, "--receivers", str(port)])
    hubs: list[Hub] = []
    rec = httpx.AsyncClient(base_url=receivers, timeout=30)
    try:
        for _ in range(400):
            with contextlib.suppress(httpx.HTTPError):
                await rec.post("/reset")
                break
            await asyncio.sleep(0.05)
        with database(args.db) as db_a, database(args.db) as db_b:
            for name, src, db_url in (("A", args.a_src, db_a), ("B", args.b_src, db_b)):
                hub = await start_hub(name, src, db_url, args.redis_url, args.concurrency)
                hubs.append(hub)
                await subscribe(hub, receivers, args.subscribers)
            await asyncio.sleep(1.0)
            started = time.strftime("%H:%M:%S", time.gmtime())
            for r in range(args.rounds):
                for hub in hubs if r % 2 == 0 else hubs[::-1]:
                    out = await window(hub, rec, args)
                    print(f"round {r} {hub.name} {json.dumps(out)}", flush=True)
            ended = time.strftime("%H:%M:%S", time.gmtime())
            a, b = hubs
            summary = {
                "db": args.db,
                "subscribers": args.subscribers,
                "publishes_per_window": args.publishes,
                "concurrency": args.concurrency,
                "rate": args.rate or "unpaced",
                "utc": f"{started}-{ended}",
                "A": {"src": a.src, **{k: median(a, k) for k in a.windows[0] if k != "load_1m"}},
                "B": {"src": b.src, **{k: median(b, k) for k in b.windows[0] if k != "load_1m"}},
                "ratio_B_over_A": {
                    k: round(median(b, k) / median(a, k), 3)
                    for k in ("publishes_per_s", "cpu_ms_per_publish")
                },
                "load_1m": [w["load_1m"] for h in hubs for w in h.windows],
            }
            print(json.dumps(summary, indent=2))
            for hub in hubs:
                hub.proc.terminate()
                hub.proc.wait(20)
    finally:
        for hub in hubs:
            if hub.proc.poll() is None:
                hub.proc.kill()
            await hub.http.aclose()
            client = redis.Redis.from_url(args.redis_url)
            keys = list(client.scan_iter(match=f"{hub.settings.key_prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()
        await rec.aclose()
        rec_proc.terminate()
        rec_proc.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a-src", default=str(ROOT / "src"), help="hub A's source tree")
    parser.add_argument("--b-src", default=str(ROOT / "src"), help="hub B's source tree")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "mysql"], default="postgresql")
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--publishes", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="publishes/s (0: unpaced)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    asyncio.run(main(parser.parse_args()))
