"""A cluster on one machine, faults on purpose, and what each fault cost (issue 23).

Test hosts are network namespaces on one bridge (`bench/clusterlib/net.py`): Redis primary +
replica + three Sentinels, PostgreSQL, Mosquitto, a Redis Streams broker, Tansu (Kafka), two
`fnhub server`, three `fnhub worker`, two `fnhub beat`, every role on a `redis+sentinel://` URL
and the PostgreSQL. Under load (HTTP async and sync calls, MQTT QoS 1, Redis Streams, Kafka,
WebSub notifications to a subscriber on a host of its own, a cron job every second) each fault
runs in turn; then the load stops, the cluster drains, and for each fault: sent, handled (for
WebSub: delivered), lost, run (delivered) twice, cron ticks missed or doubled, time to recover.
Killed roles are restarted 1 s later by this tool's supervisor (as systemd would).

    python bench/cluster.py            # every fault: ~10 minutes, writes bench/results/cluster.json
    python bench/cluster.py --quick    # one fault of each kind, small load (~3 minutes)
    python bench/cluster.py --teardown # remove what a killed run left (namespaces, processes)
    python bench/cluster.py --timeline RESULTS RUN/raw.json  # where late HTTP seconds went

Needs root (`ip netns`), redis-server, mosquitto, PostgreSQL under /usr/lib/postgresql.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import json
import os
import platform
import shutil
import signal
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.clusterlib import timeline  # noqa: E402
from bench.clusterlib.cluster import HOSTS, Cluster  # noqa: E402
from bench.clusterlib.faults import analyse, catalogue, run_phase  # noqa: E402
from bench.clusterlib.load import Load, Marks  # noqa: E402
from bench.clusterlib.net import Net  # noqa: E402
from bench.clusterlib.report import markdown  # noqa: E402

NOT_RUN_IN_MEMORY = [
    "kill -9 of Tansu (it keeps its log in memory: a crash and a clean restart lose the same; "
    "`--tansu-s3` runs it)",
]


def _terminate(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one fault of each kind, small load")
    parser.add_argument("--teardown", action="store_true", help="remove leftovers and exit")
    parser.add_argument("--name", default="fnhc", help="namespace prefix (one cluster per name)")
    parser.add_argument("--subnet", default="10.231.0", help="the hosts' /24, inside namespaces")
    parser.add_argument("--no-kafka", action="store_true", help="leave Tansu and Kafka out")
    parser.add_argument(
        "--tansu-s3",
        action="store_true",
        help="Tansu keeps its log in S3 (a moto server on its host), so its restart and kill -9 "
        "lose nothing of Tansu's own; ~0.7 core at 40 msg/s, slower as objects pile up",
    )
    parser.add_argument("--only", help="run only faults whose name contains this (several: a|b)")
    parser.add_argument("--repeat", type=int, default=1, help="run each fault this many times")
    parser.add_argument("--work", type=float, default=0.01, help="seconds each function takes")
    parser.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="KIND=N",
        help="a flow's rate a second instead of the default (http, sync, mqtt, stream, kafka, "
        "websub), e.g. --rate http=20 where the machine cannot carry 150",
    )
    parser.add_argument("--out", type=Path, default=None, help="results file")
    parser.add_argument("--table", type=Path, help="print a results file as markdown and exit")
    parser.add_argument(
        "--timeline",
        nargs=2,
        type=Path,
        metavar=("RESULTS", "RAW"),
        help="print where each fault's late HTTP seconds went (a results file and the raw.json "
        "of its run folder, kept with --keep) and exit; --only filters the faults",
    )
    parser.add_argument("--keep", action="store_true", help="leave the run folder (logs)")
    parser.add_argument(
        "--hold",
        action="store_true",
        help="after the report, keep the cluster up until Ctrl-C (to look at it)",
    )
    args = parser.parse_args()

    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return 0
    if args.timeline:
        results, raw = (json.loads(path.read_text()) for path in args.timeline)
        print(timeline.table(results, raw, args.only or ""))
        return 0
    net = Net(args.name, args.subnet)
    if args.teardown:
        removed = net.teardown()
        print(f"removed {len(removed)} namespaces: {' '.join(removed) or '-'}")
        return 0
    if os.geteuid() != 0:
        print("needs root (ip netns)", file=sys.stderr)
        return 2
    if net.exists():
        print(f"a cluster named {args.name} exists: `--teardown` removes it", file=sys.stderr)
        return 2
    out = args.out or ROOT / "bench" / "results" / (
        "cluster-quick.json" if args.quick else "cluster.json"
    )
    folder = Path(tempfile.mkdtemp(prefix=f"{args.name}-"))
    signal.signal(signal.SIGTERM, _terminate)
    cluster = Cluster(net, folder, kafka=not args.no_kafka, tansu_s3=args.tansu_s3, work=args.work)
    load = None
    try:
        started = time.monotonic()
        net.create(HOSTS)
        net.enter("ctl")  # this process (and what it starts) runs on host ctl from here on
        cluster.start_infrastructure()
        project = cluster.write_project()
        cluster.apply(project)
        cluster.start_roles(project)
        print(f"cluster up in {time.monotonic() - started:.1f}s ({folder})", flush=True)
        rates: dict[str, float] = (
            {"http": 40, "sync": 10, "mqtt": 20, "stream": 20, "kafka": 20, "websub": 10}
            if args.quick
            else {"http": 150, "sync": 20, "mqtt": 60, "stream": 60, "kafka": 40, "websub": 5}
        )
        for kind, _, n in (r.partition("=") for r in args.rate):
            rates[kind] = float(n)
        if args.no_kafka:
            rates.pop("kafka")
        load = Load(
            cluster.server_urls(),
            cluster.token,
            cluster.addr("mqtt"),
            cluster.addr("streams"),
            cluster.addr("kafka") if cluster.kafka else None,
            rates,
            cluster.websub_topic,
        )
        marks = Marks(cluster.marks)
        load.start()
        faults = catalogue(args.quick, cluster.kafka, cluster.tansu_s3)
        if args.only:
            wanted = [w.strip().lower() for w in args.only.split("|")]
            faults = [f for f in faults if any(w in f.name.lower() for w in wanted)]
        faults = [f for f in faults for _ in range(args.repeat)]
        warm = 6.0 if args.quick else 8.0
        time.sleep(warm)  # subscriptions connected, Kafka's first assignment
        phases = [
            run_phase(f, cluster, load, marks, pre=3, settle=15 if args.quick else 30)
            for f in faults
        ]
        load.close()
        drained = _drain(marks, quiet=10 if args.quick else 20)
        marks.dump(folder / "raw.json", load.flows)
        results = [analyse(p, load, marks) for p in phases]
        for r in results:  # what the records say of each lost item
            for flow in r["flows"].values():
                flow["lost_records"] = {i: _records(cluster, i) for i in flow["lost_ids"][:5]}
        report = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": "quick" if args.quick else "full",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other work",
            "load_per_second": rates,  # asked for; what was accepted is below
            "accepted_per_second": _accepted(results),
            "hosts": {h: cluster.addr(h) for h in HOSTS},
            "roles": {
                "servers": 2,
                "workers": 3,
                "worker_processes": cluster.worker_processes,
                "beats": 2,
            },
            "restart_after_death_s": 1.0,
            "late_threshold_s": 1.0,
            "drained_in_s": drained,
            "faults": results,
            "tansu_log": "s3 (moto)" if cluster.tansu_s3 else "memory",
            "not_run": ([] if cluster.tansu_s3 else NOT_RUN_IN_MEMORY)
            + ([] if cluster.kafka else ["Kafka"]),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        _table(results)
        print(f"wrote {out}")
        if args.hold:
            print("holding: Ctrl-C or SIGTERM tears down", flush=True)
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        print("interrupted: tearing down", file=sys.stderr)
        return 130
    finally:
        if load is not None:
            load.stop.set()
        cluster.stop()
        net.teardown()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _accepted(results: list[dict[str, Any]]) -> dict[str, float]:
    """Items accepted per second over the phases: less than asked when the servers or brokers
    answered slowly (the HTTP load has at most 64 requests out)."""
    seconds = sum(r["stop"] - r["start"] for r in results) or 1.0
    kinds = {k for r in results for k in r["flows"]}
    return {k: round(sum(r["flows"][k]["sent"] for r in results) / seconds, 1) for k in kinds}


def _records(cluster: Cluster, ident: str) -> list[dict[str, Any]] | str:
    try:
        return cluster.records_of(ident)
    except Exception as exc:  # noqa: BLE001 - a diagnosis, never the reason a run fails
        return f"cannot read records: {exc}"


def _drain(marks: Marks, quiet: float = 20, limit: float = 120) -> float:
    """Wait until nothing new ran for `quiet` seconds; the seconds that took."""
    started = time.monotonic()
    last, seen = time.monotonic(), -1
    while time.monotonic() - started < limit:
        marks.read()
        if marks.total() != seen:
            seen, last = marks.total(), time.monotonic()
        elif time.monotonic() - last > quiet:
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def _table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'fault':44} {'sent':>6} {'lost':>5} {'twice':>5} {'websub s/d/l/2':>16} "
        f"{'cron miss/dbl':>13} {'recover s':>9} {'person':>6}"
    )
    for r in results:
        sent = sum(f["sent"] for f in r["flows"].values())
        w = r["flows"].get("websub")
        websub = f"{w['sent']}/{w['handled']}/{w['lost']}/{w['run_twice']}" if w else "-"
        cron = f"{r['cron']['missed']}/{r['cron']['doubled']}"
        print(
            f"{r['fault'][:44]:44} {sent:6} {r['lost']:5} {r['run_twice']:5} {websub:>16} "
            f"{cron:>13} {r['recovery_s']:9.1f} {'yes' if r['needed_a_person'] else 'no':>6}"
        )


if __name__ == "__main__":
    sys.exit(main())
