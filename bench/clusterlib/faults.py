"""Faults done to the running cluster, one phase each, and what each cost.

A phase: `pre` seconds of plain load, the fault, its undoing after `hold` seconds (a cut
link, netem), then load until every flow is back to normal (or `settle` seconds). Items are
counted in the phase they left in (an item held by the load's limit or behind a send that hung
leaves after it was due), late from when they were due. After the last phase the load stops
and the cluster drains; then `analyse` compares what was sent with what ran."""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.clusterlib.cluster import Cluster
from bench.clusterlib.load import Load, Marks

#: an item handled later than this after it was sent (a tick after its second) counts as "not
#: yet recovered"; the normal figure here is tens of milliseconds
LATE = 1.0
FLOWS = ("http", "mqtt", "stream", "kafka", "websub")


@dataclass
class Fault:
    name: str
    kind: str  # kill, kill-two, partition, netem, failover, database, broker, sentinel, replica
    inject: Callable[[Cluster], str]  # returns what it did, for the record
    undo: Callable[[Cluster], str | None] | None = None  # what it saw, if anything
    hold: float = 0.0


@dataclass
class Phase:
    fault: str
    kind: str
    did: str
    start: float
    inject: float
    end: float  # the fault undone (= inject for a one-off fault)
    stop: float = 0.0
    settled: bool = False
    #: how long the phase waited, before its load began, for Redis to have its replica again
    waited_for_redis_replica_s: float = 0.0
    roles_down_at_stop: list[str] = field(default_factory=list)


def _kill(*names: str) -> Callable[[Cluster], str]:
    def inject(c: Cluster) -> str:
        for name in names:
            c.procs[name].kill9()
        return "kill -9 " + ", ".join(f"{n} (pid {c.procs[n].pid})" for n in names)

    return inject


def _kill_beat_leader(c: Cluster) -> str:
    leader = c.beat_leader() or "beat1"
    c.procs[leader].kill9()
    return f"kill -9 {leader} (the leading beat, pid {c.procs[leader].pid})"


def _kill_websub_owner(c: Cluster) -> str:
    """The server delivering the WebSub subscription: its claim must lapse before the other
    server takes over (`kill -9 server1` hits it only when server1 happens to hold it)."""
    owner = c.websub_owner() or "server1"
    c.procs[owner].kill9()
    return f"kill -9 {owner} (the WebSub subscription's deliverer, pid {c.procs[owner].pid})"


def _partition(host: str) -> tuple[Callable[[Cluster], str], Callable[[Cluster], None]]:
    def inject(c: Cluster) -> str:
        c.net.link(host, up=False)
        return f"{host}'s link down (cut off from Redis, PostgreSQL, everything)"

    return inject, lambda c: c.net.link(host, up=True)


def _netem(host: str) -> tuple[Callable[[Cluster], str], Callable[[Cluster], str | None]]:
    """200 ms and 5 % loss on `host`'s eth0; `host` "holder": on the server holding the Kafka
    subscription's lease (which server takes the `single` subscriptions is chance, and the
    fault costs the subscriptions on the slow link their own)."""
    chosen: list[str] = []

    def inject(c: Cluster) -> str:
        holders = c.subscription_holders()
        target = holders.get("kafka-load", "server1") if host == "holder" else host
        chosen[:] = [target]
        held = ", ".join(f"{s} by {h}" for s, h in sorted(holders.items())) or "unknown"
        return f"{target}'s eth0 (subscriptions held: {held}): {c.net.netem(target, 200, 5)}"

    def undo(c: Cluster) -> str | None:
        counts = c.net.clear_netem(chosen[0])  # the link emulator's, if it ran
        return f"frames {counts}" if counts else None

    return inject, undo


def _failover(c: Cluster) -> str:
    before = c.primary()
    with c.sentinel() as s:
        s.execute_command("SENTINEL", "FAILOVER", "fnhub")
    started = time.monotonic()
    while c.primary() == before and time.monotonic() - started < 30:
        time.sleep(0.05)
    return f"SENTINEL FAILOVER: {before} → {c.primary()} in {time.monotonic() - started:.2f}s"


