"""Cron beat benchmark: N jobs firing every second; firing delay and the beat's CPU.

Firing delay = the Redis time of the task's stream entry (its id) minus the tick it belongs to,
so it is what a worker would see, measured by Redis' own clock. The beat runs as a real
`fnhub beat` process; no worker runs (the stream is read and trimmed by this script).

    python bench/cron.py --jobs 10000 --seconds 30
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid

import psutil
import redis

from fnhub.bootstrap import open_services
from fnhub.config import Settings
from fnhub.cron.jobs import add_bump
from fnhub.cron.models import CronJob
from fnhub.tasks import decode_task

SCRIPT = "import fnhub\n\n@fnhub.api()\ndef noop(i: int = 0):\n    return i\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=12.0)
    parser.add_argument("--overlap", default="allow", choices=["allow", "skip"])
    parser.add_argument(
        "--spread", action="store_true", help="each job once a minute at second i % 60"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    project = Path(tempfile.mkdtemp(prefix="fnhub-bench-cron-"))
    settings = Settings(
        redis_url=args.redis,
        data_dir=project / ".fnhub",
        project_dir=project,
        key_prefix=f"bench-cron-{uuid.uuid4().hex[:8]}",
    )
    services = open_services(settings)
    services.scripts.publish({"bench": SCRIPT})
    now = time.time()
    with services.db.session() as session, session.begin():
        session.add_all(
            CronJob(
                id=f"job-{i:05d}",
                function="bench.noop",
                expr=f"{i % 60} * * * * *" if args.spread else "* * * * * *",
                kwargs={"i": i},
                enabled=True,
                misfire="skip",
                overlap=args.overlap,
                title="",
                provisioned=False,
                created_at=now,
                updated_at=now,
            )
            for i in range(args.jobs)
        )
    pipe = services.redis.pipeline()
    add_bump(pipe, services.keys)
    pipe.execute()

    env = {
        **os.environ,
        "FNHUB_REDIS_URL": args.redis,
        "FNHUB_KEY_PREFIX": settings.key_prefix,
        "FNHUB_DATA_DIR": str(settings.data_dir),
    }
    beat = subprocess.Popen(
        [sys.executable, "-c", "from fnhub.cli import main; main()", "beat", "-p", str(project)],
        env=env,
    )
    proc = psutil.Process(beat.pid)
    client = redis.Redis.from_url(args.redis)
    stream = services.keys.queue("cron")
    delays: list[float] = []
    per_tick: dict[int, int] = {}
    spread: dict[int, list[float]] = {}
    cpu_start = None
    measure_from = time.time() + args.warmup
    end = measure_from + args.seconds
    last_id = "0-0"
    try:
        while time.time() < end:
            if cpu_start is None and time.time() >= measure_from:
                t = proc.cpu_times()
                cpu_start = (t.user + t.system, time.time())
            entries = client.xrange(
                stream, min=f"({last_id}" if last_id != "0-0" else "-", count=20000
            )
            if not entries:
                time.sleep(0.05)
                continue
            for entry_id, fields in entries:
                ms = int(entry_id.split(b"-")[0])
                tick = decode_task(fields[b"e"]).meta["cron"]["tick"]
                if tick >= measure_from:
                    delays.append(ms / 1000 - tick)
                    spread.setdefault(tick, []).append(ms / 1000 - tick)
                    per_tick[tick] = per_tick.get(tick, 0) + 1
            last_id = entries[-1][0].decode()
            client.xtrim(stream, minid=last_id)
        t = proc.cpu_times()
        assert cpu_start is not None
        cpu = (t.user + t.system - cpu_start[0]) / (time.time() - cpu_start[1])
    finally:
        beat.terminate()
        beat.wait(10)
        keys = list(client.scan_iter(f"{settings.key_prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        services.close()
    full = [t for t in per_tick if t < end - 2]

    def expected(tick: int) -> int:
        if not args.spread:
            return args.jobs
        return len(range(tick % 60, args.jobs, 60))

    result = {
        "jobs": args.jobs,
        "ticks_measured": len(full),
        "tasks": len(delays),
        "ticks_with_all_jobs": sum(1 for t in full if per_tick[t] == expected(t)),
        "schedule": "one job in 60 per second" if args.spread else "every job every second",
        "max_tasks_per_tick": max(per_tick.values()) if per_tick else 0,
        "delay_ms_p50": round(percentile(delays, 0.50) * 1000, 1),
        "delay_ms_p99": round(percentile(delays, 0.99) * 1000, 1),
        "delay_ms_max": round(max(delays) * 1000, 1),
        "delay_ms_mean": round(statistics.fmean(delays) * 1000, 1),
        "beat_cpu_percent": round(cpu * 100, 1),
        "cpus": os.cpu_count(),
        "overlap": args.overlap,
    }
    if os.environ.get("BENCH_DEBUG"):
        for tick, values in sorted(spread.items()):
            print(tick, round(min(values) * 1000), round(max(values) * 1000))
    print(json.dumps(result, indent=2))
    name = f"cron-{args.jobs}{'-spread' if args.spread else ''}.json"
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
