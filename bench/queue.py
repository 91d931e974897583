"""Queue throughput and latency: fnhub workers beside a raw Redis Streams loop, same run.

    python bench/queue.py [--tasks 20000] [--redis redis://127.0.0.1:6379/0]

Rows: the raw loop (producer thread pipelining XADD while a consumer does XREADGROUP COUNT 100 +
XACK), then fnhub with 1, 2 and 4 worker processes running a trivial function, records on.
Throughput counts from the first enqueue to the last reply; latency is enqueue → reply of one
task at a time on an idle worker. Every row runs `--rounds` times, interleaved, and the table
shows medians (the ratio is the median of each round's ratio to that round's raw loop), since
this machine is shared. The CPU columns say where the time of a task goes: microseconds of CPU
per task spent by the bench client (enqueue + reading replies), the worker supervisor (with its
recorder thread, which writes the task records), the worker children, and the Redis server. Writes
bench/results/queue.json.
"""

from __future__ import annotations

import sys

# this file is named like the stdlib `queue` module: keep its folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.process
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from fnhub.bootstrap import open_services
from fnhub.calling.maker import make_task
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings
from fnhub.queue import add_enqueue, iter_results

SCRIPT = "import fnhub\n\n@fnhub.api()\ndef noop(i=0):\n    return i\n"


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def process_tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process, and of its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))

    def cpu(p: int) -> float:
        return (int(stats[p][11]) + int(stats[p][12])) / tick if p in stats else 0.0

    descendants, todo = 0.0, list(children.get(pid, []))
    while todo:
        current = todo.pop()
        descendants += cpu(current)
        todo.extend(children.get(current, []))
    return cpu(pid), descendants


def raw_loop(url: str, n: int) -> dict[str, float]:
    """Tasks/s of the bare XADD → XREADGROUP → XACK loop with the producer running alongside."""
    r = redis.Redis.from_url(url)
    stream = f"bench-raw-{uuid.uuid4().hex[:8]}"
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    payload = {"e": b"x" * 120}

    def produce() -> None:
        p = redis.Redis.from_url(url)
        for start in range(0, n, 1000):
            pipe = p.pipeline(transaction=False)
            for _ in range(min(1000, n - start)):
                pipe.xadd(stream, payload)
            pipe.execute()

    cpu0, redis0 = time.process_time(), redis_cpu(r)
    t0 = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    done = 0
    while done < n:
        resp = r.xreadgroup("g", "c", {stream: ">"}, count=100, block=1000)
        for _s, entries in resp or ():
            ids = [e[0] for e in entries]
            pipe = r.pipeline(transaction=False)
            pipe.xack(stream, "g", *ids)
            pipe.xdel(stream, *ids)
            pipe.execute()
            done += len(ids)
    elapsed = time.perf_counter() - t0
    producer.join()
    figures = {
        "tasks_per_s": n / elapsed,
        "cpu_us_client": (time.process_time() - cpu0) / n * 1e6,
        "cpu_us_redis": (redis_cpu(r) - redis0) / n * 1e6,
    }
    r.delete(stream)
    return figures


def _supervise(settings_json: str, processes: int) -> None:
    from fnhub.worker.supervisor import Supervisor

    Supervisor(Settings.model_validate_json(settings_json), ["sync"], processes).run()


