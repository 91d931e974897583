# ruff: noqa: E402  (sys.path is fixed before the imports)
"""Sync call of a trivial function over HTTP at concurrency 1 and 64, beside a bare endpoint of
the same ASGI stack (FastAPI on uvicorn + uvloop + httptools, a route on fnhub's app, matched
after its routers) answering the same JSON without the queue: the framework's own limit. Results
go to bench/results/http_call.json (or `--out`).

    python bench/http_call.py [--seconds 5] [--rounds 3] [--concurrency 1,64]
                              [--processes 2] [--http-processes 1] [--client wrk|httpx]
    python bench/http_call.py --compare-http-processes 1,2   # `fnhub server --workers N`
    python bench/http_call.py --confirm --concurrency 1,16   # async calls, WAIT 1 or not

Every figure is the median of `--rounds` rounds (bare and call alternate which goes first), and
each row says how much CPU a request cost each process, in microseconds: the HTTP server
processes, the worker supervisor (with its records writer), the worker children, Redis and wrk
(read from /proc and Redis's INFO around the measured run), since on a shared machine the
wall-clock figures move with the load (its 1-minute average is recorded) and the CPU per
request much less. `--http-processes N` runs N servers on one SO_REUSEPORT port, as
`fnhub server --workers N` does, each with the bare route.

`--compare-http-processes`: sync calls at concurrency 64 against `fnhub server --workers N` for
each N in turn (one worker throughout), in one run, so the ratios compare like with like; to
bench/results/http_processes.json.

`--confirm`: the private Redis gets a replica, and async submissions (`POST .../tasks`, 202) are
measured beside the bare route and the sync call twice: on the server as configured by default
for a single Redis (`enqueue_replicas` 0) and on a second server of the same project with
`enqueue_replicas` 1, which answers 202 only once the replica has the task (`fnhub.redis_wait`,
what a `redis+sentinel://` URL turns on); to bench/results/http_confirm.json by default.

The load comes from wrk (`apt-get install wrk`; one thread, N keep-alive connections), whose own
cost per request is small enough that the latencies are the server's; with `--client httpx` (or
when wrk is missing) an httpx.AsyncClient loop, which adds about 1 ms per request of its own.
Task records are on, as in a default install. Redis is a private `redis-server` on a free port
(no persistence) unless `--redis-url` names one (a unique key prefix is used and removed).
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
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable

import httpx

SCRIPT = "import fnhub\n\n@fnhub.api()\ndef ping(n: int = 0):\n    return {'pong': n}\n"
BARE = {"id": "x" * 24, "status": "success", "result": {"pong": 1}}
SERVER = """
import socket
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


# one listening socket per process on the shared port (SO_REUSEPORT), as `--workers N` does
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind((settings.host, settings.port))
sock.listen(2048)
server.run(sockets=[sock])
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
                if r.status_code >= 300:
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


def load_wrk(
    url: str,
    headers: dict,
    body: dict,
    concurrency: int,
    seconds: float,
    probe: Callable[[], dict[str, float]] | None = None,
) -> dict:
    """wrk's figures: requests/s, and p50/p99 from its latency distribution (--latency); with
    `probe`, the CPU per request of each process it names, over the measured run."""
    extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (json.dumps(body), extra))
    warm = ["wrk", "-t1", f"-c{concurrency}", "-d1s", "-s", script.name, url]
    subprocess.run(warm, capture_output=True, check=True)
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s", script.name]
    before = probe() if probe is not None else None
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    after = probe() if probe is not None else None
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
        **(
            {"cpu_us": cpu_per_request(before, after, requests)}
            if before is not None and after is not None
            else {}
        ),
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


def _cpu_seconds() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds user + system) of every process, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


class Probe:
    """CPU seconds spent so far by each part: the HTTP server processes, the worker supervisor,
    its children (descendants), the Redis server (INFO cpu) and wrk (this process's waited
    children: only wrk ends while a run is measured)."""

    def __init__(self, servers: list[int], supervisor: int, redis_client: object) -> None:
        self.servers = servers
        self.supervisor = supervisor
        self.redis = redis_client

    def __call__(self) -> dict[str, float]:
        procs = _cpu_seconds()
        kids: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            kids.setdefault(ppid, []).append(pid)

        def tree(pid: int) -> float:
            total, todo = 0.0, list(kids.get(pid, []))
            while todo:
                p = todo.pop()
                total += procs[p][1]
                todo.extend(kids.get(p, []))
            return total

        info = self.redis.info("cpu")  # type: ignore[attr-defined]
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": sum(procs.get(p, (0, 0.0))[1] + tree(p) for p in self.servers),
            "supervisor": procs.get(self.supervisor, (0, 0.0))[1],
            "children": tree(self.supervisor),
            "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            "wrk": waited.ru_utime + waited.ru_stime,
        }


