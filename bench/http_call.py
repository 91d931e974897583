# ruff: noqa: E402  (sys.path is fixed before the imports)
"""Sync call of a trivial function over HTTP at concurrency 1, 16, 64, beside a bare endpoint of
the same ASGI stack (FastAPI on uvicorn + uvloop + httptools) answering the same JSON without the
queue: the framework's own limit. Results go to bench/results/http_call.json.

    python bench/http_call.py [--seconds 5] [--processes 2]

Needs Redis on 127.0.0.1:6379 (a unique key prefix is used and removed).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds other benchmarks (one is named queue.py): keep it from shadowing the stdlib
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import httpx

SCRIPT = "import fnhub\n\n@fnhub.api()\ndef ping(n: int = 0):\n    return {'pong': n}\n"
BARE = {"id": "x" * 24, "status": "success", "result": {"pong": 1}}
SERVER = """
import sys
from fnhub.config import load_settings
from fnhub.server.run import build_server
from starlette.responses import Response
import orjson

settings = load_settings(sys.argv[1])
server = build_server(settings)
body = orjson.dumps(%r)


@server.config.app.post("/bench/bare")
async def bare() -> Response:
    return Response(body, media_type="application/json")


server.run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, headers: dict, body: dict, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        for _ in range(min(concurrency, 8)):  # warm up connections and caches
            await client.post(url, json=body)
        stop_at = time.perf_counter() + seconds

        async def user() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = await client.post(url, json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors,
        "rps": round(n / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 3),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "scripts").mkdir()
    (tmp / "scripts" / "bench.py").write_text(SCRIPT)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "FNHUB_REDIS_URL": "redis://127.0.0.1:6379/0",
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_DATA_DIR": str(tmp / ".fnhub"),
        "FNHUB_PORT": str(port),
        "FNHUB_PROCESSES": str(args.processes),
        "FNHUB_ACCESS_LOG": "false",
        "FNHUB_RECORDS_ENABLED": "false",
    }
    os.environ.update(env)
    from fnhub.bootstrap import open_services
    from fnhub.config import load_settings
    from fnhub.project import apply_project
    from fnhub.server.auth import create_key

    settings = load_settings(tmp)
    services = open_services(settings)
    apply_project(settings, services.scripts)
    _row, token = create_key(services.db, "bench")
    procs = [
        subprocess.Popen([sys.executable, "-c", "from fnhub.cli import main; main()", "worker",
                          "-p", str(tmp)], env=env),
        subprocess.Popen([sys.executable, "-c", SERVER % (BARE,), str(tmp)], env=env),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {token}"}
        rows = []
        for concurrency in (1, 16, 64):
            bare = asyncio.run(load(f"{base}/bench/bare", {}, {"kwargs": {"n": 1}}, concurrency,
                                    args.seconds))  # fmt: skip
            call = asyncio.run(load(f"{base}/api/v1/functions/bench.ping/call", auth,
                                    {"kwargs": {"n": 1}}, concurrency, args.seconds))  # fmt: skip
            row = {
                "concurrency": concurrency,
                "bare": bare,
                "sync_call": call,
                "throughput_ratio": round(call["rps"] / bare["rps"], 3),
            }
            rows.append(row)
            print(json.dumps(row))
        out = {
            "machine": f"{platform.node()} {os.cpu_count()} cpus, {platform.python_version()}",
            "worker_processes": args.processes,
            "seconds_per_run": args.seconds,
            "client": "httpx.AsyncClient in the same machine",
            "rows": rows,
        }
        results = Path(__file__).parent / "results"
        results.mkdir(exist_ok=True)
        (results / "http_call.json").write_text(json.dumps(out, indent=2) + "\n")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        keys = list(services.redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            services.redis.delete(*keys)
        services.close()


if __name__ == "__main__":
    main()
