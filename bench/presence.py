"""What presence costs Redis: commands per second of an idle `fnhub beat` and `fnhub server`,
this tree against a baseline tree (`--base`, e.g. `git archive <commit> src`), and how long
`fnhub.cluster.gather` takes with many processes listed.

Each role runs alone against a Redis of this benchmark's own (a free port, no persistence), so
`INFO commandstats` counts that process only: started, left `--warmup` seconds, counters reset,
then counted over `--seconds`. Trees alternate per round so load drifts hit both alike.
Prints a table and writes bench/results/presence.json.

    git archive 0a7ee3b src | tar -x -C /tmp/presence-base
    python bench/presence.py --base /tmp/presence-base/src --rounds 2
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counted(client: redis.Redis) -> tuple[int, int]:
    """All commands and HSETs run since the last reset (this benchmark's own INFO excluded)."""
    stats = client.info("commandstats")
    total = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config"))
    return total, int(stats.get("cmdstat_hset", {}).get("calls", 0))


def run_role(
    src: Path, role: str, project: Path, env: dict[str, str], args: Any
) -> dict[str, float]:
    client = redis.Redis(port=args.redis_port)
    client.flushall()
    port = free_port()
    argv = [sys.executable, "-c", "from fnhub.cli import main; main()", role, "-p", str(project)]
    if role == "server":
        argv += ["--port", str(port)]
    proc = subprocess.Popen(
        argv,
        env={**env, "PYTHONPATH": str(src)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(args.warmup)
        assert proc.poll() is None, f"{role} exited"
        client.config_resetstat()
        time.sleep(args.seconds)
        total, hsets = counted(client)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        client.close()
    return {"commands_per_s": total / args.seconds, "hset_per_s": hsets / args.seconds}


def gather_ms(members: int, redis_port: int, project: Path, env: dict[str, str]) -> float:
    """Median ms of one `gather` with `members` entries per role (written as processes would)."""
    os.environ.update(env)
    from fnhub.bootstrap import open_services
    from fnhub.cluster import gather
    from fnhub.config import load_settings

    settings = load_settings(project)
    services = open_services(settings, migrate=False)
    keys, client = services.keys, services.redis
    client.flushall()
    now = time.time()
    entry = {"host": "h", "pid": 1, "version": "0", "started": now, "beat": now, "every": 1.0}
    for key in (keys.servers, keys.beats, keys.workers):
        client.hset(key, mapping={f"m{i}": json.dumps(entry) for i in range(members)})
    for i in range(members):
        client.set(keys.worker_alive(f"m{i}"), "1", ex=60)
    times = []
    for _ in range(20):
        started = time.perf_counter()
        data = gather(client, keys, services.db, settings)
        times.append((time.perf_counter() - started) * 1000)
    assert len(data["workers"]) == members
    services.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="baseline tree's src folder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/presence.json")
    args = parser.parse_args()
    args.redis_port = free_port()
    work = Path(tempfile.mkdtemp(prefix="presence-bench-"))
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(
        FNHUB_REDIS_URL=f"redis://127.0.0.1:{args.redis_port}/0",
        FNHUB_ACCESS_LOG="false",
        PYTHONDONTWRITEBYTECODE="1",
    )
    here = ROOT / "src"
    trees = {"base": args.base.resolve(), "this": here}
    try:
        time.sleep(0.5)
        init = subprocess.run(
            [sys.executable, "-c", "from fnhub.cli import main; main()", "init", "proj"],
            cwd=work, env={**env, "PYTHONPATH": str(here)}, capture_output=True, timeout=120,
        )  # fmt: skip
        assert init.returncode == 0, init.stderr
        project = work / "proj"
        load_before = os.getloadavg()
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for i in range(args.rounds):
            for role in ("beat", "server"):
                for name, src in trees.items():
                    runs.setdefault((role, name), []).append(
                        run_role(src, role, project, env, args)
                    )
            print(f"round {i + 1}/{args.rounds}, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        gathers = {n: gather_ms(n, args.redis_port, project, env) for n in (1, 10, 100, 1000)}
        load_after = os.getloadavg()
    finally:
        redis_server.send_signal(signal.SIGTERM)
        redis_server.wait(10)

    rows = []
    print(f"{'role':8}{'tree':6}{'commands/s':>12}{'HSET/s':>9}{'vs base':>9}")
    for role in ("beat", "server"):
        base = statistics.median(r["commands_per_s"] for r in runs[(role, "base")])
        for name in trees:
            per_s = statistics.median(r["commands_per_s"] for r in runs[(role, name)])
            hset = statistics.median(r["hset_per_s"] for r in runs[(role, name)])
            rows.append({"role": role, "tree": name, "commands_per_s": per_s, "hset_per_s": hset,
                         "ratio": per_s / base})  # fmt: skip
            print(f"{role:8}{name:6}{per_s:12.2f}{hset:9.2f}{per_s / base:9.2f}x")
    timings = ", ".join(f"N={n}: {ms:.1f} ms" for n, ms in gathers.items())
    print(f"gather (3 roles x N members): {timings}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    result = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "roles": rows,
        "gather_ms": gathers,
        "load_before": load_before,
        "load_after": load_after,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
