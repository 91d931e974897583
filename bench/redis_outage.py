"""How soon the data path works again once fnhub's Redis is back from an outage: this checkout
(B) against another revision (A, by default main), interleaved.

    python bench/redis_outage.py [--base main] [--rounds 4] [--outage 6] [--out PATH]

Each run starts a redis-server of its own, a worker (2 children) and a server with an MQTT
subscription (the machine's Mosquitto; `multiple` mode, so no lease is lost), stops Redis for
`--outage` seconds while a message is published every half second (each one a batch whose
enqueue fails), starts it again on the same port and submits a task at once. Figures, in seconds
from the moment Redis answered again: `task` (the task ran), `first_msg` and `all_msgs` (the
outage's messages ran), and `recovered`, how many times the worker logged its chores recovered
(once is right). A is a temporary git worktree of `--base`, run through PYTHONPATH; rounds run A
and B back to back, the order alternating. Writes bench/results/redis_outage.json (or `--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/queue.py is named like the stdlib's `queue` (which redis-py imports): not this folder
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from tests.private_redis import PrivateRedis  # noqa: E402

from fnhub.calling.queue_client import QueueClient  # noqa: E402
from fnhub.config import Settings  # noqa: E402

MQTT_PORT = 1883
CLI = [sys.executable, "-c", "from fnhub.cli import main; main()"]
SCRIPT = """
import time

import fnhub


def _mark(what):
    with open({marks!r}, "a") as f:
        f.write(f"{{what}} {{time.time()}}\\n")


@fnhub.api("mark")
def mark(what):
    _mark(what)


@fnhub.api("on_message")
def on_message(topic, message):
    _mark(message)
"""
RECOVERED = "worker chores cannot reach Redis: recovered"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _marks(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    lines = path.read_text().split("\n")[:-1]
    return {what: float(at) for what, at in (line.rsplit(" ", 1) for line in lines)}


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


class Publisher:
    """A paho client publishing QoS 1 messages, each waited for."""

    def __init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", MQTT_PORT)
        self.client.loop_start()

    def send(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload.encode(), qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_once(pythonpath: str, outage: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="redis-outage-"))
    marks = tmp / "marks"
    topic = f"outage-{uuid.uuid4().hex[:8]}"
    own = PrivateRedis(tmp / "redis")
    own.start()
    (tmp / "scripts").mkdir()
    (tmp / "scripts" / "demo.py").write_text(SCRIPT.format(marks=str(marks)))
    connector = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": MQTT_PORT}}
    subscription = {
        "connector": "c",
        "topics": [topic],
        "function": "demo.on_message",
        "mode": "multiple",
        "options": {"qos": 1},
    }
    (tmp / "fnhub.yaml").write_text(
        yaml.safe_dump({"connectors": {"c": connector}, "subscriptions": {"s": subscription}})
    )
    prefix = f"bench-outage-{uuid.uuid4().hex[:6]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")},
        "PYTHONPATH": pythonpath,
        "FNHUB_REDIS_URL": own.url,
        "FNHUB_KEY_PREFIX": prefix,
        "FNHUB_DATA_DIR": str(tmp / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{tmp}/f.db",
        "FNHUB_PORT": str(_free_port()),
        "FNHUB_ACCESS_LOG": "false",
    }
    subprocess.run([*CLI, "apply", "-p", str(tmp)], env=env, check=True, capture_output=True)
    settings = Settings(
        project_dir=tmp,
        data_dir=tmp / ".fnhub",
        redis_url=own.url,
        db_url=f"sqlite:///{tmp}/f.db",
        key_prefix=prefix,
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for role, argv in {"worker": ["worker", "--processes", "2"], "server": ["server"]}.items():
        with open(tmp / f"{role}.log", "ab") as log:
            procs[role] = subprocess.Popen(
                [*CLI, *argv, "-p", str(tmp)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
    publisher = Publisher()
    load = [os.getloadavg()[0]]
    try:
        warm = 0

        def warmed() -> bool:
            nonlocal warm
            if any(w.startswith("warm") for w in _marks(marks)):
                return True
            publisher.send(topic, f"warm{warm}")
            warm += 1
            time.sleep(0.5)
            return False

        _wait(warmed, 90, "the subscription's first message")
        client = QueueClient(settings)
        client.submit("demo.mark", {"what": "task-before"})
        client.close()
        _wait(lambda: "task-before" in _marks(marks), 30, "the first task")
        time.sleep(1.0)
        own.stop()
        stopped = time.monotonic()
        sent = []
        while time.monotonic() - stopped < outage - 0.5:
            name = f"out{len(sent)}"
            publisher.send(topic, name)
            sent.append(name)
            time.sleep(0.5)
        time.sleep(max(0.0, stopped + outage - time.monotonic()))
        own.start()
        back = time.time()
        client = QueueClient(settings)
        client.submit("demo.mark", {"what": "task-after"})
        client.close()
        _wait(
            lambda: all(w in _marks(marks) for w in ["task-after", *sent]),
            60,
            "the task and the outage's messages",
        )
        time.sleep(1.5)  # the chores' log settles
        seen = _marks(marks)
        load.append(os.getloadavg()[0])
        return {
            "task": round(seen["task-after"] - back, 3),
            "first_msg": round(min(seen[w] for w in sent) - back, 3),
            "all_msgs": round(max(seen[w] for w in sent) - back, 3),
            "messages": len(sent),
            "recovered": (tmp / "worker.log").read_text().count(RECOVERED),
            "load1": round(statistics.mean(load), 2),
        }
    finally:
        publisher.close()
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        own.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="main", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--outage", type=float, default=6.0, help="seconds Redis is away")
    parser.add_argument("--out", default=str(HERE / "results" / "redis_outage.json"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    worktree = tmp / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(worktree), args.base],
        check=True,
    )
    paths = {"A": str(worktree / "src"), "B": str(ROOT / "src")}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    started = time.strftime("%H:%M", time.gmtime())
    try:
        for r in range(args.rounds):
            for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                figures = run_once(paths[side], args.outage)
                runs[side].append(figures)
                print(f"round {r + 1} {side}: {figures}", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)])
    ended = time.strftime("%H:%M", time.gmtime())
    keys = ("task", "first_msg", "all_msgs", "recovered")
    medians = {
        side: {k: statistics.median(run[k] for run in runs[side]) for k in keys} for side in runs
    }
    print(f"\noutage {args.outage:g} s, {args.rounds} rounds, {started}-{ended} UTC; "
          "seconds from Redis back (median, and each run)")  # fmt: skip
    print(f"{'figure':<10} {'A (' + args.base + ')':>14} {'B (this)':>10} {'B/A':>6}   runs A | B")
    for k in keys:
        a, b = medians["A"][k], medians["B"][k]
        ratio = f"{b / a:.2f}" if a else "-"
        each = (
            " ".join(f"{run[k]:g}" for run in runs["A"]),
            " ".join(f"{run[k]:g}" for run in runs["B"]),
        )
        print(f"{k:<10} {a:>14.2f} {b:>10.2f} {ratio:>6}   {each[0]} | {each[1]}")
    loads = [run["load1"] for side in runs for run in runs[side]]
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
    Path(args.out).write_text(
        json.dumps(
            {
                "base": args.base,
                "outage_seconds": args.outage,
                "utc": f"{started}-{ended}",
                "runs": runs,
                "medians": medians,
                "ratios_b_over_a": {
                    k: (medians["B"][k] / medians["A"][k] if medians["A"][k] else None)
                    for k in keys
                },
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
