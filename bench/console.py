"""The console's data calls at scale: server time of every call the overview and tasks pages
make, the live feed's CPU with pages open under load, and the console page's cold-load bytes.

    python bench/console.py [--records 100000] [--functions 1000] [--db sqlite|postgresql|mysql]
                            [--rate 5000] [--seconds 10] [--clients 10] [--static DIR]

A fresh project (SQLite file, or a new PostgreSQL or MySQL/MariaDB database) gets
`--functions` scripts of one function each and `--records` task records (spread over a day:
90% success, failures, timeouts, dead; origins api, cron, sub, http), and the per-minute stats
of the last hour that workers would have written for those functions (PostgreSQL and MySQL are
ANALYZEd after the insert, as their background statistics would be soon after it). Then a
real `fnhub server` and `fnhub worker` (2 processes) run on the machine's Redis under a fresh
key prefix.

1. Server time (the access log's `ms`, measured in the server's middleware) of each call,
   `--repeat` times, p50/p99; the routes of other branches (task record detail, cursor paging,
   dead letters) are measured when the server has them. The feed's first message is timed by
   the client (request sent → first snapshot read), cold (the producer starts for this page)
   and warm (another page listens).
2. The feed's cost: the server's CPU (from /proc) over `--seconds` while tasks run at up to
   `--rate` per second, with no page open and then with `--clients` pages streaming, beside
   `/healthz`'s server time in the same windows.
3. The bytes of a cold load of the console page (index.html and the assets it names, as
   sent: the precompressed .br/.gz file where the build has one), if the build exists.

Prints a table and writes bench/results/console.json.
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from fnhub.bootstrap import open_services
from fnhub.config import load_settings
from fnhub.queue import ResultBatch, add_enqueue, add_stats
from fnhub.server.auth import create_key
from fnhub.store.db import make_engine
from fnhub.store.models import TaskRecord
from fnhub.tasks import Status, Task, result_for

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
MYSQL_URL = "mysql://root@127.0.0.1:3306"
ROOT = Path(__file__).resolve().parent.parent
STATUSES = [("success", 90), ("failure", 7), ("timeout", 2), ("dead", 1)]
ORIGINS = ["api", "cron", "sub", "http"]
LOAD_SCRIPT = "import fnhub\n\n@fnhub.api()\ndef noop(i=0):\n    return i\n"


def script_code(i: int) -> str:
    return (
        "import fnhub\n\n\n"
        f"@fnhub.api(category='bench', tags=['t{i % 10}'])\n"
        f"def f{i}(a: int, b: str = 'x', *, c: float = 1.5) -> dict:\n"
        f'    """Function {i} of the console bench."""\n'
        "    return {'a': a, 'b': b, 'c': c}\n"
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- seeding ------------------------------------------------------------------------------------


def seed_records(db: Any, n: int, functions: list[str]) -> dict[str, Any]:
    """`n` task records; returns a few of them to ask for (ids, a function, an origin id)."""
    rng = random.Random(7)
    now = time.time()
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    sample: dict[str, Any] = {"ids": []}
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        for start in range(0, n, 5000):
            rows = []
            for i in range(start, min(start + 5000, n)):
                function = functions[int(rng.paretovariate(1.2)) % len(functions)]
                status = rng.choice(statuses)
                origin = ORIGINS[i % len(ORIGINS)]
                trigger = now - rng.random() * 86400
                run_ms = rng.lognormvariate(1.0, 1.5)
                failed = status != "success"
                rows.append(
                    {
                        "id": f"{uuid.uuid4().hex}",
                        "function": function,
                        "version": "h" * 8,
                        "origin": origin,
                        "origin_id": f"{origin}-{i % 50}",
                        "queue": "sync",
                        "kwargs": {"a": i, "b": "x" * 40},
                        "status": status,
                        "attempt": 1,
                        "trigger_time": trigger,
                        "start_time": trigger + 0.001,
                        "end_time": trigger + 0.001 + run_ms / 1000,
                        "wait_ms": 1.0,
                        "run_ms": run_ms,
                        "result": None if failed else {"a": i, "b": "x" * 40, "c": 1.5},
                        "error_type": "ValueError" if failed else None,
                        "error_message": f"bad value {i}" if failed else None,
                        "traceback": "Traceback (most recent call last):\n  ...\n" * 5
                        if failed
                        else None,
                        "logs": f"log line {i}\n" * 3,
                    }
                )
            conn.execute(sa.insert(TaskRecord), rows)
            sample["ids"].extend(r["id"] for r in rows[:: max(1, len(rows) // 20)])
    sample["function"] = functions[1]
    sample["origin_id"] = "cron-1"
    sample["seconds"] = time.perf_counter() - t0
    return sample


def seed_minute_stats(client: redis.Redis, keys: Any, functions: list[str]) -> int:
    """The per-minute hashes workers would have written over the last hour: every function
    ran a few times a minute (what a busy hour looks like to the overview)."""
    rng = random.Random(3)
    now = time.time()
    results = 0
    for back in range(60):
        batch = ResultBatch()
        end = now - back * 60
        for i, function in enumerate(functions):
            for _ in range(1 + i % 3):
                task = Task(function=function, queue="sync")
                status = Status.FAILURE if rng.random() < 0.05 else Status.SUCCESS
                run = rng.lognormvariate(-6, 1.5)
                add_stats(batch, result_for(task, status, start_time=end - run, end_time=end))
                results += 1
        pipe = client.pipeline(transaction=False)
        batch.flush(pipe, keys)
        pipe.execute()
    return results


def fresh_database(kind: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'fnhub.db'}", lambda: None
    name = f"fnhub_bench_{uuid.uuid4().hex[:8]}"
    server = POSTGRES_URL if kind == "postgresql" else MYSQL_URL
    admin = make_engine(server + "/postgres" if kind == "postgresql" else server)
    admin = admin.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}{force}"))
        admin.engine.dispose()

    return f"{server}/{name}", drop


# -- the stack ----------------------------------------------------------------------------------


class Stack:
    def __init__(self, tmp: Path, db_url: str, prefix: str) -> None:
        self.tmp = tmp
        self.port = random.randrange(20_000, 30_000)
        self.env = {
            **os.environ,
            "FNHUB_REDIS_URL": REDIS_URL,
            "FNHUB_KEY_PREFIX": prefix,
            "FNHUB_DATA_DIR": str(tmp / ".fnhub"),
            "FNHUB_DB_URL": db_url,
            "FNHUB_PROCESSES": "2",
            "FNHUB_PORT": str(self.port),
            "FNHUB_ACCESS_LOG": "true",
            "FNHUB_QUEUE_MAX_LENGTH": "1000000",
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        def cli(*args: str, stderr: Any) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-c", "from fnhub.cli import main; main()", *args],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

        self.worker = cli("worker", "-p", str(self.tmp), stderr=subprocess.DEVNULL)
        self.server = cli("server", "-p", str(self.tmp), stderr=self.log.open("wb"))
        self.processes = [self.worker, self.server]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not get ready in 120 s")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def server_cpu(self) -> float:
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def server_times(self) -> dict[str, list[float]]:
        """Request id prefix (`<call>-<n>` → call) → the access log's ms."""
        times: dict[str, list[float]] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            start = line.find('{"request_id"')
            if start < 0:
                continue
            entry = json.loads(line[start:])
            call = entry["request_id"].rpartition("-")[0]
            times.setdefault(call, []).append(entry["ms"])
        return times


