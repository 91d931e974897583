"""The short version of the cluster fault run (bench/cluster.py --quick, issue 23): test hosts
in network namespaces, one fault of each kind under a small load, and what each cost.

The full run, with every fault and its figures, is `python bench/cluster.py`
(docs/operations.md, "A cluster, faults on purpose"). Here the figures that must hold: nothing
acknowledged is lost (except, in a Redis failover, subscription messages within a bound: async
calls and WebSub publishes are acknowledged only once a replica has them), nothing runs twice
but a known few, no cron tick is doubled, and every role runs at the end without anyone's help.
The same holds for WebSub notifications published through the hub (delivered, lost, delivered
twice). Kafka is left out: after a lease move its consumer can loop in rejoins on Tansu and
consume nothing (docs/operations.md), which would fail this test."""

from __future__ import annotations

import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "redis-server", "mosquitto", "setpriv"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        return "no PostgreSQL under /usr/lib/postgresql"
    return netns_refused()


def netns_refused() -> str | None:
    """Why `ip netns add` fails here (a container without the right), or None."""
    probe = f"fnhp{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns is not permitted here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


#: bench/cluster.py's default /24, which a bench run on this machine uses
BENCH_SUBNET = "10.231.0"


def _subnets_in_use() -> set[str]:
    """The /24s (first three octets) of every IPv4 address in every network namespace."""
    out = subprocess.run(
        ["ip", "-all", "netns", "exec", "ip", "-4", "-o", "addr"], capture_output=True, text=True
    ).stdout
    here = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    return {m.group(1) for m in re.finditer(r"inet (\d+\.\d+\.\d+)\.\d+/", out + here)}


def own_subnet(in_use: set[str] | None = None) -> str:
    """A /24 of 10.192-254.x that no namespace uses now (`in_use`: these instead) and that is
    not the bench's default, so this run cannot collide with a bench run or another test run."""
    taken = (_subnets_in_use() if in_use is None else in_use) | {BENCH_SUBNET}
    while True:
        subnet = f"10.{random.randint(192, 254)}.{random.randint(0, 255)}"
        if subnet not in taken:
            return subnet


def test_own_subnet_is_neither_the_bench_default_nor_one_in_use() -> None:
    every = {f"10.{b}.{c}" for b in range(192, 255) for c in range(256)}
    assert own_subnet(every - {"10.201.5"}) == "10.201.5"
    assert own_subnet(every - {BENCH_SUBNET, "10.254.255"}) == "10.254.255"
    assert re.fullmatch(r"10\.(19[2-9]|2[0-4]\d|25[0-4])\.\d{1,3}", own_subnet())


@pytest.mark.timeout(420)
def test_quick_fault_run_loses_nothing_acknowledged(tmp_path: Path) -> None:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    name = f"fnt{uuid.uuid4().hex[:4]}"  # namespaces fnt1234-*: one cluster per test run
    out = tmp_path / "cluster.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "cluster.py"),
            "--quick",
            "--no-kafka",  # the Tansu rejoin stall (docs/operations.md) would fail it
            "--name",
            name,
            "--subnet",
            own_subnet(),  # not the bench's default: a bench run may be on at the same time
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    leftover = [
        ns
        for ns in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout.split()
        if ns.startswith(name)
    ]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert not leftover, f"namespaces left behind: {leftover}"
    report = json.loads(out.read_text())
    kinds = {f["kind"] for f in report["faults"]}
    assert kinds == {"kill", "kill-two", "partition", "netem", "failover", "database", "broker"}
    for fault in report["faults"]:
        where = fault["fault"]
        assert not fault["roles_down_at_stop"], where
        assert set(fault["flows"]) == {"http", "mqtt", "stream", "websub"}, where
        for kind, flow in fault["flows"].items():
            assert flow["sent"] > 0, (where, kind)
            if fault["kind"] == "failover" and kind in ("http", "websub"):
                # answered 202 only once a replica had it (`enqueue_replicas`, redis_wait)
                assert flow["lost"] == 0, (where, kind, flow["lost_ids"])
            elif fault["kind"] == "failover":
                # asynchronous replication: what reached the old primary after the promotion
                # and before the clients moved (about a second) can be gone
                bound = max(3, flow["sent"] // 20)
                assert flow["lost"] <= bound, (where, kind, flow)
            else:
                assert flow["lost"] == 0, (where, kind, flow["lost_ids"])
            # a crash repeats at most what was in flight (a window of 100 at most)
            assert flow["run_twice"] <= 100, (where, kind)
        if fault["kind"] == "failover":
            # the watermark of the last tick or two can be lost with the old primary, like any
            # write of that moment; a beat leading again starts after what it fired itself
            # (tests/cron/test_beat.py), but the other beat, taking over, cannot know it
            assert fault["cron"]["doubled"] <= 2, (where, fault["cron"])
        else:
            assert fault["cron"]["doubled"] == 0, where
            assert fault["cron"]["missed"] == 0, (where, fault["cron"])
    print(run.stdout)
