"""Subscription throughput by in-flight window, beside the raw Streams task loop of each round.

    python bench/subscribe_window.py [--windows 100,500,2000] [--messages 40000] [--rounds 3]

A Redis Streams subscription (records on) into the trivial function of bench/subscribe.py, one
server and a worker with 2 processes; each round measures the raw XADD → XREADGROUP → XACK loop
and then every window back to back. The table shows medians and the median of each round's ratio
to its own raw loop (this machine is shared and noisy). Writes bench/results/subscribe_window.json.
"""

from __future__ import annotations

import os
import sys

# bench/queue.py is named like the stdlib `queue` module: this folder goes last on the import
# path, so `queue` is the stdlib's and `subscribe` is bench/subscribe.py
HERE_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if not p.endswith("bench")] + [HERE_DIR]

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import subscribe as bench

HERE = Path(HERE_DIR)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", default="100,500,2000")
    parser.add_argument("--messages", type=int, default=40000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        figures: dict[str, Any] = {"ceiling": bench._raw_stream_task_loop(args.messages)}
        for window in windows:
            figures[window] = bench.fnhub_rate("redis", args.messages, None, True, window=window)
        rounds.append(figures)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    head = ("window", "msgs/s", "÷ raw loop", "cpu µs/msg: server", "worker")
    print("{:>8} {:>8} {:>11} {:>19} {:>7}".format(*head))
    for window in windows:
        rates = [f[window]["msgs_per_s"] for f in rounds]
        ratios = [f[window]["msgs_per_s"] / f["ceiling"] for f in rounds]
        row = {
            "window": window,
            "msgs_per_s": statistics.median(rates),
            "ratio_to_streams_loop": statistics.median(ratios),
            "rounds": [f[window] | {"streams_loop": f["ceiling"]} for f in rounds],
        }
        for role in ("server", "worker", "redis"):
            row[f"cpu_us_{role}"] = statistics.median(f[window][f"cpu_us_{role}"] for f in rounds)
        rows.append(row)
        print(
            f"{window:>8} {row['msgs_per_s']:>8.0f} {row['ratio_to_streams_loop']:>11.2f} "
            f"{row['cpu_us_server']:>19.0f} {row['cpu_us_worker']:>7.0f}"
        )
    out = HERE / "results" / "subscribe_window.json"
    out.write_text(json.dumps({"messages": args.messages, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