# -- measurements -------------------------------------------------------------------------------


def data_calls(c: httpx.Client, sample: dict[str, Any]) -> dict[str, str]:
    """name → path of every data call the overview and tasks pages make (those this server
    has: other branches add routes)."""
    paths = set(c.get("/openapi.json").json()["paths"])
    since = time.time() - 3600
    task_id = sample["ids"][len(sample["ids"]) // 2]
    calls = {
        "healthz (scale)": "/healthz",
        "overview": "/api/v1/overview",
        "functions list": "/api/v1/functions",
        "function stats (hour)": "/api/v1/stats/functions",
        f"function stats {sample['function']}": f"/api/v1/stats/functions/{sample['function']}",
        "scripts list": "/api/v1/scripts",
        "drafts list": "/api/v1/drafts",
        "workers": "/api/v1/workers",
        "queues": "/api/v1/queues",
        "tasks: first page": "/api/v1/tasks?limit=50",
        "tasks: function": f"/api/v1/tasks?function={sample['function']}&limit=50",
        "tasks: status=failure": "/api/v1/tasks?status=failure&limit=50",
        "tasks: status=dead": "/api/v1/tasks?status=dead&limit=50",
        "tasks: origin=cron": "/api/v1/tasks?origin=cron&limit=50",
        "tasks: origin+origin_id": f"/api/v1/tasks?origin=cron&origin_id={sample['origin_id']}",
        "tasks: last hour": f"/api/v1/tasks?since={since}&limit=50",
        "tasks: function+status": f"/api/v1/tasks?function={sample['function']}&status=failure",
        "tasks: page 100 (offset)": "/api/v1/tasks?limit=50&offset=5000",
        "task detail": f"/api/v1/tasks/{task_id}",
    }
    if "/api/v1/tasks/{task_id}/record" in paths:
        calls["task record (h18)"] = f"/api/v1/tasks/{task_id}/record"
    if "/api/v1/dead-letters" in paths:
        calls["dead letters (h18)"] = "/api/v1/dead-letters"
    first = c.get("/api/v1/tasks?limit=50").json()
    if first.get("next_cursor"):
        calls["tasks: next page (cursor)"] = f"/api/v1/tasks?limit=50&cursor={first['next_cursor']}"
        calls["tasks: text q=bad (h18)"] = "/api/v1/tasks?q=bad&limit=50"
        calls["tasks: text q=one record"] = "/api/v1/tasks?q=value+4242&limit=50"
    return calls


def time_calls(c: httpx.Client, calls: dict[str, str], repeat: int) -> None:
    for name, path in calls.items():
        slug = re.sub(r"[^A-Za-z0-9]+", ".", name).strip(".")
        for i in range(repeat):
            answer = c.get(path, headers={"X-Request-Id": f"{slug}-{i}"})
            if answer.status_code != 200:
                raise RuntimeError(f"{name}: {path} answered {answer.status_code}: {answer.text}")


def first_snapshot_ms(c: httpx.Client) -> float:
    t0 = time.perf_counter()
    with c.stream("GET", "/api/v1/events") as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                return (time.perf_counter() - t0) * 1000
    raise RuntimeError("the feed ended without a snapshot")


class Listener(threading.Thread):
    """One open console page: reads the feed, counts snapshots and bytes."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, headers=headers, timeout=30)
        self.snapshots = 0
        self.bytes = 0
        self.stopping = False

    def run(self) -> None:
        try:
            with self.client.stream("GET", "/api/v1/events") as response:
                for line in response.iter_lines():
                    self.bytes += len(line) + 1
                    if line.startswith("data:"):
                        self.snapshots += 1
                    if self.stopping:
                        return
        except httpx.HTTPError:
            pass

    def stop(self) -> None:
        self.stopping = True
        self.client.close()


class Load(threading.Thread):
    """Enqueues `load.noop` tasks at up to `rate` a second (in 20 ms steps)."""

    def __init__(self, keys: Any, rate: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(REDIS_URL)
        self.keys = keys
        self.rate = rate
        self.sent = 0
        self.stopping = False

    def run(self) -> None:
        step = 0.02
        per_step = max(1, int(self.rate * step))
        due = time.monotonic()
        while not self.stopping:
            pipe = self.client.pipeline(transaction=False)
            for _ in range(per_step):
                add_enqueue(pipe, self.keys, Task(function="load.noop", queue="sync"))
            pipe.execute()
            self.sent += per_step
            due += step
            time.sleep(max(0.0, due - time.monotonic()))


def finished(client: redis.Redis, keys: Any) -> int:
    stats = client.hgetall(keys.stats)
    return sum(int(v) for k, v in stats.items() if k.startswith(b"n|sync|"))


def feed_cost(
    stack: Stack, headers: dict[str, str], keys: Any, rate: int, seconds: float, clients: int
) -> list[dict[str, Any]]:
    r = redis.Redis.from_url(REDIS_URL)
    load = Load(keys, rate)
    load.start()
    time.sleep(3)  # the workers catch up
    rows = []
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as c:
        for pages in (0, clients, 0):
            listeners = [Listener(stack.url, headers) for _ in range(pages)]
            for listener in listeners:
                listener.start()
            time.sleep(2)  # the producer runs (or stopped)
            tag = f"healthz.{pages}.{len(rows)}"
            cpu0, done0, t0 = stack.server_cpu(), finished(r, keys), time.perf_counter()
            snapshots0 = sum(listener.snapshots for listener in listeners)
            i = 0
            while time.perf_counter() - t0 < seconds:
                c.get("/healthz", headers={"X-Request-Id": f"{tag}-{i}"})
                i += 1
                time.sleep(0.1)
            elapsed = time.perf_counter() - t0
            cpu, done = stack.server_cpu() - cpu0, finished(r, keys) - done0
            snapshots = sum(listener.snapshots for listener in listeners) - snapshots0
            for listener in listeners:
                listener.stop()
            healthz = stack.server_times().get(tag, [0.0])
            rows.append(
                {
                    "pages": pages,
                    "tasks_per_s": round(done / elapsed),
                    "server_cpu_percent": round(100 * cpu / elapsed, 1),
                    "snapshots_per_s": round(snapshots / elapsed, 2),
                    "healthz_p50_ms": round(pct(healthz, 0.5), 3),
                    "healthz_p99_ms": round(pct(healthz, 0.99), 3),
                }
            )
    load.stopping = True
    load.join()
    r.close()
    return rows


def cold_load_bytes(static: Path) -> dict[str, Any] | None:
    index = static / "index.html"
    if not index.exists():
        return None
    html = index.read_text()
    names = re.findall(r'(?:src|href)="/?([^"#?]+)"', html)
    files = {"index.html": len(html.encode())}
    sent = {"index.html": _sent_size(index)}
    for name in names:
        path = static / name.removeprefix("static/")
        if path.is_file():
            files[name] = path.stat().st_size
            sent[name] = _sent_size(path)
    return {
        "files": len(files),
        "bytes_raw": sum(files.values()),
        "bytes_sent": sum(sent.values()),
        "by_file": sent,
    }


def _sent_size(path: Path) -> int:
    for suffix in (".br", ".gz"):
        packed = path.with_name(path.name + suffix)
        if packed.exists():
            return packed.stat().st_size
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--functions", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "mysql"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--static", type=Path, default=ROOT / "src/fnhub/console/static")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/console.json")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fnhub-console-bench-"))
    (tmp / "scripts").mkdir()
    prefix = f"bench-console-{uuid.uuid4().hex[:8]}"
    db_url, drop_database = fresh_database(args.db, tmp)
    os.environ.update({"FNHUB_REDIS_URL": REDIS_URL, "FNHUB_KEY_PREFIX": prefix})
    os.environ.update({"FNHUB_DB_URL": db_url, "FNHUB_DATA_DIR": str(tmp / ".fnhub")})
    settings = load_settings(tmp)
    services = open_services(settings)
    stack = Stack(tmp, db_url, prefix)
    result: dict[str, Any] = {"db": args.db, "records": args.records, "functions": args.functions}
    try:
        t0 = time.perf_counter()
        scripts = {f"s{i}": script_code(i) for i in range(args.functions)}
        services.scripts.publish({**scripts, "load": LOAD_SCRIPT})
        result["seed_publish_s"] = round(time.perf_counter() - t0, 1)
        functions = [f"s{i}.f{i}" for i in range(args.functions)]
        sample = seed_records(services.db, args.records, functions)
        if args.db == "postgresql":  # what autovacuum does soon after such an insert
            with services.db.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
        elif args.db == "mysql":  # what InnoDB's background statistics do soon after
            with services.db.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE TABLE task_records"))
        result["seed_records_s"] = round(sample["seconds"], 1)
        result["minute_stats_results"] = seed_minute_stats(services.redis, services.keys, functions)
        _row, token = create_key(services.db, "bench")
        headers = {"Authorization": f"Bearer {token}"}
        stack.start()
        with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as c:
            calls = data_calls(c, sample)
            time_calls(c, calls, 3)  # warm-up: caches, the hour window
            stack.log.write_bytes(b"")  # measure from here
            time_calls(c, calls, args.repeat)
            times = stack.server_times()
            result["calls"] = {}
            for name, path in calls.items():
                slug = re.sub(r"[^A-Za-z0-9]+", ".", name).strip(".")
                ms = times[slug]
                result["calls"][name] = {
                    "path": path,
                    "p50_ms": round(pct(ms, 0.5), 2),
                    "p99_ms": round(pct(ms, 0.99), 2),
                    "bytes": len(c.get(path).content),
                }
            cold = []
            for _ in range(5):
                time.sleep(2.5)  # the producer stopped: this page starts it
                cold.append(first_snapshot_ms(c))
            keeper = Listener(stack.url, headers)
            keeper.start()
            time.sleep(2)
            warm = [first_snapshot_ms(c) for _ in range(30)]
            keeper.stop()
            result["events_first_message"] = {
                "cold_p50_ms": round(statistics.median(cold), 2),
                "cold_max_ms": round(max(cold), 2),
                "warm_p50_ms": round(pct(warm, 0.5), 2),
                "warm_p99_ms": round(pct(warm, 0.99), 2),
                "measured": "client side, request sent → first snapshot read",
            }
        result["feed_cost"] = feed_cost(
            stack, headers, services.keys, args.rate, args.seconds, args.clients
        )
        result["cold_load"] = cold_load_bytes(args.static)
    finally:
        stack.stop()
        services.close()
        drop_database()
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])
        r.close()

    print(f"\n{args.db}, {args.records} records, {args.functions} functions")
    print(f"{'call':40} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9}")
    for name, row in result["calls"].items():
        print(f"{name:40} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['bytes']:9d}")
    first = result["events_first_message"]
    print(
        f"{'events: first snapshot, cold (client)':40} {first['cold_p50_ms']:8.2f} "
        f"{first['cold_max_ms']:8.2f} (max)"
    )
    print(
        f"{'events: first snapshot, warm (client)':40} {first['warm_p50_ms']:8.2f} "
        f"{first['warm_p99_ms']:8.2f}"
    )
    print(f"\n{'pages open':>10} {'tasks/s':>8} {'server CPU %':>13} {'snapshots/s':>12} "
          f"{'healthz p50':>12} {'p99 ms':>7}")  # fmt: skip
    for row in result["feed_cost"]:
        print(
            f"{row['pages']:>10} {row['tasks_per_s']:>8} {row['server_cpu_percent']:>13} "
            f"{row['snapshots_per_s']:>12} {row['healthz_p50_ms']:>12} {row['healthz_p99_ms']:>7}"
        )
    cold = result["cold_load"]
    print(
        f"\nconsole cold load: {cold['files']} files, {cold['bytes_sent']} bytes sent "
        f"({cold['bytes_raw']} uncompressed)"
        if cold
        else "\nconsole cold load: no build in " + str(args.static)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    existing[args.db] = result
    args.out.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