def _kill_primary(c: Cluster) -> str:
    before = c.primary()
    c.procs[before].held = True
    c.procs[before].kill9()
    started = time.monotonic()
    while time.monotonic() - started < 30:
        try:
            if c.primary() != before:
                break
        except Exception:  # noqa: BLE001 - a Sentinel busy with the failover
            pass
        time.sleep(0.05)
    return (
        f"kill -9 Redis primary {before}: Sentinels named {c.primary()} after "
        f"{time.monotonic() - started:.2f}s; {before} restarted 5 s after the kill"
    )


def _restart_primary_again(c: Cluster) -> None:
    for host in ("redis1", "redis2"):
        if not c.procs[host].alive():
            c.procs[host].start()


def _pg(c: Cluster) -> str:
    started = time.monotonic()
    c.restart_postgres()
    return f"PostgreSQL fast shutdown and start: {time.monotonic() - started:.2f}s down"


def _broker(name: str, host: str, port: int, *, crash: bool = False) -> Callable[[Cluster], str]:
    """Restart a service: SIGTERM, or (`crash`) kill -9 of its process group, 1 s, start."""

    def inject(c: Cluster) -> str:
        started = time.monotonic()
        c.restart(name, port=(c.addr(host), port), crash=crash)
        how = "kill -9" if crash else "SIGTERM"
        return f"{name} {how} and start: {time.monotonic() - started:.2f}s down"

    return inject


def _kill_replica(c: Cluster) -> str:
    """kill -9 the Redis host that is not the primary; it starts again 1 s later and syncs."""
    replica = "redis2" if c.primary() == "redis1" else "redis1"
    started = time.monotonic()
    c.restart(replica, port=(c.addr(replica), 6379), crash=True)
    return f"kill -9 Redis replica {replica} and start: {time.monotonic() - started:.2f}s down"


def catalogue(quick: bool, kafka: bool, tansu_s3: bool = False) -> list[Fault]:
    cut, heal = _partition("worker1")
    slow, fast = _netem("server1")
    hold = 6.0 if quick else 30.0
    quick_set = [
        Fault("kill -9 worker1", "kill", _kill("worker1")),
        Fault("kill -9 server1 + worker2", "kill-two", _kill("server1", "worker2")),
        Fault(f"worker1 cut off {hold:.0f} s", "partition", cut, heal, hold),
        Fault(f"netem 200ms 5% on server1, {hold:.0f} s", "netem", slow, fast, hold),
        Fault("Redis failover (SENTINEL FAILOVER)", "failover", _failover),
        Fault("PostgreSQL restart", "database", _pg),
        Fault("Mosquitto restart", "broker", _broker("mosquitto", "mqtt", 1883)),
    ]
    if quick:
        return quick_set
    full = [
        Fault("kill -9 worker1", "kill", _kill("worker1")),
        Fault("kill -9 server1", "kill", _kill("server1")),
        Fault("kill -9 leading beat", "kill", _kill_beat_leader),
        Fault("kill -9 the WebSub deliverer's server", "kill", _kill_websub_owner),
        Fault("kill -9 server1 + worker2", "kill-two", _kill("server1", "worker2")),
        Fault("kill -9 worker1 + worker3", "kill-two", _kill("worker1", "worker3")),
        Fault("kill -9 server2 + both beats", "kill-two", _kill("server2", "beat1", "beat2")),
        *quick_set[2:4],
        Fault(
            f"netem 200ms 5% on the Kafka holder, {hold:.0f} s", "netem", *_netem("holder"), hold
        ),
        quick_set[4],
        Fault("Redis primary kill -9", "failover", _kill_primary, _restart_primary_again, 5.0),
        quick_set[5],
        quick_set[6],
        Fault("Redis Streams broker restart", "broker", _broker("streams", "streams", 6379)),
    ]
    crash = functools.partial(_broker, crash=True)  # as a host crash would, not stopped cleanly
    full += [
        Fault("kill -9 a Sentinel", "sentinel", crash("sentinel1", "sentinel1", 26379)),
        Fault("kill -9 Redis replica", "replica", _kill_replica),
        Fault("PostgreSQL kill -9", "database", crash("postgres", "pg", 5432)),
        Fault("Mosquitto kill -9", "broker", crash("mosquitto", "mqtt", 1883)),
        Fault("Redis Streams broker kill -9", "broker", crash("streams", "streams", 6379)),
    ]
    if kafka:
        full.append(Fault("Tansu (Kafka) restart", "broker", _broker("tansu", "kafka", 9092)))
    if kafka and tansu_s3:  # its log in S3 (`Cluster._start_kafka`): a crash differs from a stop
        full.append(Fault("Tansu (Kafka) kill -9", "broker", crash("tansu", "kafka", 9092)))
    return full