def cpu_per_request(before: dict[str, float], after: dict[str, float], n: int) -> dict:
    """Microseconds of CPU per request by process, and their sum."""
    per = {k: round((after[k] - before[k]) / max(n, 1) * 1e6, 1) for k in before}
    per["total"] = round(sum(per.values()), 1)
    return per


def start_redis(replica_of: int | None = None) -> tuple[subprocess.Popen, str]:
    """A private redis-server on a free port (no persistence): its CPU and commands are ours
    alone, whatever else the machine runs. `replica_of`: the port of its primary."""
    port = free_port()
    follow = ["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else []
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--loglevel", "warning", "--dir", tempfile.mkdtemp(), *follow],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, url


def median_of(runs: list[dict]) -> dict:
    """The median of each figure over the rounds (of each CPU part too)."""
    out: dict = {"rounds": len(runs)}
    for key in ("rps", "p50_ms", "p99_ms"):
        out[key] = round(statistics.median(r[key] for r in runs), 3)
    out["errors"] = sum(r["errors"] for r in runs)
    if "cpu_us" in runs[0]:
        out["cpu_us"] = {
            k: round(statistics.median(r["cpu_us"][k] for r in runs), 1) for k in runs[0]["cpu_us"]
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,64", metavar="N,N...")
    parser.add_argument("--processes", type=int, default=2, help="worker children")
    parser.add_argument("--http-processes", type=int, default=1)
    parser.add_argument("--client", choices=["wrk", "httpx"], default="wrk")
    parser.add_argument("--redis-url", default="", help="default: a private redis-server")
    parser.add_argument("--compare-http-processes", default="", metavar="N,N...")
    parser.add_argument("--confirm", action="store_true", help="async calls, WAIT 1 or not")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    args.out = args.out or ("http_confirm.json" if args.confirm else "http_call.json")
    if args.client == "wrk" and shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk): measuring with httpx instead", file=sys.stderr)
        args.client = "httpx"
    redis_proc = None
    if not args.redis_url:
        if shutil.which("redis-server") is None:
            args.redis_url = "redis://127.0.0.1:6379/0"
        else:
            redis_proc, args.redis_url = start_redis()
    replica_proc = None
    if args.confirm:
        if redis_proc is None:
            parser.error("--confirm starts its own Redis and replica: no --redis-url")
        primary_port = int(args.redis_url.rsplit(":", 1)[1].split("/")[0])
        replica_proc, _replica_url = start_redis(replica_of=primary_port)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "scripts").mkdir()
    (tmp / "scripts" / "bench.py").write_text(SCRIPT)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "FNHUB_REDIS_URL": args.redis_url,
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_DATA_DIR": str(tmp / ".fnhub"),
        "FNHUB_PORT": str(port),
        "FNHUB_PROCESSES": str(args.processes),
        "FNHUB_ACCESS_LOG": "false",
        "FNHUB_ENQUEUE_REPLICAS": "0",
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
            if redis_proc is not None:
                redis_proc.terminate()
        return
    cli = [sys.executable, "-c", "from fnhub.cli import main; main()"]
    worker = subprocess.Popen([*cli, "worker", "-p", str(tmp)], env=env)
    servers = [
        subprocess.Popen(
            [sys.executable, "-c", SERVER % (BARE,), str(tmp), str(slot)],
            env={**env, "FNHUB_NODE_NAME": f"bench-{slot}"} if slot else env,
        )
        for slot in range(args.http_processes)
    ]
    confirm_port = free_port()
    if args.confirm:  # the same project, answering 202 once the replica has the task
        confirm_env = {"FNHUB_PORT": str(confirm_port), "FNHUB_ENQUEUE_REPLICAS": "1"}
        servers.append(
            subprocess.Popen(
                [sys.executable, "-c", SERVER % (BARE,), str(tmp), "0"],
                env={**env, **confirm_env, "FNHUB_NODE_NAME": "bench-confirm"},
            )
        )
    procs = [worker, *servers]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        if args.confirm:
            wait_ready(f"http://127.0.0.1:{confirm_port}")
        time.sleep(1.0 if args.http_processes > 1 else 0.2)  # every process up
        auth = {"Authorization": f"Bearer {token}"}
        probe = Probe([p.pid for p in servers], worker.pid, services.redis)
        body = {"kwargs": {"n": 1}}
        urls = {
            "bare": (f"{base}/bench/bare", {}),
            "sync_call": (f"{base}/api/v1/functions/bench.ping/call", auth),
        }
        if args.confirm:
            submit = "/api/v1/functions/bench.ping/tasks"
            urls["async"] = (f"{base}{submit}", auth)
            urls["async_wait1"] = (f"http://127.0.0.1:{confirm_port}{submit}", auth)
        for _ in range(200):  # scripts loaded in every worker child
            httpx.post(urls["sync_call"][0], headers=auth, json=body, timeout=10)
        levels = [int(c) for c in args.concurrency.split(",")]
        runs: dict[tuple[int, str], list[dict]] = {}
        loads: list[float] = []
        for round_no in range(args.rounds):
            for concurrency in levels:
                # alternate which goes first, so neither always meets the other's leftovers
                order = list(urls) if round_no % 2 == 0 else list(reversed(urls))
                for name in order:
                    url, headers = urls[name]
                    loads.append(os.getloadavg()[0])
                    if args.client == "wrk":
                        result = load_wrk(url, headers, body, concurrency, args.seconds, probe)
                    else:
                        result = asyncio.run(load(url, headers, body, concurrency, args.seconds))
                    runs.setdefault((concurrency, name), []).append(result)
                    cpu = result.get("cpu_us", {})
                    print(
                        f"round {round_no + 1} c={concurrency:<3} {name:<9} "
                        f"{result['rps']:8.0f} req/s  p50 {result['p50_ms']:7.3f} ms  "
                        f"cpu µs/req {cpu}",
                        flush=True,
                    )
        rows = []
        for concurrency in levels:
            bare = median_of(runs[concurrency, "bare"])
            row: dict = {"concurrency": concurrency, "bare": bare}
            for name in list(urls)[1:]:
                call = median_of(runs[concurrency, name])
                ratios = [
                    c["rps"] / b["rps"]
                    for b, c in zip(runs[concurrency, "bare"], runs[concurrency, name], strict=True)
                ]
                suffix = "" if name == "sync_call" else f"_{name}"
                row[f"p50_ms_added{suffix}"] = round(call["p50_ms"] - bare["p50_ms"], 3)
                row[f"p50_ratio{suffix}"] = round(call["p50_ms"] / bare["p50_ms"], 2)
                row[f"throughput_ratio{suffix}"] = round(statistics.median(ratios), 3)
                row[name] = call
            rows.append(row)
        print()
        print(f"{'conc':>4} {'bare req/s':>10} {'call req/s':>10} {'ratio':>6} "
              f"{'bare p50':>9} {'call p50':>9}  call cpu µs/req by process")  # fmt: skip
        for row in rows:
            b, c = row["bare"], row["sync_call"]
            print(
                f"{row['concurrency']:>4} {b['rps']:>10.0f} {c['rps']:>10.0f} "
                f"{row['throughput_ratio']:>6.3f} {b['p50_ms']:>9.3f} {c['p50_ms']:>9.3f}  "
                f"{c.get('cpu_us', '')}"
            )
        for row in rows if args.confirm else []:
            for name in ("async", "async_wait1"):
                c = row[name]
                print(
                    f"{row['concurrency']:>4} {name:<11} {c['rps']:>8.0f} req/s "
                    f"(x{row[f'throughput_ratio_{name}']:.3f} of bare), p50 {c['p50_ms']:.3f} ms, "
                    f"errors {c['errors']}"
                )
        out = {
            "machine": f"{platform.node()} {os.cpu_count()} cpus, {platform.python_version()}",
            "load_average_1m": {
                "min": round(min(loads), 2),
                "median": round(statistics.median(loads), 2),
                "max": round(max(loads), 2),
            },
            "worker_processes": args.processes,
            "http_processes": args.http_processes,
            "seconds_per_run": args.seconds,
            "rounds": args.rounds,
            "client": f"{args.client} on the same machine",
            "redis": ("private redis-server over TCP loopback" if redis_proc else args.redis_url)
            + (", with a replica (async_wait1: enqueue_replicas 1)" if args.confirm else ""),
            "records": "on",
            "figures": "medians over the rounds; throughput_ratio: median of each round's "
            "<route> / bare; cpu_us: CPU microseconds per request by process",
            "rows": rows,
        }
        results = Path(__file__).parent / "results"
        results.mkdir(exist_ok=True)
        (results / args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        keys = list(services.redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            services.redis.delete(*keys)
        services.close()
        for proc in (redis_proc, replica_proc):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
