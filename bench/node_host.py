"""Round trips of trivial JavaScript functions through NodeExecutor, beside the same trivial
Python function through the worker's own Executor (fnhub.worker.execute), in the same run.

Run with ``python bench/node_host.py [--tasks 20000]`` (needs `node` and the machine's Redis,
where the Python reference loads its script from, under a key prefix of its own). Each case
times `run()` task by task (p50, p99) and in all (tasks per second); rounds alternate between
the cases and the best round counts, so the comparison holds on a small, noisy machine. The
Node figure is what a worker child adds per task for JavaScript: a frame each way over the
pipes, the call, the result. The last case runs tasks as a worker child does a batch read from
the queue (Prefetch, its Executor): the next tasks go to Node ahead of their turn, so one write
and one wake-up serve many tasks. Results go to ``bench/results/node_host.json``.
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import argparse
import hashlib
import json
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from fnhub.bootstrap import open_services
from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.node.executor import NodeExecutor
from fnhub.node.locate import find_node
from fnhub.tasks import Task, TaskResult, decode_task, encode
from fnhub.worker.child import _ahead_taker
from fnhub.worker.execute import Executor
from fnhub.worker.loader import WorkerScripts
from fnhub.worker.prefetch import Prefetch

ROUNDS = 3
REDIS_URL = "redis://127.0.0.1:6379/0"

JS = """
const fnhub = require('fnhub');
exports.noop = () => 1;
exports.hello = fnhub.api({ title: 'hello' }, async ({ name = 'world' }) => `hello ${name}`);
exports.handler = (event, context, callback) => callback(null, { ...event, Say: 'Hello' });
"""
PY = """
import fnhub

@fnhub.api("noop")
def noop():
    return 1
"""


def measure(run: Callable[[], TaskResult], tasks: int) -> dict[str, float]:
    for _ in range(min(500, tasks)):
        assert run().status == "success"
    times = []
    clock = time.perf_counter_ns
    started = clock()
    for _ in range(tasks):
        t0 = clock()
        run()
        times.append(clock() - t0)
    total = (clock() - started) / 1e9
    times.sort()
    return {
        "p50_us": times[len(times) // 2] / 1000,
        "p99_us": times[int(len(times) * 0.99)] / 1000,
        "tasks_per_s": tasks / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20000)
    args = parser.parse_args()
    node = find_node()
    tmp = Path(tempfile.mkdtemp(prefix="fnhub-bench-node-"))
    settings = Settings(
        project_dir=tmp,
        data_dir=tmp / ".fnhub",
        redis_url=REDIS_URL,
        db_url=f"sqlite:///{tmp / 'fnhub.db'}",
        key_prefix=f"fnhub-bench-{uuid.uuid4().hex[:8]}",
    )
    settings.data_dir.mkdir(parents=True)
    services = open_services(settings)
    services.scripts.publish({"pybench": PY})
    services.scripts.publish({"jsbatch": JS}, languages={"jsbatch": "javascript"})
    # the worker child's own path for a batch: Prefetch, its Executor, tasks sent to Node ahead
    worker = Executor(
        WorkerScripts(services.redis, services.keys),
        settings.log_max_bytes,
        settings.result_max_bytes,
        settings,
    )
    prefetch = Prefetch()
    worker.lookahead(_ahead_taker(prefetch), prefetch.give_back, prefetch.unstarted)
    batch = [("q", f"{i}-0", {b"e": encode(Task(function="jsbatch.noop"))}) for i in range(100)]

    def batched() -> TaskResult:
        item = prefetch.take()
        if item is None:  # a new batch of 100, as a read of the queue gives it
            prefetch.fill(batch)
            item = prefetch.take()
            assert item is not None
        return worker.run(decode_task(item.payload[b"e"]))

    python = Executor(
        WorkerScripts(services.redis, services.keys),
        settings.log_max_bytes,
        settings.result_max_bytes,
    )
    js_hash = hashlib.sha256(JS.encode()).hexdigest()
    executor = NodeExecutor(
        settings,
        lambda name, hash_: JS if (name, hash_) == ("jsbench", js_hash) else None,
        lambda: {"jsbench": js_hash},
    )

    def node_case(name: str, kwargs: dict[str, Any]) -> Callable[[], TaskResult]:
        task = Task(function=f"jsbench.{name}", kwargs=kwargs)
        info = FunctionInfo(script="jsbench", name=name)
        return lambda: executor.run(task, "jsbench", "", name, info, time.time() + 30)

    py_task = Task(function="pybench.noop")
    event = {"event": {"id": 1, "temp": 21.5}, "context": {"messageTopic": "t"}}
    cases: dict[str, Callable[[], TaskResult]] = {
        "python noop (worker Executor)": lambda: python.run(py_task),
        "node noop (sync, kwargs)": node_case("noop", {}),
        "node hello (async, kwargs)": node_case("hello", {"name": "bench"}),
        "node handler (Baetyl callback)": node_case("handler", event),
        "node noop, batches of 100 (ahead)": batched,
    }
    best: dict[str, dict[str, float]] = {}
    try:
        for _ in range(ROUNDS):
            for name, run in cases.items():
                figures = measure(run, args.tasks)
                if name not in best or figures["tasks_per_s"] > best[name]["tasks_per_s"]:
                    best[name] = figures
    finally:
        executor.close()
        worker.close()
        python.close()
        services.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    reference = best["python noop (worker Executor)"]
    rows = []
    print(f"{'case':<34}{'p50 µs':>9}{'p99 µs':>9}{'tasks/s':>10}{'vs python':>11}")
    for name, figures in best.items():
        ratio = figures["tasks_per_s"] / reference["tasks_per_s"]
        print(
            f"{name:<34}{figures['p50_us']:>9.1f}{figures['p99_us']:>9.1f}"
            f"{figures['tasks_per_s']:>10,.0f}{ratio:>11.2f}"
        )
        rows.append(
            {
                "case": name,
                "p50_us": round(figures["p50_us"], 1),
                "p99_us": round(figures["p99_us"], 1),
                "tasks_per_s": round(figures["tasks_per_s"]),
                "ratio_to_python": round(ratio, 3),
            }
        )
    added = best["node noop (sync, kwargs)"]["p50_us"] - reference["p50_us"]
    print(f"node adds {added:.1f} µs p50 per trivial task over Python (goal: < 300 µs)")
    result = {
        "python": sys.version.split()[0],
        "node": ".".join(map(str, node.version)),
        "machine": platform.machine(),
        "tasks_per_case": args.tasks,
        "rounds": ROUNDS,
        "node_added_p50_us": round(added, 1),
        "rows": rows,
    }
    out = Path(__file__).parent / "results" / "node_host.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