@contextlib.contextmanager
def worker_stack(
    url: str, processes: int, records: bool, scripts: dict[str, str], languages: dict[str, str]
) -> Iterator[tuple[Settings, QueueClient, multiprocessing.process.BaseProcess]]:
    """`scripts` published under a key prefix of their own and a worker of `processes` children
    listening on "sync" (started by `_supervise`), up; the worker stopped and the prefix's keys
    deleted after."""
    tmp = Path(tempfile.mkdtemp())
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        project_dir=tmp,
        data_dir=tmp,
        redis_url=url,
        db_url=f"sqlite:///{tmp}/b.db",
        key_prefix=prefix,
        records_enabled=records,
        heartbeat_seconds=0.5,
    )
    services = open_services(settings)
    services.scripts.publish(scripts, languages=languages)
    client = QueueClient(settings)
    proc = multiprocessing.get_context("spawn").Process(
        target=_supervise, args=(settings.model_dump_json(), processes)
    )
    proc.start()
    try:
        while not client.queue_has_worker("sync"):
            time.sleep(0.05)
        yield settings, client, proc
    finally:
        proc.terminate()
        proc.join(20)
        keys = list(client.redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.redis.delete(*keys)
        client.close()
        services.close()


def fnhub_run(
    url: str,
    n: int,
    processes: int,
    records: bool,
    *,
    function: str = "bench.noop",
    code: str = SCRIPT,
    language: str = "python",
) -> dict[str, float]:
    """Figures of fnhub running `function` (of the script `code`, published as "bench")."""
    stack = worker_stack(url, processes, records, {"bench": code}, {"bench": language})
    with stack as (settings, client, proc):
        active = client.active()
        # warm every child (module load) before measuring
        for _ in range(processes * 4):
            client.call(function, {})
        # latency: one task at a time, idle worker
        latencies = []
        for i in range(300):
            t = time.perf_counter()
            result = client.call(function, {"i": i})
            latencies.append((time.perf_counter() - t) * 1000)
            assert result.ok
        # throughput: enqueue everything (pipelined), read replies
        reply = client.reply_stream
        cpu0, redis0 = time.process_time(), redis_cpu(client.redis)
        workers0 = process_tree_cpu(proc.pid)
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            pipe = client.redis.pipeline(transaction=False)
            for i in range(start, min(start + 500, n)):
                add_enqueue(
                    pipe,
                    client.keys,
                    make_task(
                        settings, active, function, {"i": i}, reply_to=reply, check_kwargs=False
                    ),
                )
            pipe.execute()
        got, last = 0, client._last_reply
        while got < n:
            resp = client.redis.xread({reply: last}, count=1000, block=2000)
            for _s, entries in resp or ():
                for entry_id, fields in entries:
                    last = entry_id
                    for result in iter_results(fields):
                        assert result.status == "success"
                        got += 1
        elapsed = time.perf_counter() - t0
        cpu_client = time.process_time() - cpu0
        workers1 = process_tree_cpu(proc.pid)
        cpu_redis = redis_cpu(client.redis) - redis0
        latencies.sort()
        return {
            "tasks_per_s": n / elapsed,
            "cpu_us_client": cpu_client / n * 1e6,
            "cpu_us_supervisor": (workers1[0] - workers0[0]) / n * 1e6,
            "cpu_us_children": (workers1[1] - workers0[1]) / n * 1e6,
            "cpu_us_redis": cpu_redis / n * 1e6,
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        }


def cell(row: dict, key: str, spec: str) -> str:
    """A table cell: the row's figure formatted, or "-" where the row has none."""
    return format(row[key], spec) if key in row else "-"


def median_row(name: str, rounds: list[dict[str, float]], ratios: list[float]) -> dict:
    row: dict[str, Any] = {"name": name, "rounds": rounds}
    for key in rounds[0]:
        row[key] = statistics.median(r[key] for r in rounds)
    row["ratio_to_raw"] = statistics.median(ratios)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    names = ["raw XADD/XREADGROUP/XACK loop"]
    names += [f"fnhub, {p} process(es), records on" for p in (1, 2, 4)]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(args.rounds):
        raw = raw_loop(args.redis, args.tasks)
        runs[names[0]].append(raw)
        ratios[names[0]].append(1.0)
        for name, processes in zip(names[1:], (1, 2, 4), strict=True):
            figures = fnhub_run(args.redis, args.tasks, processes, records=True)
            runs[name].append(figures)
            ratios[name].append(figures["tasks_per_s"] / raw["tasks_per_s"])
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    rows = [median_row(name, runs[name], ratios[name]) for name in names]
    print(
        f"{'':38} {'tasks/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'cpu µs/task: client':>20} {'supervisor':>10} {'children':>8} {'redis':>6}"
    )
    for row in rows:
        print(
            f"{row['name']:38} {row['tasks_per_s']:>8.0f} {row['ratio_to_raw']:>6.2f}"
            f" {cell(row, 'p50_ms', '.2f'):>7} {cell(row, 'p99_ms', '.2f'):>7}"
            f" {cell(row, 'cpu_us_client', '.1f'):>20}"
            f" {cell(row, 'cpu_us_supervisor', '.1f'):>10}"
            f" {cell(row, 'cpu_us_children', '.1f'):>8} {cell(row, 'cpu_us_redis', '.1f'):>6}"
        )
    out = Path(__file__).parent / "results" / "queue.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"tasks": args.tasks, "rounds": args.rounds, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