# -- running a phase ---------------------------------------------------------------------------
def _normal(load: Load, marks: Marks, c: Cluster, since: float) -> bool:
    """Every flow handles what was sent 2-4 s ago within LATE, each cron tick of those seconds
    ran, sync calls succeed, and every role runs."""
    now = time.time()
    lo, hi = max(since, now - 4), now - 2
    if hi <= lo:
        return False
    marks.read()
    for kind in FLOWS:
        flow = load.flows.get(kind)
        if flow is None:
            continue
        with flow.lock:
            recent = [(i, t) for i, t in flow.sent.items() if lo <= t < hi]
        if not recent:
            return False
        runs = marks.runs[kind]
        for ident, sent in recent:
            if not runs.get(ident) or runs[ident][0] - sent > LATE:
                return False
    for tick in range(math.ceil(lo), math.floor(hi)):
        ran = marks.runs["cron"].get(str(tick))
        if not ran or ran[0] - tick > LATE:
            return False
    sync = load.flows.get("sync")
    if sync and (not sync.ok or sync.ok[-1][1] < now - 1.5):
        return False
    return all(p.alive() for p in c.procs.values() if p.supervised)


def run_phase(
    fault: Fault, c: Cluster, load: Load, marks: Marks, *, pre: float, settle: float
) -> Phase:
    waited = c.wait_redundant()
    start = time.time()
    time.sleep(pre)
    inject = time.time()
    did = fault.inject(c)
    if fault.undo:
        time.sleep(max(0.0, fault.hold - (time.time() - inject)))
        if saw := fault.undo(c):
            did = f"{did}; {saw}"
    phase = Phase(fault.name, fault.kind, did, start, inject, time.time())
    phase.waited_for_redis_replica_s = waited
    print(f"  {fault.name}: {did}", flush=True)
    while time.time() - phase.end < settle:
        if time.time() - phase.end > 3 and _normal(load, marks, c, phase.end):
            phase.settled = True
            break
        time.sleep(0.5)
    time.sleep(1)
    phase.stop = time.time()
    phase.roles_down_at_stop = [n for n, p in c.procs.items() if p.supervised and not p.alive()]
    return phase


