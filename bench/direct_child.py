"""CPU per message of one direct child's loop, in this process: no supervisor, no second child.

    python bench/direct_child.py [--messages 100000] [--rounds 3] [--profile out.prof]

`path: direct`'s cost is almost all its children's per-message work (docs/performance.md,
"Where the worker tree's CPU goes"); the whole-tree benches (bench/peers.py, subscribe_ab.py)
see it through start-up races and a shared machine. This runs the child's own loop
(`DirectChild`: read, run, FINISH, XACK) over a Redis Streams backlog of the bench's trivial
handler, records on, one child holding the whole window (500), and reports the main thread's
CPU (`time.thread_time`) per message: a figure steady enough to A/B one change (run it with
another checkout's `src` first on PYTHONPATH). `--profile` writes a cProfile (thread time) of
the last round's drain, or with a name ending in .txt pyinstrument's sampled call tree (less
distorted by the profiler's own cost per call; pyinstrument must be importable).
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import argparse
import cProfile
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.subscribe import REDIS_URL, project_env, write_project  # noqa: E402

WINDOW = 500
#: the backlog, added by Redis itself: the bench's process then spends its CPU on the child
#: alone (an instruction count of the whole process, `valgrind --tool=callgrind`, is the child's)
FILL = "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'data', 'm' .. i) end"


def _fill_stream(stream: str, n: int) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for start in range(0, n, 10_000):  # a few milliseconds of Redis at a time
        client.eval(FILL, 1, stream, min(10_000, n - start))
    client.close()


class _Sampled:
    """pyinstrument's sampling profiler, its call tree written as text."""

    def __init__(self, path: str) -> None:
        from pyinstrument import Profiler

        self.path, self.profiler = path, Profiler(interval=0.0002)

    def start(self) -> None:
        self.profiler.start()

    def stop(self) -> None:
        self.profiler.stop()
        Path(self.path).write_text(self.profiler.output_text(show_all=False))


class _Traced:
    """cProfile on the thread's CPU clock, its stats dumped for pstats."""

    def __init__(self, path: str) -> None:
        self.path, self.profiler = path, cProfile.Profile(time.thread_time)

    def start(self) -> None:
        self.profiler.enable()

    def stop(self) -> None:
        self.profiler.disable()
        self.profiler.dump_stats(self.path)


def _profiler(path: str | None) -> _Sampled | _Traced | None:
    if path is None:
        return None
    return _Sampled(path) if path.endswith(".txt") else _Traced(path)


def drain(n: int, rounds: int, profile: str | None) -> list[dict[str, float]]:
    """Set up one in-process direct child, then `rounds` times: publish n messages and time
    the child's read → handle loop draining them (as `DirectChild.run` does, minus its
    reconnection)."""
    tmp = Path(tempfile.mkdtemp())
    prefix = f"bench-dc-{uuid.uuid4().hex[:6]}"
    topic = f"in-{uuid.uuid4().hex[:6]}"
    subscription = {
        "connector": "c",
        "topics": [topic],
        "function": "handlers.handle",
        "window": WINDOW,
        "options": {"kind": "stream", "start": "0"},
        "record": True,
        "path": "direct",
    }
    write_project(tmp, {"type": "redis", "settings": {"url": REDIS_URL}}, subscription)
    for key in [k for k in os.environ if k.startswith("FNHUB_")]:
        del os.environ[key]
    os.environ.update(project_env(tmp, prefix, records=True))
    cli = [sys.executable, "-c", "from fnhub.cli import main; main()"]
    subprocess.run([*cli, "apply", "-p", str(tmp)], env=os.environ, check=True, capture_output=True)
    machine = redis.Redis.from_url(REDIS_URL)

    from fnhub import runtime
    from fnhub.config import Settings
    from fnhub.heap import freeze_startup_objects
    from fnhub.keys import Keys
    from fnhub.redis_client import sync_redis
    from fnhub.store.db import Database
    from fnhub.subscriptions.direct import DirectJob
    from fnhub.subscriptions.stored import load_stored
    from fnhub.worker import direct
    from fnhub.worker.child import Slot
    from fnhub.worker.execute import Executor
    from fnhub.worker.loader import WorkerScripts

    settings = Settings()
    keys = Keys(settings.key_prefix)
    client = sync_redis(settings)
    runtime.init(settings, client)
    executor = Executor(
        WorkerScripts(client, keys), settings.log_max_bytes, settings.result_max_bytes, settings
    )
    db = Database(settings.db_url)
    specs, connectors = load_stored(db, settings)
    db.dispose()
    (spec,) = specs
    job = DirectJob(msgspec.json.encode(spec), connectors["c"], {}, 1)
    name = direct.direct_consumer_name("bench", 0, os.getpid())
    group, options = direct.consumer_args(spec)
    consumer = direct.create_direct_consumer(
        "redis",
        connectors["c"].settings,
        topics=[topic],
        group=group,
        consumer=name,
        options=options,
        place=direct.DirectPlace(spec.mode, 0, 1, job.share, "bench"),
    )
    child = direct.DirectChild(
        settings, keys, client, executor.scripts, executor, Slot.create(), job, consumer, name
    )
    freeze_startup_objects()  # as `direct_main` does: the collector spares what start-up made
    out = []
    try:
        consumer.open()
        _fill_stream(topic, 20)  # warm-up: the function loaded, the connections made
        for msgs in iter(lambda: consumer.read(job.share, 100), []):
            child.handle(msgs)
        for i in range(rounds):
            _fill_stream(topic, n)
            profiler = _profiler(profile) if i == rounds - 1 else None
            done = 0
            cpu0, t0 = time.thread_time(), time.perf_counter()
            if profiler is not None:
                profiler.start()
            while done < n:
                msgs = consumer.read(job.share, 500)
                child.handle(msgs)
                done += len(msgs)
            if profiler is not None:
                profiler.stop()
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - t0
            out.append({"msgs_per_s": n / wall, "cpu_us_per_msg": cpu / n * 1e6})
            print(
                f"round {i + 1}: {n / wall:9.0f} msgs/s  {cpu / n * 1e6:5.2f} µs/msg (main "
                f"thread)  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        consumer.close()
        executor.close()
        stats = client.hgetall(keys.stats)
        for key in list(client.scan_iter(match=f"{prefix}:*", count=1000)):
            client.delete(key)
        machine.delete(topic)
        shutil.rmtree(tmp, ignore_errors=True)
    done = int(stats.get(b"n|sub|success", 0))
    if done != 20 + n * rounds:
        raise RuntimeError(f"{done} of {20 + n * rounds} messages recorded as successes")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="profile the last round (see above)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import fnhub

    rounds = drain(args.messages, args.rounds, args.profile)
    cpu = sorted(r["cpu_us_per_msg"] for r in rounds)
    print(f"CPU µs/msg: min {cpu[0]:.2f}, median {statistics.median(cpu):.2f}  ({fnhub.__file__})")
    if args.out:
        args.out.write_text(json.dumps({"messages": args.messages, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
