"""Subscription throughput of this checkout (B) against another revision (A), interleaved.

    python bench/subscribe_ab.py --base <git rev> [--brokers redis,kafka] [--rounds 4]
                                 [--messages 20000] [--records on|off] [--window 500]
                                 [--path queued|direct] [--out PATH]

On this shared machine a whole bench run can be a third slower than the one before it, more than
most changes are worth, so a change is judged by rounds that run A and B back to back (the order
alternating from round to round) and by the median of each round's B ÷ A. A is a temporary git
worktree of `--base`, run through PYTHONPATH; both use this checkout's bench and brokers.
`--path direct` measures the subscriptions' direct path (no server: its CPU column is "-").
Writes bench/results/subscribe_ab.json (or `--out`).
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
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import subscribe as bench

HERE = Path(HERE_DIR)
ROOT = HERE.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--brokers", default="redis,kafka")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--records", choices=("on", "off"), default="on")
    parser.add_argument("--window", type=int, default=500, help="the subscription's window")
    parser.add_argument("--path", choices=("queued", "direct"), default="queued")
    parser.add_argument("--out", default=str(HERE / "results" / "subscribe_ab.json"))
    args = parser.parse_args()
    kinds = args.brokers.split(",")
    tmp = Path(tempfile.mkdtemp())
    worktree = tmp / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(worktree), args.base],
        check=True,
    )
    paths = {"A": str(worktree / "src"), "B": str(ROOT / "src")}
    brokers: dict[str, Any] = {}
    runs: dict[tuple[str, str], list[dict[str, float]]] = {(k, v): [] for k in kinds for v in paths}
    try:
        for kind in kinds:
            brokers[kind] = (None, None) if kind == "redis" else bench.start_broker(kind, tmp)
        for r in range(args.rounds):
            for kind in kinds:
                for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    figures = bench.fnhub_rate(
                        kind,
                        args.messages,
                        brokers[kind][1],
                        args.records == "on",
                        paths[side],
                        window=args.window,
                        path=args.path,
                    )
                    runs[(kind, side)].append(figures)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        bench.stop_brokers(brokers)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)])
    rows = []
    print(
        f"{'':8} {'A msgs/s':>9} {'B msgs/s':>9} {'B ÷ A':>6}"
        f"  {'cpu µs/msg A: server':>20} {'worker':>6} {'redis':>6}"
        f"  {'B: server':>9} {'worker':>6} {'redis':>6}   B ÷ A per round"
    )
    for kind in kinds:
        a, b = runs[(kind, "A")], runs[(kind, "B")]
        ratios = [y["msgs_per_s"] / x["msgs_per_s"] for x, y in zip(a, b, strict=True)]
        row: dict[str, Any] = {"broker": kind, "b_over_a": statistics.median(ratios)}
        for side, figures in (("a", a), ("b", b)):
            for key in figures[0]:
                row[f"{side}_{key}"] = statistics.median(f[key] for f in figures)
        row |= {"b_over_a_rounds": ratios, "a_rounds": a, "b_rounds": b}
        rows.append(row)
        cell = bench._queue_bench().cell
        cpu = "".join(
            f"  {cell(row, f'{side}_cpu_us_server', '.1f'):>{9 if side == 'b' else 20}}"
            f" {row[f'{side}_cpu_us_worker']:>6.1f} {row[f'{side}_cpu_us_redis']:>6.1f}"
            for side in "ab"
        )
        print(
            f"{kind:8} {row['a_msgs_per_s']:>9.0f} {row['b_msgs_per_s']:>9.0f}"
            f" {row['b_over_a']:>6.2f}{cpu}   {' '.join(f'{x:.2f}' for x in ratios)}"
        )
    out = Path(args.out)
    result = {
        "base": args.base,
        "messages": args.messages,
        "records": args.records,
        "path": args.path,
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
