# ruff: noqa: E402  (sys.path is fixed before the imports)
"""Sync call of a trivial function over HTTP at concurrency 1, 16, 64, beside a bare endpoint of
the same ASGI stack (FastAPI on uvicorn + uvloop + httptools) answering the same JSON without the
queue: the framework's own limit. Results go to bench/results/http_call.json.

    python bench/http_call.py [--seconds 5] [--processes 2] [--client wrk|httpx]
    python bench/http_call.py --compare-http-processes 1,2   # `fnhub server --workers N`

`--compare-http-processes`: sync calls at concurrency 64 against `fnhub server --workers N` for
each N in turn (one worker throughout), in one run, so the ratios compare like with like; to
bench/results/http_processes.json.

The load comes from wrk (`apt-get install wrk`; one thread, N keep-alive connections), whose own
cost per request is small enough that the latencies are the server's; with `--client httpx` (or
when wrk is missing) an httpx.AsyncClient loop, which adds about 1 ms per request of its own.
Task records are on, as in a default install. Needs Redis on 127.0.0.1:6379 (a unique key prefix
is used and removed).
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
import re
import shutil
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


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
%s
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def load_wrk(url: str, headers: dict, body: dict, concurrency: int, seconds: float) -> dict:
    """wrk's figures: requests/s, and p50/p99 from its latency distribution (--latency)."""
    extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (json.dumps(body), extra))
    warm = ["wrk", "-t1", f"-c{concurrency}", "-d1s", "-s", script.name, url]
    subprocess.run(warm, capture_output=True, check=True)
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s", script.name]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "requests": requests,
        "errors": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else None,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
    }


def wait_ready(base: str) -> None:
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def compare_http_processes(args: argparse.Namespace, env: dict, tmp: Path, token: str) -> None:
    cli = [sys.executable, "-c", "from fnhub.cli import main; main()"]
    worker = subprocess.Popen([*cli, "worker", "-p", str(tmp)], env=env)
    auth = {"Authorization": f"Bearer {token}"}
    body = {"kwargs": {"n": 1}}
    rows = []
    try:
        for n in (int(v) for v in args.compare_http_processes.split(",")):
            port = free_port()
            server = subprocess.Popen(
                [*cli, "server", "-p", str(tmp), "--workers", str(n)],
                env={**env, "FNHUB_PORT": str(port)},
            )
            base = f"http://127.0.0.1:{port}"
            try:
                wait_ready(base)
                url = f"{base}/api/v1/functions/bench.ping/call"
                time.sleep(2)  # every process up (readyz answers from the first)
                for _ in range(200):
                    httpx.post(url, headers=auth, json=body, timeout=10)
                if args.client == "wrk":
                    result = load_wrk(url, auth, body, 64, args.seconds)
                else:
                    result = asyncio.run(load(url, auth, body, 64, args.seconds))
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(60)
            row = {"http_processes": n, "concurrency": 64, "sync_call": result}
            rows.append(row)
            print(json.dumps(row))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    first = rows[0]["sync_call"]["rps"]
    for row in rows:
        row["rps_ratio_to_first"] = round(row["sync_call"]["rps"] / first, 3)
    out = {
        "machine": f"{platform.node()} {os.cpu_count()} cpus, {platform.python_version()}",
        "worker_processes": args.processes,
        "seconds_per_run": args.seconds,
        "client": f"{args.client} on the same machine",
        "rows": rows,
    }
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "http_processes.json").write_text(json.dumps(out, indent=2) + "\n")
    print("rps ratios:", [(r["http_processes"], r["rps_ratio_to_first"]) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--client", choices=["wrk", "httpx"], default="wrk")
    parser.add_argument("--compare-http-processes", default="", metavar="N,N...")
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk): measuring with httpx instead", file=sys.stderr)
        args.client = "httpx"
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
    }
    os.environ.update(env)
    from fnhub.bootstrap import open_services
    from fnhub.config import load_settings
    from fnhub.features import FEATURES
    from fnhub.project import apply_project
    from fnhub.server.auth import create_key

    settings = load_settings(tmp)
    services = open_services(settings)
    apply_project(settings, services.scripts, FEATURES)
    _row, token = create_key(services.db, "bench")
    if args.compare_http_processes:
        try:
            compare_http_processes(args, env, tmp, token)
        finally:
            keys = list(services.redis.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                services.redis.delete(*keys)
            services.close()
        return
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

        def measure(url: str, headers: dict, concurrency: int) -> dict:
            body = {"kwargs": {"n": 1}}
            if args.client == "wrk":
                return load_wrk(url, headers, body, concurrency, args.seconds)
            return asyncio.run(load(url, headers, body, concurrency, args.seconds))

        for concurrency in (1, 16, 64):
            bare = measure(f"{base}/bench/bare", {}, concurrency)
            call = measure(f"{base}/api/v1/functions/bench.ping/call", auth, concurrency)
            row = {
                "concurrency": concurrency,
                "p50_ms_added": round(call["p50_ms"] - bare["p50_ms"], 3),
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
            "client": f"{args.client} on the same machine",
            "records": "on",
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
