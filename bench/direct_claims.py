"""How soon a direct Redis Streams consumer takes over a killed consumer's pending entries.

    PYTHONPATH=$PWD/src:$PWD python bench/direct_claims.py [--rounds 8] [--against /work/main/src]

Per round: a holder process (a direct path's `RedisDirectConsumer`, as a worker child runs it)
reads `--entries` entries of a fresh stream and holds them, reading on (500 ms blocks); a
survivor process, its own connections older than `holders.QUIET_SECONDS`, reads likewise and acks;
then a kill -9 of the holder, at a random point of its renewal second. The figure is from the
kill to the survivor's first redelivered entry handled (read and acked). A whole worker's death
(supervisor and children killed) comes to this: the surviving workers' children are the
survivors. `--against SRC` runs each round a second time with another checkout's `src` (main:
`/work/main/src`), interleaved, the order alternating, and gives the ratio of the medians.
Prints a table with the load average, writes bench/results/direct_claims.json (`--out`).
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.endswith("bench")]  # bench/queue.py vs stdlib

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import redis

REDIS_URL = os.environ.get("FNHUB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
GROUP = "bench-claims"
SURVIVOR_AGE = 4.0  # seconds the survivor runs before the kill: past its quiet time (3 s)

COMMON = """
import sys, time
from fnhub.connectors.redis.direct import RedisDirectConsumer
from fnhub.connectors.redis.settings import RedisSettings, RedisSourceOptions
url, stream, group, name = sys.argv[1:5]
consumer = RedisDirectConsumer(RedisSettings(url=url), topics=[stream], group=group,
    consumer=name, options=RedisSourceOptions(kind="stream", start="0"))
consumer.open()
"""
HOLDER = (
    COMMON
    + """
print(len(consumer.read(100, 100)), flush=True)
while True:  # reads on as a child does (its consumer's idle time stays short), never acks
    consumer.read(100, 500)
"""
)
SURVIVOR = (
    COMMON
    + """
print("ready", flush=True)
while True:
    msgs = consumer.read(100, 500)
    consumer.ack(msgs)
    if any(m.redelivered for m in msgs):
        consumer.read(1, 1)  # sends the acks
        print(time.time(), flush=True)
        break
consumer.close()
"""
)


def _start(code: str, src: str, stream: str, name: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=src)
    return subprocess.Popen(
        [sys.executable, "-c", code, REDIS_URL, stream, GROUP, name],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def one(src: str, entries: int) -> float:
    """Seconds from the kill of a holder of `entries` entries to the first one handled again."""
    r = redis.Redis.from_url(REDIS_URL)
    stream = f"bench-claims-{uuid.uuid4().hex[:8]}"
    holder = survivor = None
    try:
        for i in range(entries):
            r.xadd(stream, {"data": f"m{i}"})
        holder = _start(HOLDER, src, stream, f"bench-holder-{uuid.uuid4().hex[:6]}")
        assert holder.stdout is not None
        assert int(holder.stdout.readline()) == entries
        survivor = _start(SURVIVOR, src, stream, f"bench-survivor-{uuid.uuid4().hex[:6]}")
        assert survivor.stdout is not None
        assert survivor.stdout.readline().strip() == "ready"
        time.sleep(SURVIVOR_AGE + random.random())  # a random point of the renewal second
        killed = time.time()
        os.kill(holder.pid, signal.SIGKILL)
        handled = float(survivor.stdout.readline())
        return handled - killed
    finally:
        for proc in (holder, survivor):
            if proc is not None:
                proc.kill()
                proc.wait()
        r.delete(stream)
        for key in r.scan_iter(match=f"fnhub:stream-consumer:{GROUP}:bench-*"):
            r.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--against", help="another checkout's src folder (e.g. main's)")
    parser.add_argument("--out", default="direct_claims.json")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent.parent / "src")
    sides = {"branch": here, **({"against": args.against} if args.against else {})}
    figures: dict[str, list[float]] = {side: [] for side in sides}
    loads: list[float] = []
    for n in range(args.rounds):
        order = list(sides) if n % 2 == 0 else list(reversed(sides))
        for side in order:
            figures[side].append(one(sides[side], args.entries))
        loads.append(os.getloadavg()[0])
        print(
            f"round {n + 1}: "
            + ", ".join(f"{s} {figures[s][-1]:.2f} s" for s in sides)
            + f"  (load {loads[-1]:.2f})",
            flush=True,
        )
    print(f"\nkill -9 → first redelivered entry handled, {args.rounds} rounds")
    print(f"{'':10} {'median':>8} {'min':>8} {'max':>8}")
    for side, values in figures.items():
        print(f"{side:10} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    result: dict[str, object] = {
        "rounds": args.rounds,
        "entries": args.entries,
        "seconds": figures,
        "load_1min": loads,
        "sides": sides,
    }
    if args.against:
        ratio = statistics.median(figures["branch"]) / statistics.median(figures["against"])
        result["ratio_median"] = ratio
        print(f"branch / against (medians): {ratio:.2f}")
    print(f"load average (1 min) {min(loads):.2f} to {max(loads):.2f}")
    out = Path(__file__).resolve().parent / "results" / args.out
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
