"""How soon a worker killed whole has its task run on another worker, and what an idle worker
costs Redis.

    PYTHONPATH=$PWD/src:$PWD python bench/dead_worker.py [--rounds 6] [--against /work/main/src]

Per round: a victim worker (a `fnhub worker` supervisor with one child, the default heartbeat)
takes a task that sleeps; a survivor worker starts, and once its own connections are past their
quiet time (`holders.QUIET_SECONDS`) the victim's supervisor and its children are SIGKILLed at a
random point of its beat second. The figure is from the kill to the start of the task's second
attempt on the survivor (the time the function read). `--against SRC` runs each round a second
time with another checkout's `src` (main: `/work/main/src`), interleaved, the order alternating,
and gives the ratio of the medians.

Then the Redis commands per second of an idle worker: two idle workers of each tree against a
Redis of the benchmark's own (a free port, no persistence), counted with `INFO commandstats`
after a warm-up, halved. Prints tables with the load average, writes
bench/results/dead_worker.json (`--out`).
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.endswith("bench")]  # bench/queue.py vs stdlib

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from fnhub.bootstrap import open_services
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings

REDIS_URL = os.environ.get("FNHUB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SURVIVOR_AGE = 3.5  # seconds the survivor runs before the kill: past its quiet time (3 s)
SCRIPT = """
import os
import time

import fnhub


@fnhub.api()
def held():
    if fnhub.context.attempt == 1:
        fnhub.cache.set("running", os.getpid())
        time.sleep(120)
    return time.time()
"""
WORKER = """
import sys
from fnhub.config import Settings
from fnhub.worker.supervisor import Supervisor
Supervisor(Settings.model_validate_json(sys.argv[1]), ["sync"], 1).run()
"""


def _settings(url: str) -> Settings:
    tmp = Path(tempfile.mkdtemp(prefix="dead-worker-"))
    return Settings(
        project_dir=tmp,
        data_dir=tmp,
        redis_url=url,
        db_url=f"sqlite:///{tmp}/b.db",
        key_prefix=f"bench-dead-{uuid.uuid4().hex[:8]}",
        records_enabled=False,
    )


def _worker(src: str, settings: Settings) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, settings.model_dump_json()],
        env={**env, "PYTHONPATH": src},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except OSError:
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        found.append(todo.pop())
        todo.extend(parents.get(found[-1], []))
    return found


def _wait(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("bench step timed out")
        time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _clean(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def one(src: str) -> float:
    """Seconds from the kill of a worker running a task to that task's start elsewhere."""
    settings = _settings(REDIS_URL)
    services = open_services(settings)
    services.scripts.publish({"bench": SCRIPT})
    client = QueueClient(settings)
    victim = _worker(src, settings)
    survivor = None
    try:
        _wait(lambda: client.queue_has_worker("sync"))
        task = client.submit("bench.held", {}, wait=True)
        _wait(lambda: client.redis.get(f"{settings.key_prefix}:cache:bench:running"))
        survivor = _worker(src, settings)
        _wait(lambda: len(client.workers()) == 2)
        time.sleep(SURVIVOR_AGE + random.random())  # a random point of the victim's beat
        children = _descendants(victim.pid)
        os.kill(victim.pid, signal.SIGKILL)
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        killed = time.time()
        victim.wait()
        result = client.wait(task.id, 30)
        assert result is not None and result.status == "success", result
        return float(result.result) - killed
    finally:
        for proc in (victim, survivor):
            if proc is not None:
                _stop(proc)
        _clean(client.redis, settings.key_prefix)
        client.close()
        services.close()


def idle(src: str, port: int, warmup: float, seconds: float) -> dict[str, float]:
    """Redis commands per second of one idle worker (two run, the count is halved), by
    command, against the benchmark's own Redis."""
    url = f"redis://127.0.0.1:{port}/0"
    r = redis.Redis(port=port)
    r.flushall()
    settings = _settings(url)
    services = open_services(settings)
    client = QueueClient(settings)
    workers = [_worker(src, settings) for _ in range(2)]
    try:
        _wait(lambda: len(client.workers()) == 2)
        time.sleep(warmup)
        r.config_resetstat()
        time.sleep(seconds)
        stats = r.info("commandstats")
    finally:
        for proc in workers:
            _stop(proc)
        client.close()
        services.close()
        r.close()
    calls = Counter(
        {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k != "cmdstat_info"}
    )
    per_s = {name: n / seconds / len(workers) for name, n in calls.most_common()}
    return {"total": sum(per_s.values()), **per_s}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--idle-rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--against", help="another checkout's src folder (e.g. main's)")
    parser.add_argument("--out", default="dead_worker.json")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent.parent / "src")
    sides = {"branch": here, **({"against": args.against} if args.against else {})}
    figures: dict[str, list[float]] = {side: [] for side in sides}
    loads: list[float] = []
    started = time.strftime("%H:%M:%S", time.gmtime())
    for n in range(args.rounds):
        for side in list(sides) if n % 2 == 0 else list(reversed(sides)):
            figures[side].append(one(sides[side]))
        loads.append(os.getloadavg()[0])
        print(
            f"round {n + 1}: "
            + ", ".join(f"{s} {figures[s][-1]:.2f} s" for s in sides)
            + f"  (load {loads[-1]:.2f})",
            flush=True,
        )
    port = free_port()
    work = tempfile.mkdtemp(prefix="dead-worker-redis-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", work],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    idles: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    try:
        time.sleep(0.5)
        for n in range(args.idle_rounds):
            for side in list(sides) if n % 2 == 0 else list(reversed(sides)):
                idles[side].append(idle(sides[side], port, args.warmup, args.seconds))
            loads.append(os.getloadavg()[0])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    ended = time.strftime("%H:%M:%S", time.gmtime())

    print(f"\nkill -9 → its task started on another worker, {args.rounds} rounds")
    print(f"{'':10} {'median':>8} {'min':>8} {'max':>8}")
    for side, values in figures.items():
        print(f"{side:10} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    print("\nRedis commands/s of one idle worker (median of rounds; the busiest commands)")
    for side, rounds in idles.items():
        total = statistics.median(r["total"] for r in rounds)
        top = sorted(rounds[0].items(), key=lambda kv: -kv[1])[1:6]
        print(f"{side:10} {total:8.1f}   " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    result: dict[str, object] = {
        "utc": f"{started}-{ended}",
        "rounds": args.rounds,
        "seconds": figures,
        "idle_commands_per_s": idles,
        "load_1min": loads,
        "sides": sides,
    }
    if args.against:
        ratio = statistics.median(figures["branch"]) / statistics.median(figures["against"])
        idle_ratio = statistics.median(r["total"] for r in idles["branch"]) / statistics.median(
            r["total"] for r in idles["against"]
        )
        result["ratio_median"] = ratio
        result["ratio_idle_commands"] = idle_ratio
        print(f"\nbranch / against: kill → run {ratio:.2f}, idle commands/s {idle_ratio:.2f}")
    print(f"load average (1 min) {min(loads):.2f} to {max(loads):.2f}, {started}-{ended} UTC")
    out = Path(__file__).resolve().parent / "results" / args.out
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