# -- analysis ----------------------------------------------------------------------------------
def _flow_result(phase: Phase, load: Load, marks: Marks, kind: str) -> dict[str, Any] | None:
    flow = load.flows.get(kind)
    if flow is None:
        return None
    # by when each item left; its lateness from when it was due (`Flow.left`)
    window = {i: t for i, t in flow.sent.items() if phase.start <= flow.left.get(i, t) < phase.stop}
    runs = marks.runs[kind]
    lost = sorted(i for i in window if not runs.get(i))
    twice = sorted(i for i in window if len(runs.get(i, ())) > 1)
    latencies = sorted(runs[i][0] - t for i, t in window.items() if runs.get(i))
    late_done = [runs[i][0] for i, t in window.items() if runs.get(i) and runs[i][0] - t > LATE]
    refused = sum(phase.start <= t < phase.stop for t in flow.refused)
    lags = [late for t, late in flow.lags if phase.start <= t < phase.stop]
    behind = [
        flow.answered[i] - t
        for i, t in flow.sent.items()
        if phase.inject - 2 <= flow.answered.get(i, 0) < phase.inject
    ]
    return {
        "sent": len(window),
        "handled": len(window) - len(lost),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "run_twice": len(twice),
        "twice_ids": twice[:20],
        "refused": refused,  # not accepted (the sender knew): not a loss
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "late": len(late_done),
        "normal_again_at": max(late_done) if late_done else None,
        # the load generator's own stalls (HTTP flows): its requests went out that much late
        "own_lag_max_s": round(max(lags), 3) if lags else None,
        "own_lag_total_s": round(sum(lags), 2) if lags else None,
        # how far behind its schedule the flow was when the fault began (the answers of its 2 s
        # before came this long after their items were due: HTTP's in-flight limit full, the
        # load starved): lateness the fault found, not its own
        "behind_at_inject_s": round(max(behind), 2) if behind else None,
    }


def analyse(phase: Phase, load: Load, marks: Marks) -> dict[str, Any]:
    flows = {k: r for k in FLOWS if (r := _flow_result(phase, load, marks, k)) is not None}
    cron_ticks = range(math.ceil(phase.start), math.floor(phase.stop))
    cron_runs = marks.runs["cron"]
    missed = [t for t in cron_ticks if not cron_runs.get(str(t))]
    doubled = [t for t in cron_ticks if len(cron_runs.get(str(t), ())) > 1]
    late = [
        cron_runs[str(t)][0]
        for t in cron_ticks
        if cron_runs.get(str(t)) and cron_runs[str(t)][0] - t > LATE
    ]
    cron = {
        "ticks": len(cron_ticks),
        "missed": len(missed),
        "missed_ticks": missed[:20],
        "doubled": len(doubled),
        "late": len(late),
        "normal_again_at": max(late) if late else None,
    }
    sync_flow = load.flows.get("sync")
    sync = None
    if sync_flow is not None:
        ok = [(s, a) for s, a in sync_flow.ok if phase.start <= s < phase.stop]
        failed = [t for t in sync_flow.refused if phase.start <= t < phase.stop]
        answers = sorted(a for _s, a in ok)
        after = [a for a in answers if a >= phase.inject]
        gaps = [b - a for a, b in zip([phase.inject, *after], after, strict=False)]
        sync = {
            "ok": len(ok),
            "failed": len(failed),
            "longest_gap_s": round(max(gaps), 2) if gaps else None,
            "normal_again_at": max(failed) if failed else None,
        }
    ends = [
        r["normal_again_at"]
        for r in [*flows.values(), cron, *([sync] if sync else [])]
        if r["normal_again_at"]
    ]
    recovered_at = max(ends) if ends else phase.inject
    result = {k: v for k, v in asdict(phase).items()}
    result.update(
        {
            "flows": flows,
            "cron": cron,
            "sync_calls": sync,
            "lost": sum(r["lost"] for r in flows.values()),
            "run_twice": sum(r["run_twice"] for r in flows.values()),
            "recovery_s": round(max(0.0, recovered_at - phase.inject), 2),
            "recovery_after_undo_s": round(max(0.0, recovered_at - phase.end), 2),
            # nobody acted during a run; "needed a person" = something did not come back by
            # itself: a role still down at the phase's end, or items never run by the end of the
            # drain (a failover's replication loss excepted: nobody could get those back)
            "needed_a_person": bool(phase.roles_down_at_stop)
            or (phase.kind != "failover" and any(r["lost"] for r in flows.values())),
        }
    )
    for key in ("start", "inject", "end", "stop"):
        result[key] = round(result[key], 3)
    for r in [*flows.values(), cron, *([sync] if sync else [])]:
        if r["normal_again_at"]:
            r["normal_again_at"] = round(r["normal_again_at"] - phase.inject, 2)
    return result
