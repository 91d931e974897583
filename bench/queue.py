"""Queue throughput and latency: fnhub workers beside a raw Redis Streams loop, same run.

    python bench/queue.py [--tasks 20000] [--redis redis://127.0.0.1:6379/0]

Rows: the raw loop (producer thread pipelining XADD while a consumer does XREADGROUP COUNT 100 +
XACK), then fnhub with 1, 2 and 4 worker processes running a trivial function, records on.
Throughput counts from the first enqueue to the last reply; latency is enqueue → reply of one
task at a time on an idle worker. Writes bench/results/queue.json.
"""

from __future__ import annotations

import sys

# this file is named like the stdlib `queue` module: keep its folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import argparse
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from fnhub.bootstrap import open_services
from fnhub.calls import make_task
from fnhub.client import Client
from fnhub.config import Settings
from fnhub.queue import add_enqueue
from fnhub.tasks import decode_result

SCRIPT = "import fnhub\n\n@fnhub.api()\ndef noop(i=0):\n    return i\n"


def raw_loop(url: str, n: int) -> float:
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
    r.delete(stream)
    return n / elapsed


def _supervise(settings_json: str, processes: int) -> None:
    from fnhub.worker.supervisor import Supervisor

    Supervisor(Settings.model_validate_json(settings_json), ["sync"], processes).run()


def fnhub_run(url: str, n: int, processes: int, records: bool) -> dict[str, float]:
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
    services.scripts.publish({"bench": SCRIPT})
    client = Client(settings)
    proc = multiprocessing.get_context("spawn").Process(
        target=_supervise, args=(settings.model_dump_json(), processes)
    )
    proc.start()
    try:
        while not client.queue_has_worker("sync"):
            time.sleep(0.05)
        active = client.active()
        # warm every child (module load) before measuring
        for _ in range(processes * 4):
            client.call("bench.noop", {})
        # latency: one task at a time, idle worker
        latencies = []
        for i in range(300):
            t = time.perf_counter()
            result = client.call("bench.noop", {"i": i})
            latencies.append((time.perf_counter() - t) * 1000)
            assert result.ok
        # throughput: enqueue everything (pipelined), read replies
        reply = client.reply_stream
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            pipe = client.redis.pipeline(transaction=False)
            for i in range(start, min(start + 500, n)):
                add_enqueue(
                    pipe,
                    client.keys,
                    make_task(
                        settings, active, "bench.noop", {"i": i}, reply_to=reply, check_kwargs=False
                    ),
                )
            pipe.execute()
        got, last = 0, client._last_reply
        while got < n:
            resp = client.redis.xread({reply: last}, count=1000, block=2000)
            for _s, entries in resp or ():
                for entry_id, fields in entries:
                    last = entry_id
                    assert decode_result(fields[b"r"]).status == "success"
                    got += 1
        elapsed = time.perf_counter() - t0
        latencies.sort()
        return {
            "tasks_per_s": n / elapsed,
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        }
    finally:
        proc.terminate()
        proc.join(20)
        keys = list(client.redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.redis.delete(*keys)
        client.close()
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    raw = raw_loop(args.redis, args.tasks)
    rows = [{"name": "raw XADD/XREADGROUP/XACK loop", "tasks_per_s": raw}]
    for processes in (1, 2, 4):
        figures = fnhub_run(args.redis, args.tasks, processes, records=True)
        rows.append({"name": f"fnhub, {processes} process(es), records on", **figures})
    print(f"{'':40} {'tasks/s':>10} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        ratio = row["tasks_per_s"] / raw
        row["ratio_to_raw"] = ratio
        p50 = f"{row['p50_ms']:.2f}" if "p50_ms" in row else "-"
        p99 = f"{row['p99_ms']:.2f}" if "p99_ms" in row else "-"
        print(f"{row['name']:40} {row['tasks_per_s']:>10.0f} {ratio:>7.2f} {p50:>8} {p99:>8}")
    out = Path(__file__).parent / "results" / "queue.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"tasks": args.tasks, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
